"""One training run from a config: data, model, TRL trainer, checkpoints, metrics, resume.

The run folder (``output_dir`` of the config) holds:

``run.json``
    The config, its digest, the inputs' hashes, library versions, status (``running`` or
    ``complete``), the checkpoint the last session resumed from, its wall time, final metrics.
``metrics.jsonl``
    One JSON object per logging step: ``step``, ``split`` (``train``, ``eval`` or
    ``summary``) and TRL's logged names (``loss``, ``rewards/margins``, ``rewards/accuracies``,
    ``eval_rewards/accuracies``, ``reward`` for GRPO, ...).
``checkpoints/checkpoint-N``
    TRL/transformers checkpoints; a re-run resumes from the last one.
``model/``
    The final model and tokenizer (written to a temporary folder, then renamed).
``pairs/``, ``scorer/``, ``base-model/``
    The pairs a ``pairs:`` mapping built, the GRPO reward's scorer, the tiny base model.

Re-running a complete run with the same config does nothing; a config that differs from the
one a folder was started with is refused (use a new ``output_dir``). :func:`train` returns a
:class:`TrainResult`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from disagree._io import read_table, sha256_file, versions, write_json
from disagree.data.groups import format_group
from disagree.errors import DataError, ModelError, TrainError
from disagree.pairs.pairset import REQUIRED_COLUMNS
from disagree.train.config import (
    PairSpec,
    TrainConfig,
    check_chat_template,
    hide_trl_deprecations,
    load_config,
    load_pairs,
    trainer_args,
)
from disagree.train.metrics import MetricsLog, read_metrics
from disagree.train.models import resolve_model
from disagree.train.tiny import build_tiny_model

log = logging.getLogger(__name__)

SPLIT_TRAIN, SPLIT_EVAL = "train", "validation"
#: Libraries whose versions run.json records.
PACKAGES = ("disagree-toolkit", "torch", "trl", "transformers", "datasets", "peft", "accelerate")
#: Final metrics shown by :meth:`TrainResult.summary`.
SUMMARY_METRICS = ("train_loss", "eval_rewards/accuracies", "eval_rewards/margins")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    run_dir : pathlib.Path
        The run folder (``run.json``, ``metrics.jsonl``, ``model/``...).
    method : str
        The config's method.
    global_step : int or None
        Optimizer steps of the finished run.
    wall_seconds : float or None
        Wall time of the last training session.
    final_metrics : dict
        ``{"train": TRL's train metrics, "eval": the last evaluation}`` (as in ``run.json``).
    status : str
        ``"complete"`` (trained now) or ``"already complete"`` (the folder held a finished run
        of this config; nothing was trained).
    resumed : bool
        Whether the run continued from a checkpoint of an interrupted session.
    """

    run_dir: Path
    method: str
    global_step: int | None
    wall_seconds: float | None
    final_metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "complete"
    resumed: bool = False

    def summary(self) -> str:
        """Return the lines ``disagree train`` prints: steps, time, final metrics, the folder."""
        final = self.final_metrics
        shown = {k: v for k, v in {**final.get("train", {}), **final.get("eval", {})}.items()
                 if k in SUMMARY_METRICS}
        return (f"{self.method}: {self.global_step} steps, {self.wall_seconds} s; "
                + ", ".join(f"{k} {v:.3f}" for k, v in shown.items())
                + f"\nrun folder: {self.run_dir}")


@dataclass
class RunData:
    """What a run trains on: datasets, the GRPO reward, and the inputs' hashes for run.json."""

    train: Any
    eval: Any | None
    reward: Any | None
    inputs: dict[str, Any]


def train(config: TrainConfig | str | os.PathLike[str] | dict[str, Any], *,
          progress: bool = True) -> TrainResult:
    """Run (or resume) the training a config describes.

    Parameters
    ----------
    config : TrainConfig, path or dict
        The run config (see :mod:`disagree.train.config`); it is checked before anything is
        loaded.
    progress : bool
        Show TRL's progress bar and one line per stage on stderr.

    Returns
    -------
    TrainResult
        The run folder, steps, wall time, final metrics and whether the run resumed.
    """
    cfg = config if isinstance(config, TrainConfig) else load_config(config)
    out = cfg.output_dir
    previous = _previous_run(out, cfg)
    if previous.get("status") == "complete":
        _say(progress, f"{out}: already complete (delete the folder to train again)")
        return _result(cfg, previous, "already complete")
    started = time.perf_counter()
    with _quiet(not progress):
        if cfg.threads is not None:
            import torch

            torch.set_num_threads(cfg.threads)
        check_chat_template(cfg.model, cfg.chat, hub=True)  # before any pairs are built
        data = _run_data(cfg, out, progress)  # every data error surfaces before the model loads
        if cfg.model == "tiny":
            _say(progress, "building the tiny model and its tokenizer")
            model_path = str(build_tiny_model(out / "base-model", seed=cfg.seed, **cfg.tiny))
        else:  # a bundled name or a .gguf file: its de-quantised folder (made once, cached)
            model_path = resolve_model(cfg.model)
        record = {**previous, "config": cfg.to_dict(), "config_digest": cfg.digest(),
                  "inputs": data.inputs, "base_model": model_path, "versions": versions(*PACKAGES),
                  "status": "running"}
        write_json(out / "run.json", record)

        trainer = _trainer(cfg, model_path, data, progress)
        checkpoint = _last_checkpoint(out / "checkpoints")
        _say(progress, f"{cfg.method}: training {model_path}"
             + (f", resuming from {checkpoint.name}" if checkpoint else ""))
        if data.eval is not None and checkpoint is None:
            trainer.evaluate()  # step 0: the curves' starting point
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final = {"train": result.metrics}
        if data.eval is not None:
            evals = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "eval"]
            if evals and evals[-1]["step"] == trainer.state.global_step:
                final["eval"] = {k: v for k, v in evals[-1].items() if k.startswith("eval_")}
            else:
                final["eval"] = trainer.evaluate()
        _save_model(trainer, out / "model")
    record.update(status="complete", final_metrics=final, global_step=trainer.state.global_step,
                  resumed_from=checkpoint.name if checkpoint else None,
                  wall_seconds=round(time.perf_counter() - started, 1))
    write_json(out / "run.json", record)
    _say(progress, f"done: {out / 'model'} ({record['wall_seconds']} s)")
    return _result(cfg, record, "complete")


def _result(cfg: TrainConfig, record: dict[str, Any], status: str) -> TrainResult:
    return TrainResult(run_dir=cfg.output_dir, method=cfg.method,
                       global_step=record.get("global_step"),
                       wall_seconds=record.get("wall_seconds"),
                       final_metrics=record.get("final_metrics") or {}, status=status,
                       resumed=bool(record.get("resumed_from")))


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Silence the progress bars of datasets and transformers while ``quiet``.

    TRL's ``gradient_checkpointing`` deprecation warnings are always hidden (see
    :func:`~disagree.train.config.hide_trl_deprecations`).
    """
    import datasets
    from transformers.utils import logging as hf_logging

    was = datasets.is_progress_bar_enabled(), hf_logging.is_progress_bar_enabled()
    if quiet:
        datasets.disable_progress_bars()
        hf_logging.disable_progress_bar()
    try:
        with hide_trl_deprecations():
            yield
    finally:
        if was[0]:
            datasets.enable_progress_bars()
        if was[1]:
            hf_logging.enable_progress_bar()


def _previous_run(out: Path, cfg: TrainConfig) -> dict[str, Any]:
    path = out / "run.json"
    if not path.is_file():
        return {}
    previous = json.loads(path.read_text(encoding="utf-8"))
    if previous.get("config_digest") != cfg.digest():
        raise TrainError(f"output_dir: {out} holds a run of a different config; choose another "
                         "output_dir, or delete the folder to start over")
    return previous


def _run_data(cfg: TrainConfig, out: Path, progress: bool) -> RunData:
    if cfg.method == "grpo":
        return _grpo_data(cfg, out, progress)
    frame, inputs = _pairs(cfg, out, progress)
    from datasets import Dataset

    columns = list(REQUIRED_COLUMNS)  # what TRL and the weighted trainer read
    if "split" in frame.columns:
        train_rows = frame[frame["split"] == SPLIT_TRAIN]
        eval_rows = frame[frame["split"] == SPLIT_EVAL]
    else:
        train_rows, eval_rows = frame, frame.iloc[:0]
    if train_rows.empty:
        raise TrainError(f"pairs: no pair has split '{SPLIT_TRAIN}' ({inputs['pairs']})")
    _say(progress, f"pairs: {len(train_rows)} train, {len(eval_rows)} validation")
    inputs.update(n_train=len(train_rows), n_eval=len(eval_rows))

    def dataset(rows: pd.DataFrame) -> Any:
        rows = rows[columns].reset_index(drop=True)
        if cfg.chat:
            rows = rows.assign(prompt=rows["prompt"].map(lambda t: _message("user", t)),
                               chosen=rows["chosen"].map(lambda t: _message("assistant", t)),
                               rejected=rows["rejected"].map(lambda t: _message("assistant", t)))
        return Dataset.from_pandas(rows, preserve_index=False)

    return RunData(dataset(train_rows), dataset(eval_rows) if len(eval_rows) else None, None,
                   inputs)


def _pairs(cfg: TrainConfig, out: Path, progress: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    if not isinstance(cfg.pairs, PairSpec):
        pairset = load_pairs(cfg.pairs)
        return pairset.frame, {"pairs": cfg.pairs, "pairs_sha256": sha256_file(pairset.source)}
    from disagree.pairs import make_pairs

    spec = cfg.pairs.options()  # make_pairs keywords as the config gave them (to_scale, ...)
    spec.pop("ratings", None)
    spec.pop("fit", None)
    table = _ratings(cfg.pairs.ratings)
    _say(progress, f"building pairs ({spec.get('strategy', 'majority')}) from {table.source}")
    try:
        pairset = make_pairs(table, cfg.pairs.fit, seed=spec.pop("split_seed", cfg.seed), **spec)
    except (DataError, ModelError) as err:
        raise TrainError(f"pairs: {err}") from err
    pairset.save(out / "pairs")
    return pairset.frame, {"pairs": str(out / "pairs"), "ratings_hash": table.data_hash,
                           "pairs_sha256": sha256_file(out / "pairs" / "pairs.jsonl")}


def _grpo_data(cfg: TrainConfig, out: Path, progress: bool) -> RunData:
    from datasets import Dataset

    from disagree.train.grpo import PanelReward, prompts_frame

    if isinstance(cfg.prompts, str):
        prompts = _read_prompts(Path(cfg.prompts))
        if "prompt" not in prompts.columns:
            raise TrainError(f"prompts: {cfg.prompts} has no 'prompt' column "
                             f"(columns: {list(prompts.columns)})")
        inputs = {"prompts": cfg.prompts, "prompts_sha256": sha256_file(Path(cfg.prompts))}
    else:
        table = _ratings(cfg.prompts.ratings if cfg.prompts is not None else "default")
        prompts = prompts_frame(table)
        inputs = {"prompts": table.source, "prompts_ratings_hash": table.data_hash}
    if cfg.reward is None:
        raise TrainError("reward: method grpo needs 'reward' (see disagree.train.config)")
    reward_cfg = cfg.reward.to_dict()  # weights, group (None: population), scorer, ratings
    scorer, scorer_inputs = _scorer(reward_cfg, cfg.seed, out, progress)
    group = reward_cfg["group"]
    reward = PanelReward(scorer, reward_cfg["weights"], group=group)
    inputs.update(scorer_inputs, n_prompts=len(prompts))
    _say(progress, f"prompts: {len(prompts)}; reward: {reward_cfg['weights']} for "
         f"{format_group(group)}")
    prompts = prompts[["prompt"]].astype(str)
    if cfg.chat:
        prompts["prompt"] = prompts["prompt"].map(lambda t: _message("user", t))
    dataset = Dataset.from_pandas(prompts, preserve_index=False)
    return RunData(dataset, None, reward, inputs)


def _read_prompts(path: Path) -> pd.DataFrame:
    try:
        return read_table(path, error=TrainError, what="prompts",
                          kinds=("csv", "tsv", "parquet", "jsonl", "json"))
    except TrainError as err:
        raise TrainError(f"prompts: {err}") from None


def _scorer(reward_cfg: dict[str, Any], seed: int, out: Path,
            progress: bool) -> tuple[Any, dict[str, Any]]:
    from disagree.panel import RatingPanelScorer

    source = reward_cfg["scorer"]
    if isinstance(source, str):
        return RatingPanelScorer.load(source), {"scorer": source}
    path = out / "scorer"
    table = _ratings(reward_cfg["ratings"])
    if path.exists():
        scorer = RatingPanelScorer.load(path)
    else:
        _say(progress, f"training the rating-panel scorer on {table.source}")
        scorer = RatingPanelScorer(seed=seed, **source).fit(table)
        scorer.save(path)
    return scorer, {"scorer": str(path), "scorer_ratings_hash": table.data_hash}


def _trainer(cfg: TrainConfig, model_path: str, data: RunData, progress: bool) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    defaults: dict[str, Any] = {"disable_tqdm": not progress, "save_total_limit": 2}
    if data.eval is not None:
        logging_steps = cfg.training.get("logging_steps", 10)
        defaults.update(eval_strategy="steps", eval_steps=logging_steps,
                        logging_steps=logging_steps)
    args = trainer_args(cfg, **{k: v for k, v in defaults.items() if k not in cfg.training})
    peft_config = None
    if cfg.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(**cfg.lora)
    common = {"model": model_path, "args": args, "processing_class": tokenizer,
              "train_dataset": data.train, "peft_config": peft_config,
              "callbacks": [MetricsLog(cfg.output_dir / "metrics.jsonl")]}
    if cfg.method == "grpo":
        from trl import GRPOTrainer

        trainer = GRPOTrainer(reward_funcs=[data.reward], **common)
    elif cfg.weight_mode is None:
        from trl import DPOTrainer

        trainer = DPOTrainer(eval_dataset=data.eval, **common)
    else:
        from disagree.train.dpo import WeightedDPOTrainer

        trainer = WeightedDPOTrainer(weight_mode=cfg.weight_mode, eval_dataset=data.eval,
                                     **common)
    if not progress:  # without a progress bar, transformers prints every log dict instead
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def _message(role: str, text: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def _save_model(trainer: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    trainer.save_model(str(tmp))
    trainer.processing_class.save_pretrained(str(tmp))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def _last_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(folder))
    return Path(last) if last else None


def _ratings(source: str) -> Any:
    from disagree.data import load_ratings
    from disagree.data.simulate import load_default_survey

    return load_default_survey() if source == "default" else load_ratings(source)


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"[disagree train] {message}", file=sys.stderr, flush=True)

