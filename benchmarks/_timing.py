"""The timing rule every ratio benchmark shares: best of N runs, the baseline and the library
taking turns.

On a shared or throttled machine (a CI runner, a laptop on battery, a VM with neighbours) the
speed of the whole machine drifts over seconds. Timing all the baseline runs first and all the
library runs after puts the drift into the ratio; taking turns exposes both to the same
moments, and the fastest run of each is the one least disturbed.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of_alternating(
    repeat: int, baseline: Callable[[], object], library: Callable[[], object]
) -> tuple[float, float]:
    """Seconds of the fastest of ``repeat`` runs of ``baseline`` and of ``library``."""
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for index, run in enumerate((baseline, library)):
            started = time.perf_counter()
            run()
            best[index] = min(best[index], time.perf_counter() - started)
    return best[0], best[1]
