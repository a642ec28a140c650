"""Peak memory of the demo's fit: an exact 2000-draw request vs sampling until ok to 2000.

The joint five-dimension fit of the bundled survey with its three interaction cells
(toxicity x gender, emotional awareness x politics and x ethnicity), nutpie, seed 0. Each mode
runs in its own process; prints the peak RSS (``ru_maxrss``) and RSS when the sampler returns.

``raw`` samples the same model with ``nutpie.sample(..., return_raw_trace=True)`` (no
conversion to InferenceData) and prints its peak RSS and the bytes of nutpie's Arrow trace: the
kept draws, and the sampler statistics, which hold every draw's unconstrained position and
gradient, warm-up included, whatever ``store_unconstrained``/``store_gradient`` say (nutpie
0.16.8; pymc-devs/nutpie#176). ``saved`` and ``stream`` save the exact fit to a directory, in
memory (``stream=False``) or with the draws streamed to disk (``stream=True``).

Run: ``.venv/bin/python benchmarks/fit_memory.py [exact] [until] [raw]``.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
import warnings

FACTORS = ["gender", "politics", "ethnicity", "country"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US"}
INTERACTIONS = {"toxicity": ["gender"], "emotional_awareness": ["politics", "ethnicity"]}
MODES = {"exact": {"draws": 2000}, "until": {"draws": 1000, "max_draws": 2000},
         "saved": {"draws": 2000, "stream": False}, "stream": {"draws": 2000, "stream": True}}


def one(mode: str) -> None:
    """Fit in this process and print one line of figures."""
    import psutil

    warnings.simplefilter("ignore")
    from disagree.data import load_default_survey
    from disagree.model import fit

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        saved = {"out_dir": f"{tmp}/fit"} if "stream" in MODES[mode] else {}
        result = fit(load_default_survey(), FACTORS, REFERENCE, interactions=INTERACTIONS,
                     progress=False, seed=0, **MODES[mode], **saved)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    held = psutil.Process().memory_info().rss / 2**30
    d = result.diagnostics
    print(f"{mode:<6} peak RSS {peak:5.2f} GiB  held after fit {held:5.2f} GiB  "
          f"sampling {d['seconds']['sampling']:6.1f} s  wall {time.perf_counter() - start:6.1f} s"
          f"  ok {d['ok']}  min bulk ESS {d['ess_bulk_min']:.0f}")


def raw() -> None:
    """Sample without converting the trace; print peak RSS and the Arrow trace's bytes."""
    import nutpie

    warnings.simplefilter("ignore")
    from disagree.data import load_default_survey
    from disagree.model.build import build_model
    from disagree.model.fitting import default_centring
    from disagree.model.sampling import KEEP
    from disagree.model.spec import make_spec, model_data

    table = load_default_survey()
    spec = make_spec(table, FACTORS, REFERENCE, None, None, INTERACTIONS, "dummy")
    centred = default_centring(table, spec)  # the parametrisation fit() would pick
    model = build_model(spec, model_data(table, spec), rater_centred=centred["rater"],
                        item_centred=centred["item"])
    compiled = nutpie.compile_pymc_model(model, var_names=[v for v in KEEP
                                                           if v in model.named_vars])
    trace = nutpie.sample(compiled, draws=2000, tune=1000, chains=2, cores=2, seed=0,
                          save_warmup=False, progress_bar=False, return_raw_trace=True)
    draws, stats = trace.get_arrow_trace()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    per_draw = sum(b.column(c).nbytes for b in stats
                   for c in ("unconstrained_draw", "gradient")) / 2**30
    print(f"raw    peak RSS {peak:5.2f} GiB  Arrow draws {sum(b.nbytes for b in draws) / 2**30:.2f}"
          f" GiB ({sum(b.num_rows for b in draws)} rows, warm-up included)  unconstrained "
          f"position + gradient in the stats {per_draw:.2f} GiB")


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        raw() if args[1] == "raw" else one(args[1])
        return
    for mode in args or [*MODES, "raw"]:
        proc = subprocess.run([sys.executable, __file__, "--one", mode], capture_output=True,
                              text=True)
        print(proc.stdout.strip() or proc.stderr.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
