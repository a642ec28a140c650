"""The cost of 4 chains instead of 2: the bundled survey fitted as ``disagree fit`` does.

``disagree fit`` with its defaults (nutpie, 1000 tuning draws, 1000 draws a chain and on in
steps of 1000 until the diagnostics are ok, up to 4000; no interactions) on the bundled survey
(a copy of ``data/ratings.parquet``, the file ``load_default_survey()`` reads), with the
README's factors and references, once with ``--chains 2`` and once with ``--chains 4``. Each fit
runs as its own ``disagree fit`` process, timed whole (start-up, compilation, sampling, the
diagnostics, writing the fit directory); then a second process loads the fit and times
``compute_diagnostics`` on it (what judging ``ok`` costs once, the derived quantities
included). Prints one line a run: wall seconds, the fit's compile and sampling seconds, the
draws a chain it kept, ``ok``, max R-hat and min bulk and tail ESS (over everything ``ok``
judges), and the seconds of one judgement.

Run: ``nice -n 19 .venv/bin/python benchmarks/chains_cost.py [2] [4]`` (both by default; several
minutes a fit on 2 cores).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTORS = "gender,politics,ethnicity,country"
REFERENCE = "gender=female,politics=liberal,ethnicity=White,country=US"
JUDGE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
from disagree.model import load_fit
from disagree.model.diagnostics import compute_diagnostics
fit = load_fit(sys.argv[1])
start = time.perf_counter()
compute_diagnostics(fit.idata, "nutpie", {}, fit.spec)
print(json.dumps({"judge_s": time.perf_counter() - start}))
"""


def run(chains: int, ratings: Path, tmp: Path) -> dict:
    """Fit with ``chains`` chains in a ``disagree fit`` process; return the figures."""
    out = tmp / f"fit-{chains}"
    start = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "disagree"), "fit", str(ratings), "--out",
                    str(out), "--factors", FACTORS, "--reference", REFERENCE,
                    "--chains", str(chains)], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    diag = json.loads((out / "diagnostics.json").read_text())
    judged = subprocess.run([sys.executable, "-c", JUDGE, str(out)], check=True,
                            capture_output=True, text=True)
    draws = diag.get("extension", {}).get("draws_used", 1000)
    return {"chains": chains, "wall_s": wall, **diag["seconds"], "draws": draws,
            "ok": diag["ok"], "rhat_max": diag["rhat_max"], "ess_bulk_min": diag["ess_bulk_min"],
            "ess_tail_min": diag["ess_tail_min"], **json.loads(judged.stdout.splitlines()[-1]),
            "failures": diag["failures"][:3]}


def main(argv: list[str]) -> None:
    """Run the chain counts asked for (default 2 and 4), one after the other."""
    counts = [int(a) for a in argv] or [2, 4]
    with tempfile.TemporaryDirectory() as tmp:
        ratings = Path(tmp) / "ratings.parquet"
        shutil.copy(ROOT / "data" / "ratings.parquet", ratings)
        for chains in counts:
            r = run(chains, ratings, Path(tmp))
            print(f"chains {r['chains']}: wall {r['wall_s']:6.1f} s  compile {r['compile']:6.1f} s"
                  f"  sampling {r['sampling']:6.1f} s  draws a chain {r['draws']}  ok {r['ok']}"
                  f"  R-hat max {r['rhat_max']:.4f}  bulk ESS min {r['ess_bulk_min']:.0f}"
                  f"  tail ESS min {r['ess_tail_min']:.0f}  one judgement {r['judge_s']:.1f} s",
                  flush=True)
            for line in r["failures"]:
                print(f"    {line}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
