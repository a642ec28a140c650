"""The YAML config of one training run, checked completely before any model is loaded.

A config names the base model, the method, the data (pairs for the DPO methods; prompts and a
reward for GRPO), TRL's hyper-parameters and the output folder::

    method: dpo-soft               # dpo | dpo-soft | dpo-importance | grpo
    model: tiny                    # a hub id, a local folder, or "tiny" (built locally)
    output_dir: runs/soft          # checkpoints, metrics.jsonl, run.json, the final model
    seed: 0
    pairs: pairs/soft/pairs.jsonl  # a pairs file or folder from `disagree pairs`, or a mapping
                                   # of make_pairs options (ratings, fit, strategy, dimension,...)
    training: {max_steps: 200, beta: 0.1, learning_rate: 5.0e-7}   # trl.DPOConfig fields
    lora: {r: 16, lora_alpha: 32, target_modules: all-linear}      # optional, peft.LoraConfig

GRPO replaces ``pairs`` with ``prompts`` (a file with a ``prompt`` column, or
``{ratings: ...}`` for the prompts of a ratings table) and ``reward`` (``weights`` per
dimension, the ``unit`` whose ratings the scorer predicts, and the ``scorer``: a saved
:class:`~disagree.train.scorer.RatingPanelScorer` or options to train one on ``ratings``).
Relative paths are relative to the working directory; ``ratings: default`` is the bundled
survey. Every problem raises :class:`~disagree.errors.TrainError` naming the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from disagree.errors import TrainError

METHODS = ("dpo", "dpo-soft", "dpo-importance", "grpo")
#: Weighting mode of each weighted DPO method.
WEIGHT_MODES = {"dpo-soft": "soft", "dpo-importance": "importance"}
KEYS = ("method", "model", "output_dir", "seed", "pairs", "prompts", "reward", "training",
        "lora", "tiny", "threads", "chat")
#: Options of a ``pairs:`` mapping: where the ratings and fit are, then make_pairs' keywords.
PAIR_SPEC_KEYS = ("ratings", "fit", "dimension", "strategy", "unit", "group", "scale", "margin",
                  "better", "split", "ties", "draws")
PROMPT_SPEC_KEYS = ("ratings",)
REWARD_KEYS = ("weights", "unit", "scorer", "ratings")
SCORER_OPTION_KEYS = ("encoder", "head", "attributes", "text_columns", "l2", "epochs", "lr")
PAIR_COLUMNS = ("prompt", "chosen", "rejected")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class TrainConfig:
    """A checked run config (see the module docstring for the keys).

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    model : str
        Hub id, local folder, or ``"tiny"``.
    output_dir : pathlib.Path
        Run folder.
    seed : int
        Seed of TRL, the model initialisation (tiny) and pair building.
    pairs, prompts, reward : str, dict or None
        The data, as written in the config (paths made absolute).
    training : dict
        Keyword arguments of ``trl.DPOConfig`` / ``trl.GRPOConfig``.
    lora : dict or None
        Keyword arguments of ``peft.LoraConfig``; ``None`` trains every weight.
    tiny : dict
        Sizes of the tiny model (``model: tiny`` only).
    chat : bool
        Give TRL conversational examples (the prompt as a user message, the responses as
        assistant messages) so that an instruction model's chat template is applied.
    threads : int or None
        CPU threads of torch (``torch.set_num_threads``); ``None`` keeps torch's default. A
        tiny model runs fastest on one: its matrices are too small to split.
    """

    method: str
    model: str
    output_dir: Path
    seed: int = 0
    pairs: str | dict[str, Any] | None = None
    prompts: str | dict[str, Any] | None = None
    reward: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    lora: dict[str, Any] | None = None
    tiny: dict[str, int] = field(default_factory=dict)
    threads: int | None = None
    chat: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the config (paths as strings)."""
        out = dataclasses.asdict(self)
        out["output_dir"] = str(self.output_dir)
        return out

    def digest(self) -> str:
        """SHA-256 of the config's canonical JSON, without ``output_dir``."""
        body = {k: v for k, v in self.to_dict().items() if k != "output_dir"}
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def weight_mode(self) -> str | None:
        """``"soft"`` or ``"importance"`` for the weighted DPO methods, else ``None``."""
        return WEIGHT_MODES.get(self.method)


def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> TrainConfig:
    """Read and check a run config.

    Parameters
    ----------
    source : path or mapping
        A YAML file, or the same content as a dict.

    Returns
    -------
    TrainConfig

    Raises
    ------
    TrainError
        Unknown or missing key, bad value, missing file, method/data mismatch, pair weights
        outside [0, 1], or hyper-parameters TRL rejects; the message names the key.
    """
    raw = _read(source)
    _check_keys(raw, KEYS, "")
    for key in ("method", "model", "output_dir"):
        if raw.get(key) in (None, ""):
            raise TrainError(f"config key '{key}' is required")
    method = raw["method"]
    if method not in METHODS:
        raise TrainError(f"method: {method!r} is not one of {list(METHODS)}")
    seed, threads = raw.get("seed", 0), raw.get("threads")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TrainError(f"seed: expected an integer, got {seed!r}")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 1):
        raise TrainError(f"threads: expected a positive integer, got {threads!r}")
    cfg = TrainConfig(
        method=method, model=_model(raw["model"]), output_dir=Path(raw["output_dir"]).absolute(),
        seed=seed, pairs=raw.get("pairs"), prompts=raw.get("prompts"), reward=raw.get("reward"),
        training=dict(_mapping(raw, "training") or {}), lora=_mapping(raw, "lora"),
        tiny=dict(_mapping(raw, "tiny") or {}), threads=threads, chat=raw.get("chat", False),
    )
    if not isinstance(cfg.chat, bool):
        raise TrainError(f"chat: expected true or false, got {cfg.chat!r}")
    if cfg.tiny and cfg.model != "tiny":
        raise TrainError("tiny: only used with 'model: tiny'; remove it or set model to tiny")
    if method == "grpo":
        cfg = _check_grpo(cfg)
    else:
        cfg = _check_dpo(cfg)
    trainer_args(cfg)  # TRL's own checks, before any model is loaded
    if cfg.lora is not None:
        _check_lora(cfg.lora)
    return cfg


def trainer_args(cfg: TrainConfig, **overrides: Any) -> Any:
    """Build the ``trl.DPOConfig`` or ``trl.GRPOConfig`` of a run.

    Parameters
    ----------
    cfg : TrainConfig
        The run config; ``training`` overrides the run's defaults (checkpoints in
        ``output_dir/checkpoints``, no external loggers, the config's seed, the CPU when
        there is no GPU).
    **overrides
        Final overrides (used by :func:`disagree.train.run.train`).

    Returns
    -------
    trl.DPOConfig or trl.GRPOConfig
    """
    from trl import DPOConfig, GRPOConfig

    cls = GRPOConfig if cfg.method == "grpo" else DPOConfig
    valid = {f.name for f in dataclasses.fields(cls)}
    for key in cfg.training:
        if key not in valid:
            raise TrainError(f"training: unknown key '{key}'{_suggest(key, valid)} "
                             f"(fields of trl.{cls.__name__})")
        if key == "output_dir":
            raise TrainError("training: output_dir is set by the top-level 'output_dir' key")
    import torch

    kwargs = {"output_dir": str(cfg.output_dir / "checkpoints"), "seed": cfg.seed,
              "report_to": [], "save_strategy": "steps", "use_cpu": not _accelerator(torch),
              **cfg.training, **overrides}
    try:
        with hide_trl_deprecations():
            return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise TrainError(f"training: {err}") from err


@contextlib.contextmanager
def hide_trl_deprecations() -> Iterator[None]:
    """Hide the deprecation warning of ``gradient_checkpointing`` that TRL's configs trigger.

    TRL sets transformers' deprecated name on every run; the user cannot act on it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing` is deprecated",
                                category=FutureWarning)
        yield


def _accelerator(torch: Any) -> bool:
    return torch.cuda.is_available() or (
        hasattr(torch.backends, "mps") and torch.backends.mps.is_available())


def pairs_file(path: str | os.PathLike[str]) -> Path:
    """Return the pairs file a path names: the file, or a pairs folder's parquet or jsonl.

    Parameters
    ----------
    path : path
        A pairs file, or a folder written by :meth:`disagree.pairs.PairSet.save`.

    Returns
    -------
    pathlib.Path
        An existing file (``pairs.parquet`` preferred in a folder).
    """
    p = Path(path)
    if p.is_dir():
        found = [p / n for n in ("pairs.parquet", "pairs.jsonl") if (p / n).is_file()]
        if not found:
            raise TrainError(f"pairs: folder {p} has no pairs.parquet or pairs.jsonl")
        p = found[0]
    if not p.is_file():
        raise TrainError(f"pairs: file {p} does not exist")
    return p


def read_pairs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a pairs file (``.jsonl``, ``.json``, ``.parquet``) or a pairs folder.

    A folder is one written by :meth:`disagree.pairs.PairSet.save` (its ``pairs.parquet`` or
    ``pairs.jsonl``). Weights are checked: present, numeric and in [0, 1], naming the row.

    Parameters
    ----------
    path : path
        File or folder.

    Returns
    -------
    pandas.DataFrame
        The pairs; ``weight`` float, ``split`` as in the file (absent if the file has none).
    """
    p = pairs_file(path)
    try:
        frame = (pd.read_parquet(p) if p.suffix == ".parquet"
                 else pd.read_json(p, lines=p.suffix == ".jsonl", dtype=False))
    except ValueError as err:
        raise TrainError(f"pairs: cannot read {p}: {err}") from err
    missing = [c for c in (*PAIR_COLUMNS, "weight") if c not in frame.columns]
    if missing:
        raise TrainError(f"pairs: {p} lacks column(s) {missing}; a pairs file has "
                         f"{[*PAIR_COLUMNS, 'weight']} (see `disagree pairs`)")
    if frame.empty:
        raise TrainError(f"pairs: {p} has no pairs")
    weight = pd.to_numeric(frame["weight"], errors="coerce")
    bad = frame.index[~weight.between(0.0, 1.0)]  # NaN and non-numbers fail too
    if len(bad):
        row = int(bad[0])
        value = frame["weight"].iloc[row]
        value = value.item() if hasattr(value, "item") else value  # numpy scalar -> Python
        raise TrainError(f"pairs: weight must be a number in [0, 1]; {p} row {row + 1} has "
                         f"{value!r} ({len(bad)} such row(s))")
    return frame.assign(weight=weight.astype(float))


def _read(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise TrainError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise TrainError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise TrainError(f"config file {path}: expected a mapping of keys, got "
                         f"{type(raw).__name__}")
    return raw


def _check_keys(raw: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in valid:
            raise TrainError(f"{where}unknown key '{key}'{_suggest(str(key), valid)}; "
                             f"valid keys: {list(valid)}")


def _suggest(key: str, valid: Any) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _mapping(raw: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise TrainError(f"{key}: expected a mapping of options, got {value!r}")
    return None if value is None else dict(value)


def _model(model: Any) -> str:
    if not isinstance(model, str):
        raise TrainError(f"model: expected a hub id, a folder or 'tiny', got {model!r}")
    if model == "tiny" or Path(model).is_dir():
        return model if model == "tiny" else str(Path(model).absolute())
    if model.startswith((".", "/", "~")) or not _HUB_ID.match(model):
        raise TrainError(f"model: folder {model} does not exist (and it is not a hub id)")
    return model


def _file(value: Any, key: str) -> str:
    if value == "default":
        return "default"
    if not isinstance(value, str | os.PathLike) or not Path(value).exists():
        raise TrainError(f"{key}: file {value!r} does not exist")
    return str(Path(value).absolute())


def _check_dpo(cfg: TrainConfig) -> TrainConfig:
    for key in ("prompts", "reward"):
        if getattr(cfg, key) is not None:
            raise TrainError(f"{key}: method {cfg.method} trains on pairs; '{key}' is for "
                             "method grpo (remove it, or set method: grpo)")
    if cfg.pairs is None:
        raise TrainError(f"pairs: method {cfg.method} needs 'pairs' (a pairs file or folder, "
                         "or a mapping of make_pairs options)")
    if isinstance(cfg.pairs, Mapping):
        spec = dict(cfg.pairs)
        _check_keys(spec, PAIR_SPEC_KEYS, "pairs: ")
        spec["ratings"] = _file(spec.get("ratings", "default"), "pairs.ratings")
        if spec.get("fit") is not None:
            spec["fit"] = _file(spec["fit"], "pairs.fit")
        strategy = spec.get("strategy", "majority")
        if strategy == "soft" and spec.get("fit") is None:
            raise TrainError("pairs.fit: strategy 'soft' needs the fit folder of the ratings")
        if cfg.weight_mode and strategy != "soft":
            raise TrainError(f"pairs.strategy: method {cfg.method} needs weighted pairs "
                             f"(strategy 'soft'); strategy {strategy!r} gives every pair "
                             "weight 1, which is plain DPO (use method dpo)")
        return dataclasses.replace(cfg, pairs=spec)
    pairs = _file(cfg.pairs, "pairs")
    weights = read_pairs(pairs)["weight"]
    if cfg.weight_mode and bool((weights == 1.0).all()):
        raise TrainError(f"pairs: every weight in {pairs} is 1, so method {cfg.method} would be "
                         "plain DPO; use method dpo, or soft pairs (`disagree pairs --strategy "
                         "soft`)")
    return dataclasses.replace(cfg, pairs=pairs)


def _check_grpo(cfg: TrainConfig) -> TrainConfig:
    if cfg.pairs is not None:
        raise TrainError("pairs: method grpo trains from 'prompts' and a 'reward', not from "
                         "pairs (remove 'pairs', or use a dpo method)")
    prompts: Any = cfg.prompts if cfg.prompts is not None else {"ratings": "default"}
    if isinstance(prompts, Mapping):
        _check_keys(prompts, PROMPT_SPEC_KEYS, "prompts: ")
        prompts = {"ratings": _file(prompts.get("ratings", "default"), "prompts.ratings")}
    else:
        prompts = _file(prompts, "prompts")
    if cfg.reward is None:
        raise TrainError("reward: method grpo needs 'reward' (weights per dimension, e.g. "
                         "{weights: {toxicity: -1.0}})")
    reward = _mapping({"reward": cfg.reward}, "reward") or {}
    _check_keys(reward, REWARD_KEYS, "reward: ")
    weights = reward.get("weights")
    if not isinstance(weights, Mapping) or not weights or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in weights.values()):
        raise TrainError(f"reward.weights: expected a mapping of dimension to number, e.g. "
                         f"{{toxicity: -1.0}}, got {weights!r}")
    unit = reward.get("unit", "population")
    if unit != "population" and not isinstance(unit, Mapping):
        raise TrainError(f"reward.unit: expected 'population' or a mapping of rater attributes "
                         f"to levels, e.g. {{politics: conservative}}, got {unit!r}")
    scorer = reward.get("scorer") or {}
    if isinstance(scorer, Mapping):
        _check_keys(scorer, SCORER_OPTION_KEYS, "reward.scorer: ")
    else:
        scorer = _file(scorer, "reward.scorer")
    reward = {"weights": dict(weights), "unit": unit if unit == "population" else dict(unit),
              "scorer": scorer if isinstance(scorer, str) else dict(scorer),
              "ratings": _file(reward.get("ratings", "default"), "reward.ratings")}
    return dataclasses.replace(cfg, prompts=prompts, reward=reward)


def _check_lora(lora: dict[str, Any]) -> None:
    try:
        from peft import LoraConfig
    except ImportError as err:
        raise TrainError("lora: needs peft (pip install peft, or the 'train' extra)") from err
    valid = {f.name for f in dataclasses.fields(LoraConfig)}
    for key in lora:
        if key not in valid:
            raise TrainError(f"lora: unknown key '{key}'{_suggest(key, valid)} "
                             "(fields of peft.LoraConfig)")
