"""Peak memory of the demo's fit: an exact 2000-draw request vs sampling until ok to 2000.

The joint five-dimension fit of the bundled survey with its three interaction cells
(toxicity x gender, emotional awareness x politics and x ethnicity), nutpie, seed 0. Each mode
runs in its own process; prints the peak RSS (``ru_maxrss``) and RSS when the sampler returns.

Run: ``.venv/bin/python benchmarks/fit_memory.py [exact] [until]``.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import warnings

FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US"}
INTERACTIONS = {"toxicity": ["gender"], "emotional_awareness": ["politics", "ethnicity"]}
MODES = {"exact": {"draws": 2000}, "until": {"draws": 1000, "max_draws": 2000}}


def one(mode: str) -> None:
    """Fit in this process and print one line of figures."""
    import psutil

    warnings.simplefilter("ignore")
    from disagree.data import load_default_survey
    from disagree.model import fit

    start = time.perf_counter()
    result = fit(load_default_survey(), FACTORS, REFERENCE, interactions=INTERACTIONS,
                 progress=False, seed=0, **MODES[mode])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    held = psutil.Process().memory_info().rss / 2**30
    d = result.diagnostics
    print(f"{mode:<6} peak RSS {peak:5.2f} GiB  held after fit {held:5.2f} GiB  "
          f"sampling {d['seconds']['sampling']:6.1f} s  wall {time.perf_counter() - start:6.1f} s"
          f"  ok {d['ok']}  min bulk ESS {d['ess_bulk_min']:.0f}")


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        one(args[1])
        return
    for mode in args or list(MODES):
        proc = subprocess.run([sys.executable, __file__, "--one", mode], capture_output=True,
                              text=True)
        print(proc.stdout.strip() or proc.stderr.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
