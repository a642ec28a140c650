"""The experiment grid: config checks, budgets, judges, groups, caching, resumption, the summary."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest

pytest.importorskip("trl")

import disagree.train  # noqa: E402
from disagree.data import save_ratings, simulate_survey  # noqa: E402
from disagree.errors import EvaluateError  # noqa: E402
from disagree.evaluate.bootstrap import bootstrap_difference, ratio_interval  # noqa: E402
from disagree.evaluate.grid import (  # noqa: E402
    RESULT_COLUMNS,
    SUMMARY_COLUMNS,
    Measures,
    default_comparisons,
    grid_summary,
    plot_grid,
    run_grid,
)
from disagree.evaluate.grid_cells import GridInputs, expand_cells  # noqa: E402
from disagree.evaluate.grid_config import (  # noqa: E402
    GridComparison,
    expand_groups,
    load_grid_config,
    merge,
)
from disagree.model import fit  # noqa: E402

TRAINING = {"per_device_train_batch_size": 8, "learning_rate": 1e-3,
            "lr_scheduler_type": "constant", "beta": 0.1, "logging_steps": 2, "save_steps": 50,
            "eval_strategy": "no", "bf16": False, "warmup_steps": 0.1}
GRPO = {"method": "grpo", "pairs": None,
        "reward": {"weights": {"toxicity": -1.0}, "scorer": {"encoder": "hashing", "epochs": 5}},
        "training": {"per_device_train_batch_size": 4, "num_generations": 2,
                     "max_completion_length": 8, "learning_rate": 1e-2, "beta": 0.0}}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small survey saved to a ratings FILE, its fit, a 4-cell grid and its reference run."""
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
            "seeds": [0], "split": [0.6, 0.2, 0.2], "split_seed": 0, "budget": {"epochs": 0.25},
            "train": {"method": "dpo", "model": "tiny", "threads": 1, "training": TRAINING,
                      "pairs": {"strategy": "majority", "dimension": "toxicity"}},
            "experiments": {
                "disagreement": {"variants": {
                    "majority": {}, "soft": {"method": "dpo-soft", "pairs": {"strategy": "soft"}}}},
                "scale": {"variants": {"5-point": {}, "binary": {"pairs": {"to_scale": 2}}}},
                "optimiser": {"judges": ["panel", "posterior"],
                              "variants": {"dpo": {}, "grpo": GRPO}}},
            "comparisons": [{"experiment": "disagreement", "first": "soft", "second": "majority",
                             "dimension": "toxicity", "paper": 1.53}],
            "judge": {"panel": {"scorer": {"encoder": "hashing", "epochs": 5}, "seed": 1},
                      "generation": {"n": 2, "max_new_tokens": 8, "seed": 0}},
            "bootstrap": {"n": 200, "seed": 0}}
        return merge(base, changes)

    lines: list[str] = []
    reference = run_grid(config("reference"), say=lines.append)
    return {"root": root, "config": config, "reference": reference, "lines": lines,
            "spec": model.spec}


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
    ({"comparisons": [{"experiment": "scale", "first": "5-point", "second": "binary",
                       "dimension": "toxicity", "judge": "panel"}]}, "comparisons[0].judge"),
    ({"dimensions": ["fairness"]}, "experiments.disagreement: no direction"),
    ({"budget": None}, "config key 'budget' is required"),
    ({"budget": {"epochs": 0}}, "budget.epochs"),
    ({"train": {"training": {"max_steps": 30}}}, "training.max_steps: the grid trains every "
                                                 "cell budget.epochs epochs"),
    ({"train": {"training": {"warmup_steps": 20}}}, "training.warmup_steps: 20 steps would be"),
    ({"experiments": {"scale": {"judges": ["classifier"]}}},
     "experiments.scale.judges: classifier needs a model for toxicity"),
    ({"experiments": {"scale": {"groups": {}}}}, "give either variants or groups"),
])
def test_config_errors_name_the_key(setup, change, key):
    with pytest.raises(EvaluateError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_grid_config(setup["config"]("bad", **change))


def test_a_bad_variant_names_the_variant_and_the_train_key(setup):
    for training, message in (({"max_stepz": 4}, "training: unknown key 'max_stepz'"),
                              ({"max_steps": 4}, "training.max_steps: the grid trains")):
        cfg = load_grid_config(setup["config"]("bad", experiments={"scale": {"variants": {
            "binary": {"training": training}}}}))
        with pytest.raises(EvaluateError, match=rf"experiments\.scale\.variants\.binary: "
                                                rf"{message}"):
            expand_cells(cfg, GridInputs.load(cfg))


def test_merge_overrides_recursively_and_null_removes():
    merged = merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}, "d": None})
    assert merged == {"a": {"b": 5, "c": 2}}


def test_groups_expand_to_every_level_of_every_interacting_factor(setup):
    spec = dataclasses.replace(setup["spec"], interactions=("gender",))
    raw = setup["config"]("g", experiments={"group": {"groups": {"variant": {
        "method": "dpo-soft", "pairs": {"strategy": "soft"}}}}})
    expanded = expand_groups(raw, spec)["experiments"]
    group = expanded["group-toxicity"]
    levels = [f"gender={level}" for level in spec.levels["gender"]]
    assert group["units"] == ["population", *levels] and group["dimensions"] == ["toxicity"]
    assert list(group["variants"]) == ["population", *levels]
    assert group["variants"][levels[1]] == {"method": "dpo-soft", "pairs": {
        "strategy": "soft", "dimension": "toxicity", "group": {"gender": spec.levels["gender"][1]}}}
    assert group["variants"]["population"]["pairs"] == {"strategy": "soft",
                                                        "dimension": "toxicity"}
    assert "disagreement" in expanded and "group" not in expanded
    with pytest.raises(EvaluateError, match=r"experiments\.group\.groups: the fit has no "
                                            r"group-by-item interactions on toxicity"):
        load_grid_config(raw)  # the fixture's fit has none


# --- cells, their hashes and budgets ---------------------------------------------------------

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
    assert first[("optimiser", "dpo", 0)] == first[("disagreement", "majority", 0)]
    assert len(set(first.values())) == 4
    changed = [
        digests(config("h", train={"training": {"weight_decay": 0.01}})),
        digests(config("h", split_seed=1)),
        digests(config("h", split=[0.5, 0.25, 0.25])),
        digests(config("h", budget={"epochs": 0.5})),
        digests(config("h", train={"tiny": {"hidden_size": 32}})),
        digests(config("h"), {"fit_sha256": "0" * 64}),
    ]
    for other in changed:
        assert all(other[e] != first[e] for e in first)
    seeds = digests(config("h", seeds=[0, 1]))
    assert seeds[("scale", "binary", 0)] == first[("scale", "binary", 0)]
    assert seeds[("scale", "binary", 1)] != first[("scale", "binary", 0)]


def test_every_cell_trains_the_same_epochs_over_its_own_examples(setup):
    res = setup["reference"].results
    rows = res[(res["seed"] == "0") & (res["judge"] == "posterior")].drop_duplicates("variant")
    assert (rows["budget"] == "epochs=0.25").all()
    batch = {"grpo": GRPO["training"]["per_device_train_batch_size"]
             // GRPO["training"]["num_generations"]}  # prompts a GRPO step
    for _, row in rows.iterrows():
        per_epoch = math.ceil(row["examples"] / batch.get(row["variant"], 8))
        assert row["steps"] == math.ceil(0.25 * per_epoch), row["variant"]
        assert row["epochs"] == pytest.approx(row["steps"] / per_epoch)
        assert row["visits"] == round(row["epochs"] * row["examples"])
    examples = rows.set_index("variant")["examples"]
    assert examples["soft"] > examples["majority"] > examples["binary"]  # unequal data, and
    steps = rows.set_index("variant")["steps"]
    assert steps["soft"] > steps["binary"]  # so unequal steps: equal epochs, not equal steps


# --- running: results, judges, caching, resumption, Ray ----------------------------------------

def test_results_have_a_row_per_cell_seed_judge_and_measure(setup):
    result = setup["reference"]
    res = result.results
    assert list(res.columns) == RESULT_COLUMNS
    # disagreement and scale: 4 variants x posterior; optimiser: 2 variants x 2 judges;
    # each (seed 0 + all)
    assert len(res) == (4 + 2 * 2) * 2
    assert set(res["measure"]) == {"reduction"}
    views = res.drop_duplicates("judge").set_index("judge")["view"].to_dict()
    assert views == {"posterior": "reranking", "panel": "generation"}
    assert res["lower"].isna().all()  # one seed: no interval (three or more give one)
    assert len(result.cells) == 4  # majority, 5-point and dpo are the same cell
    for cell in result.cells:
        assert (cell.folder / "cell.json").is_file()
        pairs = json.loads((cell.folder / "run" / "run.json").read_text())["inputs"].get("pairs")
        assert pairs is None or pairs.startswith(str(result.out / "inputs" / "pairs-"))
    assert (result.out / "figure-optimiser.png").is_file()
    assert list(result.summary.columns) == SUMMARY_COLUMNS
    assert list(result.summary["paper_ratio"]) == [1.53]
    assert any("training" in line for line in setup["lines"])


def test_a_generating_judge_measures_the_policy_against_its_own_base(setup):
    res = setup["reference"].results
    cells = {c.entries[0][:2]: c for c in setup["reference"].cells}
    for variant in ("dpo", "grpo"):
        cell = next(c for c in setup["reference"].cells if ("optimiser", variant, 0)
                    in c.entries)
        record = json.loads((cell.folder / "cell.json").read_text())
        [key] = [k for k in record["scores"] if k.startswith("panel-")]
        model = np.array(record["scores"][key]["score"])
        control = np.array(record["control"][key]["score"])
        assert record["control"][key]["prompt_id"] == record["scores"][key]["prompt_id"]
        row = res[(res["variant"] == variant) & (res["judge"] == "panel")
                  & (res["seed"] == "0")].iloc[0]
        assert row["estimate"] == pytest.approx(np.mean(control - model))  # toxicity: reduction
        assert not any(k.startswith("panel-") for k in json.loads(
            (cells[("disagreement", "soft")].folder / "cell.json").read_text())["scores"])


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
    assert len(calls) == len(set(calls)) == 4  # each cell trained exactly once overall
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

def measures(first: list, second: list) -> dict:
    return {("scale", "5-point", "posterior", "toxicity", "population"):
            Measures(np.array(first), ["a"], [{}]),
            ("scale", "binary", "posterior", "toxicity", "population"):
            Measures(np.array(second), ["b"], [{}])}


def test_summary_gives_the_difference_next_to_the_ratio(setup):
    cfg = load_grid_config(setup["config"]("s"))
    [comparison] = [c for c in default_comparisons(cfg) if c.experiment == "scale"]
    assert (comparison.first, comparison.second, comparison.paper) == ("5-point", "binary", 1.22)
    first, second = [[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]], [[1.0, 1.0], [2.0, 2.0], [1.0, 2.0]]
    row = grid_summary(cfg, measures(first, second), (comparison,)).iloc[0]
    # means 3 and 1.5: difference 1.5, ratio 2
    assert (row["first_estimate"], row["second_estimate"]) == (3.0, 1.5)
    assert (row["difference"], row["ratio"]) == (1.5, 2.0)
    diff = bootstrap_difference(np.array(first), np.array(second), 200, 0)
    ratio = ratio_interval(np.array(first), np.array(second), 200, 0)
    assert (row["difference_lower"], row["difference_upper"]) == (diff.lower, diff.upper)
    assert (row["ratio_lower"], row["ratio_upper"]) == (ratio.lower, ratio.upper)
    assert row["difference_lower"] < 1.5 < row["difference_upper"]  # three seeds: intervals
    assert row["comparison"] == "5-point vs binary (toxicity)" and row["paper_ratio"] == 1.22
    assert (row["judge"], row["view"], row["seeds"]) == ("posterior", "reranking", 1)
    one_seed = grid_summary(cfg, measures([[1.0, 3.0]], [[1.0, 1.0]]), (comparison,)).iloc[0]
    assert (one_seed["difference"], one_seed["ratio"]) == (1.0, 2.0)
    assert np.isnan([one_seed["difference_lower"], one_seed["ratio_upper"]]).all()
    assert GridComparison(experiment="g", first="m", second="population",
                          dimension="toxicity", unit="gender=male").label.endswith("male)")


def test_default_comparisons_cover_every_judge_and_every_group(setup):
    cfg = load_grid_config(setup["config"]("c", experiments={
        "optimiser": {"variants": {"dpo-awareness": {}, "grpo-awareness": GRPO}},
        "group-toxicity": {"units": ["population", "gender=male"], "variants": {
            "population": {}, "gender=male": {"pairs": {"group": {"gender": "male"}}}}}}))
    found = {(c.experiment, c.first, c.second, c.judge, c.unit, c.paper)
             for c in default_comparisons(cfg)}
    assert found == {
        ("scale", "5-point", "binary", "posterior", "population", 1.22),
        ("optimiser", "dpo", "grpo", "panel", "population", 8.0),
        ("optimiser", "dpo", "grpo", "posterior", "population", 8.0),
        ("group-toxicity", "gender=male", "population", "posterior", "gender=male", None)}


def test_plot_grid_draws_one_figure_per_experiment(setup):
    figures = plot_grid(setup["reference"].results)
    assert set(figures) == {"disagreement", "scale", "optimiser"}
    assert len(figures["optimiser"].axes) == 2  # panel and posterior
