"""Training on the exported pairs: weighted and soft-target DPO, GRPO with a rating-panel reward.

This is the only layer (with ``disagree.evaluate``) that needs the ``train`` extra (torch, trl,
transformers, datasets). Importing :mod:`disagree.train` itself does not import torch: each name
below is loaded from its module on first use, so ``disagree.train.load_config`` can check a
config on a machine without torch.

Modules
-------
config, schema
    The YAML run config (:class:`TrainConfig`, pydantic models of its sections in ``schema``),
    checked before any model is loaded.
dpo
    :class:`WeightedDPOTrainer` (TRL's DPOTrainer plus the pairs' ``weight`` column, modes
    ``soft`` and ``importance``) and the loss functions it uses.
grpo
    :class:`~disagree.train.grpo.PanelReward`, a :class:`disagree.panel.RatingPanelScorer` (the
    stage before this one) as a TRL reward function.
metrics
    ``metrics.jsonl``, one line per logging step, consistent across resumes.
tiny
    A tiny causal LM built from a config and a tokenizer trained on the bundled texts, for tests,
    the demo and CPU runs (nothing downloaded).
run
    :func:`train`: one run from a config: data, model, trainer, checkpoints, ``metrics.jsonl``,
    ``run.json``, resume; it returns a :class:`TrainResult`.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "load_config": "config",
    "WeightedDPOTrainer": "dpo",
    "soft_dpo_loss": "dpo",
    "importance_dpo_loss": "dpo",
    "build_tiny_model": "tiny",
    "train": "run",
    "TrainResult": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name == "RatingPanelScorer":  # moved to its own stage
        warnings.warn("disagree.train.RatingPanelScorer is deprecated; use "
                      "disagree.panel.RatingPanelScorer", DeprecationWarning, stacklevel=2)
        from disagree.panel import RatingPanelScorer
        return RatingPanelScorer
    if name not in _EXPORTS:
        raise AttributeError(f"module 'disagree.train' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"disagree.train.{_EXPORTS[name]}")
    except ImportError as err:  # torch, trl or transformers missing
        from disagree.errors import TrainError

        raise TrainError(f"training needs the 'train' extra (pip install -e '.[train]'): "
                         f"{err}") from err
    return getattr(module, name)
