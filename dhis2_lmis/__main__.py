"""``python -m dhis2_lmis``: the same as the ``dhis2-lmis`` command."""

from __future__ import annotations

from dhis2_lmis.run.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
