"""What every benchmark script shares: the test rig's servers, Django, timing, a table.

from _env import setup, interleaved, table
setup()                                   # servers (or the *_URL ones), test database
results = interleaved({"ours": f, "anchor": g}, rounds=21)
print(table(results, baseline="anchor"))
"""

from __future__ import annotations

import atexit
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def setup(settings: str = "tests.settings", databases: bool = True) -> None:
    """Start the rig's servers unless named by the environment; create the test database."""
    from tests.rig.servers import Rig

    if databases:
        rig = Rig.from_environment()
        atexit.register(rig.stop)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)
    import django

    django.setup()
    if databases:
        from django.test.utils import setup_databases, teardown_databases

        from tests.rig.control import ReplicaControl

        config = setup_databases(verbosity=0, interactive=False)
        atexit.register(teardown_databases, config, verbosity=0)
        ReplicaControl().wait()


def interleaved(
    candidates: dict[str, Callable[[], object]], rounds: int = 21, gc_off: bool = True
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, measured in interleaved rounds (noise hits all)."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    if gc_off:
        gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in candidates.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def table(
    times: dict[str, list[float]], baseline: str, unit: float = 1e-3, unit_name: str = "ms"
) -> str:
    """Min and median per candidate and the ratio of each median to the baseline's."""
    base = statistics.median(times[baseline])
    width = max(len(n) for n in times)
    lines = [
        f"{'':{width}}  {'min ' + unit_name:>10}  {'median ' + unit_name:>12}  "
        f"{'ratio to ' + baseline:>14}",
    ]
    for name, samples in times.items():
        med = statistics.median(samples)
        lines.append(
            f"{name:{width}}  {min(samples) / unit:10.3f}  {med / unit:12.3f}  {med / base:14.2f}"
        )
    return "\n".join(lines)
