"""Shared settings of the reliability suite: the hypothesis profiles.

Each test module here is self-contained (``--import-mode=importlib`` gives no shared import
path); only settings every module needs live here. ``HYPOTHESIS_PROFILE=thorough`` runs the
fuzzers with many more examples (minutes instead of seconds).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "reliability",
    max_examples=400,
    deadline=None,  # a shared 2-core CI box: timing-based failures would be noise
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
    derandomize=True,  # CI runs are reproducible; the thorough profile explores
    database=None,
)
settings.register_profile(
    "thorough",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
    database=None,
)
# Not loaded globally (that would change other suites' hypothesis tests): test_fuzz.py applies
# the profile named by HYPOTHESIS_PROFILE, default "reliability", to its own tests only.
PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "reliability")
