"""`disagree train`: configs, tiny DPO / soft DPO / GRPO runs on the CPU, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

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
    for name in ("tiny-dpo.yaml", "tiny-grpo.yaml", "gpu-dpo.yaml", "gpu-grpo.yaml"):
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
])
def test_bad_configs_name_the_key(tmp_path, change, message):
    raw = {**_config("tiny-dpo.yaml", tmp_path / "run"), **change}
    if "training" in change:
        raw["training"] = {**_config("tiny-dpo.yaml", tmp_path)["training"], **change["training"]}
    with pytest.raises(TrainError, match=message):
        load_config(raw)


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


# --- runs ----------------------------------------------------------------------------------

def test_tiny_dpo_learns_the_validation_preferences(tmp_path, capsys):
    cfg = tmp_path / "dpo.yaml"
    cfg.write_text(yaml.safe_dump(_config("tiny-dpo.yaml", tmp_path / "run", max_steps=30)))
    assert main(["train", str(cfg), "--quiet"]) == 0
    out = tmp_path / "run"
    assert "30 steps" in capsys.readouterr().out
    evals = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "eval"]
    start, end = evals[0], evals[-1]
    assert (start["step"], end["step"]) == (0, 30)
    assert end["eval_rewards/accuracies"] > 0.7 > 0.5  # chance is 0.5
    assert end["eval_rewards/margins"] > start["eval_rewards/margins"]
    assert end["eval_loss"] < start["eval_loss"]
    train_rows = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in train_rows] == [10, 20, 30]
    assert {"loss", "rewards/margins", "rewards/accuracies"} <= set(train_rows[0])
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["global_step"] == 30
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
        out = run_module.train(raw, progress=False)
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
    run_module.train(raw, progress=False)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["resumed_from"] == "checkpoint-5"
    assert run["global_step"] == 10
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"]
    assert steps == [2, 4, 6, 8, 10]  # the crashed session's step 6 was dropped, then re-logged

    def no_training(*args, **kwargs):
        raise AssertionError("a complete run trained again")

    monkeypatch.setattr(run_module, "_trainer", no_training)
    assert run_module.train(raw, progress=False) == out
    with pytest.raises(TrainError, match="holds a run of a different config"):
        run_module.train({**raw, "seed": 1}, progress=False)


def test_tiny_grpo_logs_panel_rewards_and_raises_them(tmp_path):
    raw = _config("tiny-grpo.yaml", tmp_path / "run", max_steps=60, logging_steps=10,
                  save_steps=60)
    out = run_module.train(raw, progress=False)
    rows = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"]
    assert [r["step"] for r in rows] == [10, 20, 30, 40, 50, 60]
    for row in rows:
        assert row["reward"] == pytest.approx(row["rewards/panel/mean"])
        assert -5.0 <= row["reward"] <= -1.0  # minus an expected rating on a 1..5 scale
    # the policy learns to write what a conservative rater finds less toxic
    assert rows[-1]["reward"] > rows[0]["reward"] + 0.1
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and (out / "scorer" / "scorer.json").is_file()
    assert run["config"]["reward"]["unit"] == {"politics": "conservative"}
