"""The experiment grid: config checks, cell hashes, caching, resumption, Ray, the summary."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("trl")

import disagree.train  # noqa: E402
from disagree.data import save_ratings, simulate_survey  # noqa: E402
from disagree.errors import EvaluateError  # noqa: E402
from disagree.evaluate.bootstrap import ratio_interval  # noqa: E402
from disagree.evaluate.grid import (  # noqa: E402
    RESULT_COLUMNS,
    default_comparisons,
    grid_summary,
    plot_grid,
    run_grid,
)
from disagree.evaluate.grid_config import (  # noqa: E402
    GridComparison,
    GridInputs,
    expand_cells,
    load_grid_config,
    merge,
)
from disagree.model import fit  # noqa: E402

TRAINING = {"max_steps": 4, "per_device_train_batch_size": 8, "learning_rate": 1e-3,
            "lr_scheduler_type": "constant", "beta": 0.1, "logging_steps": 2, "save_steps": 4,
            "eval_strategy": "no", "bf16": False}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small survey saved to a ratings FILE, its fit, a 3-cell grid and its reference run."""
    root = tmp_path_factory.mktemp("grid")
    survey = simulate_survey(seed=3, n_raters=200, n_prompts=20, prompts_per_rater=4,
                             dimensions=("toxicity",))
    ratings = save_ratings(survey.table, root / "ratings.parquet")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fit diagnostics")
        model = fit(survey.table, ["gender"], {"gender": "female"}, draws=200, tune=200,
                    chains=2, seed=0, progress=False)
    model.save(root / "fit")

    def config(out: str, **changes) -> dict:
        base = {
            "out": str(root / out), "ratings": str(ratings), "fit": str(root / "fit"),
            "seeds": [0], "split": [0.6, 0.2, 0.2], "split_seed": 0,
            "train": {"method": "dpo", "model": "tiny", "threads": 1, "training": TRAINING,
                      "pairs": {"strategy": "majority", "dimension": "toxicity"}},
            "experiments": {
                "disagreement": {"variants": {
                    "majority": {}, "soft": {"method": "dpo-soft", "pairs": {"strategy": "soft"}}}},
                "scale": {"variants": {"5-point": {}, "binary": {"pairs": {"to_scale": 2}}}}},
            "comparisons": [{"experiment": "disagreement", "first": "soft", "second": "majority",
                             "dimension": "toxicity", "paper": 1.53}],
            "bootstrap": {"n": 200, "seed": 0}}
        return merge(base, changes)

    lines: list[str] = []
    reference = run_grid(config("reference"), say=lines.append)
    return {"root": root, "config": config, "reference": reference, "lines": lines}


@pytest.fixture
def count_trains(monkeypatch):
    """Count the calls of ``disagree.train.train`` per run folder; optionally fail one."""
    real = disagree.train.train
    calls: list[str] = []
    fail = {"at": None}

    def wrapper(config, **kwargs):
        if fail["at"] is not None and len(calls) + 1 == fail["at"]:
            fail["at"] = None
            raise KeyboardInterrupt("interrupted mid-grid")
        result = real(config, **kwargs)
        calls.append(str(result.run_dir))
        return result

    monkeypatch.setattr(disagree.train, "train", wrapper)
    return calls, fail


# --- the config -------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "key"), [
    ({"seeds": [0, 0]}, "seeds"),
    ({"experiments": {"scale": {"variantz": {}}}}, "experiments.scale: unknown key 'variantz'"),
    ({"train": {"output_dir": "x"}}, "train"),
    ({"executor": {"name": "slurm"}}, "executor.name"),
    ({"units": ["politics"]}, "units"),
    ({"comparisons": [{"experiment": "scale", "first": "3-point", "second": "binary",
                       "dimension": "toxicity"}]}, "comparisons[0].first"),
    ({"dimensions": ["fairness"]}, "experiments.disagreement: no direction"),
])
def test_config_errors_name_the_key(setup, change, key):
    with pytest.raises(EvaluateError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_grid_config(setup["config"]("bad", **change))


def test_a_bad_variant_names_the_variant_and_the_train_key(setup):
    cfg = load_grid_config(setup["config"]("bad", experiments={"scale": {"variants": {
        "binary": {"training": {"max_stepz": 4}}}}}))
    with pytest.raises(EvaluateError, match=r"experiments\.scale\.variants\.binary: "
                                            r"training: unknown key 'max_stepz'"):
        expand_cells(cfg, GridInputs.load(cfg))


def test_merge_overrides_recursively_and_null_removes():
    merged = merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}, "d": None})
    assert merged == {"a": {"b": 5, "c": 2}}


# --- cells and their hashes ----------------------------------------------------------------

def digests(cfg_dict: dict, inputs_change: dict | None = None) -> dict:
    cfg = load_grid_config(cfg_dict)
    inputs = GridInputs.load(cfg)
    for key, value in (inputs_change or {}).items():
        setattr(inputs, key, value)
    return {e: c.digest for c in expand_cells(cfg, inputs) for e in c.entries}


def test_cell_hash_is_stable_and_changes_with_any_config_change(setup):
    config = setup["config"]
    first = digests(config("h1"))
    assert first == digests(config("elsewhere"))  # the output folder is not in the hash
    assert first[("scale", "5-point", 0)] == first[("disagreement", "majority", 0)]
    assert len(set(first.values())) == 3
    changed = [
        digests(config("h", train={"training": {"learning_rate": 2e-3}})),
        digests(config("h", split_seed=1)),
        digests(config("h", split=[0.5, 0.25, 0.25])),
        digests(config("h", train={"tiny": {"hidden_size": 32}})),
        digests(config("h"), {"fit_sha256": "0" * 64}),
    ]
    for other in changed:
        assert all(other[e] != first[e] for e in first)
    seeds = digests(config("h", seeds=[0, 1]))
    assert seeds[("scale", "binary", 0)] == first[("scale", "binary", 0)]
    assert seeds[("scale", "binary", 1)] != first[("scale", "binary", 0)]


# --- running: results, caching, resumption, Ray --------------------------------------------

def test_results_have_a_row_per_cell_seed_and_measure(setup):
    result = setup["reference"]
    res = result.results
    assert list(res.columns) == RESULT_COLUMNS
    assert len(res) == 4 * 2  # 4 variants x (seed 0 + all), toxicity, population
    assert set(res["measure"]) == {"reduction"}
    assert (res["lower"] <= res["estimate"]).all() and (res["estimate"] <= res["upper"]).all()
    assert len(result.cells) == 3  # majority and 5-point are the same cell
    for cell in result.cells:
        assert (cell.folder / "cell.json").is_file()
    assert (result.out / "figure-scale.png").is_file()
    assert list(result.summary["paper"]) == [1.53]
    assert any("training" in line for line in setup["lines"])


def test_a_finished_grid_trains_nothing_again(setup, count_trains):
    calls, _ = count_trains
    again = run_grid(setup["config"]("reference"), say=lambda _: None)
    assert calls == []
    reference = setup["reference"].out
    assert (again.out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()


def test_an_interrupted_grid_resumes_with_identical_results(setup, count_trains):
    calls, fail = count_trains
    fail["at"] = 2
    config = setup["config"]("resumed")
    with pytest.raises(KeyboardInterrupt):
        run_grid(config, say=lambda _: None)
    assert len(calls) == 1
    assert not (setup["root"] / "resumed" / "results.csv").exists()
    result = run_grid(config, say=lambda _: None)
    assert len(calls) == len(set(calls)) == 3  # each cell trained exactly once overall
    reference = setup["reference"].out
    for name in ("results.csv", "summary.csv"):
        assert (result.out / name).read_bytes() == (reference / name).read_bytes()


def test_the_ray_executor_gives_the_same_results_as_local(setup):
    ray = pytest.importorskip("ray", reason="ray is not installed (the 'ray' extra)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_grid(setup["config"]("ray", executor={"name": "ray", "num_cpus": 1}),
                          say=lambda _: None)
    finally:
        ray.shutdown()
    reference = setup["reference"].out
    for name in ("results.csv", "summary.csv"):
        assert (result.out / name).read_bytes() == (reference / name).read_bytes()


# --- the summary ---------------------------------------------------------------------------

def test_ratio_interval_matches_the_hand_computed_two_prompt_case():
    # one seed, measures (1, 3) over (1, 1): replicates 1, 2, 3 w.p. 1/4, 1/2, 1/4
    iv = ratio_interval(np.array([[1.0, 3.0]]), np.array([[1.0, 1.0]]), n_boot=8000, seed=1)
    assert (iv.estimate, iv.lower, iv.upper, iv.n) == (2.0, 1.0, 3.0, 4)
    shares = [np.mean(iv.replicates == v) for v in (1.0, 2.0, 3.0)]
    np.testing.assert_allclose(shares, [0.25, 0.5, 0.25], atol=0.02)
    constant = ratio_interval(np.array([[2.0, 4.0], [4.0, 8.0]]), np.array([[1.0, 2.0]]))
    assert constant.estimate == pytest.approx(3.0)


def test_ratio_interval_is_unbounded_when_the_denominator_may_be_zero():
    # denominator measures (-1, 1.1): its replicate means are -1, 0.05, 1.1, so its interval
    # holds 0
    iv = ratio_interval(np.array([[1.0, 3.0]]), np.array([[-1.0, 1.1]]), n_boot=2000, seed=1)
    assert iv.estimate == pytest.approx(4.0 / 0.1)
    assert (iv.lower, iv.upper) == (-np.inf, np.inf)


def test_summary_is_the_ratio_of_two_variants_measures(setup):
    cfg = load_grid_config(setup["config"]("s"))
    measures = {("scale", "5-point", "toxicity", "population"): (np.array([[1.0, 3.0]]), ["a"]),
                ("scale", "binary", "toxicity", "population"): (np.array([[1.0, 1.0]]), ["b"])}
    [comparison] = [c for c in default_comparisons(cfg) if c.experiment == "scale"]
    assert (comparison.first, comparison.second, comparison.paper) == ("5-point", "binary", 1.22)
    row = grid_summary(cfg, measures, (comparison,)).iloc[0]
    assert (row["estimate"], row["first_estimate"], row["second_estimate"]) == (2.0, 2.0, 1.0)
    assert row["comparison"] == "5-point / binary (toxicity)" and row["paper"] == 1.22
    assert GridComparison(experiment="g", first="m", second="population",
                          dimension="toxicity", unit="gender=male").label.endswith("male)")


def test_plot_grid_draws_one_figure_per_experiment(setup):
    figures = plot_grid(setup["reference"].results)
    assert set(figures) == {"disagreement", "scale"}
