"""Training on the exported pairs: weighted and soft-target DPO, GRPO with a rating-panel reward.

This is the only layer (with ``disagree.evaluate``) that needs the ``train`` extra (torch, trl,
transformers, datasets). Importing :mod:`disagree.train` itself does not import torch: each name
below is loaded from its module on first use, so ``disagree.train.load_config`` can check a
config on a machine without torch.

Modules
-------
config
    The YAML run config (:class:`TrainConfig`), checked before any model is loaded.
dpo
    :class:`WeightedDPOTrainer` (TRL's DPOTrainer plus the pairs' ``weight`` column, modes
    ``soft`` and ``importance``) and the loss functions it uses.
scorer, encoders, panel_eval
    :class:`RatingPanelScorer`: the rating distribution a population, group or rater would give
    a text, learned from the ratings (text encoders: hashed n-gram TF-IDF or MiniLM); the reward
    of GRPO. ``panel_eval``: its held-out accuracy and calibration against the Bayesian soft
    labels.
grpo
    :class:`~disagree.train.grpo.PanelReward`, the scorer as a TRL reward function.
metrics
    ``metrics.jsonl``, one line per logging step, consistent across resumes.
tiny
    A tiny causal LM built from a config and a tokenizer trained on the bundled texts, for tests,
    the demo and CPU runs (nothing downloaded).
run
    :func:`train`: one run from a config: data, model, trainer, checkpoints, ``metrics.jsonl``,
    ``run.json``, resume.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "load_config": "config",
    "WeightedDPOTrainer": "dpo",
    "soft_dpo_loss": "dpo",
    "importance_dpo_loss": "dpo",
    "RatingPanelScorer": "scorer",
    "build_tiny_model": "tiny",
    "train": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'disagree.train' has no attribute {name!r}")
    module = importlib.import_module(f"disagree.train.{_EXPORTS[name]}")
    return getattr(module, name)
