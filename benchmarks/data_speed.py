"""Time the data stage on the paper-size survey and on one ten times larger.

Prints seconds for simulate, validate (load_ratings on the written Parquet) and describe, and
the peak resident memory of this process. Run: ``.venv/bin/python benchmarks/data_speed.py``.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from disagree.data import load_ratings, simulate_survey
from disagree.describe import describe


def main() -> None:
    print(f"{'raters':>8} {'ratings':>9} {'simulate s':>11} {'validate s':>11} {'describe s':>11}")
    for n_raters, n_prompts in [(1095, 60), (10950, 600)]:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            survey = simulate_survey(seed=0, n_raters=n_raters, n_prompts=n_prompts)
            path = survey.save(Path(tmp))
            t1 = time.perf_counter()
            table = load_ratings(path, scale=5)
            t2 = time.perf_counter()
            describe(table, Path(tmp) / "out")
            t3 = time.perf_counter()
        print(f"{n_raters:>8,} {len(table.ratings):>9,} {t1 - t0:>11.2f} {t2 - t1:>11.2f} "
              f"{t3 - t2:>11.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
