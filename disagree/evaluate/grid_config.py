"""The YAML config of the paper's experiment grid (``disagree experiments CONFIG.yaml``).

::

    out: grid                    # OUT/cells/<hash>/{run/, cell.json}, results.csv, summary.csv
    ratings: default             # the bundled survey, or a ratings file
    fit: fits/default            # a fit folder of these ratings (`disagree fit`): the judge
    seeds: [0, 1]                # every variant is trained once per seed
    split: [0.8, 0.1, 0.1]       # the prompt split shared by every cell (and the held-out set)
    split_seed: 0
    dimensions: [toxicity]       # evaluated dimensions (an experiment may give its own)
    units: [population]          # whose soft labels judge: population or e.g. politics=liberal
    train:                       # a `disagree train` config without output_dir and seed
      method: dpo
      model: tiny
      pairs: {strategy: majority, dimension: toxicity}
      training: {max_steps: 30}
    experiments:                 # experiment -> variants: overrides merged into `train`
      disagreement:
        variants:
          majority: {pairs: {strategy: majority}}
          all: {pairs: {strategy: all}}
          soft: {method: dpo-soft, pairs: {strategy: soft}}
    comparisons: null            # default: the paper's ratios among the experiments given
    judge: {name: posterior, column: score}
    bootstrap: {n: 2000, seed: 0}
    executor: {name: local}      # or {name: ray, address: auto, num_cpus: 1, num_gpus: 1}

A variant is merged into ``train`` key by key (mappings merged recursively; ``null`` removes a
key, e.g. ``pairs: null`` for a GRPO variant). The grid sets ``seed``, ``output_dir``,
``pairs.split`` and ``pairs.split_seed`` (one prompt split for every cell), ``pairs.ratings``
(default ``ratings``) and a soft strategy's ``pairs.fit``; a GRPO variant trains on the
training split's prompts with a reward scorer fitted to the training prompts' ratings only
(:func:`expand_cells`). Relative paths are relative to the working directory. Every
problem raises :class:`~disagree.errors.EvaluateError` naming the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictInt, ValidationError, field_validator, model_validator

from disagree._io import sha256_file, write_table
from disagree.data import RatingTable
from disagree.data.groups import format_group, parse_group
from disagree.data.splits import split_prompts
from disagree.errors import DisagreeError, EvaluateError
from disagree.evaluate.config import Bootstrap, read_config
from disagree.evaluate.heldout import ratings_of_fit
from disagree.pairs import BETTER
from disagree.train.schema import ScorerOptions, Section, problems

#: Keys of the ``train:`` template that the grid sets for each cell.
SET_BY_GRID = ("output_dir", "seed")


def unit_label(value: Any) -> str:
    """Normalise a judging unit: ``population`` or ``factor=level,...``."""
    if value in (None, "population"):
        return "population"
    try:
        group = parse_group(value) if isinstance(value, str) else dict(value)
    except (DisagreeError, TypeError, ValueError) as err:
        raise ValueError(f"expected 'population' or a group such as politics=liberal, got "
                         f"{value!r} ({err})") from None
    return format_group(group)


class Experiment(Section):
    """One experiment: its variants (overrides of ``train``), evaluated dimensions, units."""

    variants: dict[str, dict[str, Any] | None]
    dimensions: tuple[str, ...] | None = None
    units: tuple[str, ...] | None = None

    @field_validator("variants")
    @classmethod
    def _some(cls, value: dict[str, Any]) -> dict[str, dict[str, Any]]:
        if not value:
            raise ValueError("expected at least one variant")
        return {str(k): dict(v or {}) for k, v in value.items()}

    @field_validator("units", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        return None if value is None else tuple(unit_label(u) for u in value)


class GridComparison(Section):
    """A ratio ``first / second`` of two variants' measure on a dimension, judged by ``unit``."""

    experiment: str
    first: str
    second: str
    dimension: str
    unit: str = "population"
    paper: float | None = None

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: Any) -> str:
        return unit_label(value)

    @property
    def label(self) -> str:
        """``all / majority (toxicity)``, with the unit when it is not the population."""
        unit = "" if self.unit == "population" else f", {self.unit}"
        return f"{self.first} / {self.second} ({self.dimension.replace('_', ' ')}{unit})"


class GridJudge(Section):
    """The judge: the posterior judge's score column and batch size."""

    name: Literal["posterior"] = "posterior"
    column: Literal["score", "score_mix"] = "score"
    batch_size: int = Field(16, ge=1)


class Executor(Section):
    """Where cells run: ``local`` (one after another) or ``ray`` (one task per cell)."""

    name: Literal["local", "ray"] = "local"
    address: str | None = None
    num_cpus: float = Field(1, ge=0)
    num_gpus: float = Field(0, ge=0)


class GridConfig(Section):
    """A checked grid config (see the module docstring); frozen."""

    out: Path
    ratings: str = "default"
    fit: Path
    seeds: tuple[StrictInt, ...] = (0,)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: StrictInt = 0
    dimensions: tuple[str, ...] = ("toxicity",)
    units: tuple[str, ...] = ("population",)
    better: dict[str, Literal["lower", "higher"]] = Field(default_factory=dict)
    train: dict[str, Any]
    experiments: dict[str, Experiment]
    comparisons: tuple[GridComparison, ...] | None = None
    judge: GridJudge = GridJudge()
    bootstrap: Bootstrap = Bootstrap()
    executor: Executor = Executor()

    @field_validator("fit")
    @classmethod
    def _fit_exists(cls, value: Path) -> Path:
        if not (value / "model.json").is_file():
            raise ValueError(f"{value} is not a complete fit folder (no model.json); make it "
                             f"with `disagree fit`")
        return value.absolute()

    @field_validator("ratings")
    @classmethod
    def _ratings(cls, value: str) -> str:
        if value == "default":
            return value
        if not Path(value).is_file():
            raise ValueError(f"file {value!r} does not exist")
        return str(Path(value).absolute())

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"expected distinct seeds, at least one, got {list(value)}")
        return value

    @field_validator("units", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        return tuple(unit_label(u) for u in value)

    @field_validator("train")
    @classmethod
    def _template(cls, value: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in SET_BY_GRID if k in value]
        if given:
            raise ValueError(f"the grid sets {', '.join(given)} for each cell; remove it")
        return value

    @field_validator("experiments")
    @classmethod
    def _some_experiments(cls, value: dict[str, Experiment]) -> dict[str, Experiment]:
        if not value:
            raise ValueError("expected at least one experiment")
        return value

    @model_validator(mode="after")
    def _known(self) -> GridConfig:
        directions = {**BETTER, **self.better}
        for name in self.experiments:
            for dim in self.dimensions_of(name):
                if dim not in directions:
                    raise ValueError(f"experiments.{name}: no direction for dimension {dim!r}; "
                                     f"give better: {{{dim}: lower}} (or higher)")
        for i, c in enumerate(self.comparisons or ()):
            exp = self.experiments.get(c.experiment)
            if exp is None:
                raise ValueError(f"comparisons[{i}].experiment: {c.experiment!r} is not an "
                                 f"experiment ({', '.join(self.experiments)})")
            for which in ("first", "second"):
                if getattr(c, which) not in exp.variants:
                    raise ValueError(f"comparisons[{i}].{which}: {getattr(c, which)!r} is not "
                                     f"a variant of {c.experiment} ({', '.join(exp.variants)})")
            if c.dimension not in self.dimensions_of(c.experiment):
                raise ValueError(f"comparisons[{i}].dimension: {c.dimension!r} is not "
                                 f"evaluated in {c.experiment}")
            if c.unit not in self.units_of(c.experiment):
                raise ValueError(f"comparisons[{i}].unit: {c.unit!r} does not judge "
                                 f"{c.experiment}")
        return self

    def dimensions_of(self, experiment: str) -> tuple[str, ...]:
        """Return the dimensions an experiment is evaluated on."""
        return self.experiments[experiment].dimensions or self.dimensions

    def units_of(self, experiment: str) -> tuple[str, ...]:
        """Return the units whose soft labels judge an experiment."""
        return self.experiments[experiment].units or self.units

    def direction(self, dimension: str) -> str:
        """``lower`` or ``higher``: which way a dimension is better."""
        return {**BETTER, **self.better}[dimension]


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base`` recursively; a ``None`` value removes the key."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_grid_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> GridConfig:
    """Read and check a grid config (a YAML file or the same content as a dict).

    Raises
    ------
    EvaluateError
        For a missing file, bad YAML, an unknown or missing key or a bad value (named).
    """
    raw = read_config(source)
    try:
        return GridConfig.model_validate(raw)
    except ValidationError as err:
        sections = {"": GridConfig, "judge": GridJudge, "bootstrap": Bootstrap,
                    "executor": Executor}
        experiments = raw.get("experiments")
        if isinstance(experiments, Mapping):
            sections.update({f"experiments.{k}": Experiment for k in experiments})
        raise EvaluateError(f"grid config: {problems(err, sections)}") from None


# --- cells: resolved train configs and their hashes ----------------------------------------

@dataclass(frozen=True)
class Cell:
    """One training run of the grid and the (experiment, variant, seed) entries that use it.

    ``key`` (the first 16 hex digits of ``digest``) names its folder ``OUT/cells/<key>``;
    ``digest`` is the SHA-256 of the canonical JSON of the resolved train config (without
    ``output_dir``; input files replaced by their content hashes) and the inputs' hashes.
    """

    key: str
    digest: str
    config: dict[str, Any]
    folder: Path
    entries: tuple[tuple[str, str, int], ...]
    evaluations: tuple[tuple[str, str], ...]


@dataclass
class GridInputs:
    """The grid's shared inputs: the ratings, their hashes, and files made for GRPO cells."""

    cfg: GridConfig
    table: RatingTable
    ratings: str
    fit_sha256: str
    substitutions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, cfg: GridConfig) -> GridInputs:
        """Load the ratings and read the fit's hashes (``model.json``).

        The ratings are those the fit saw (see
        :func:`disagree.evaluate.heldout.ratings_of_fit`).

        Raises
        ------
        EvaluateError
            ``fit:`` when the fit was made from other ratings.
        """
        table, ratings = ratings_of_fit(cfg.ratings, cfg.fit, cfg.out)
        meta = json.loads((cfg.fit / "model.json").read_text())
        sha = meta.get("posterior_sha256") or sha256_file(cfg.fit / "posterior.nc")
        inputs = cls(cfg, table, ratings, sha)
        if ratings != "default":
            inputs.substitutions[ratings] = f"ratings:{table.data_hash}"
        inputs.substitutions[str(cfg.fit)] = f"fit:{sha}"
        return inputs

    def hashes(self) -> dict[str, str]:
        """Return the inputs' hashes that enter every cell's digest."""
        return {"ratings": self.table.data_hash, "fit": self.fit_sha256}

    def train_prompts(self) -> str:
        """Write (once) the training split's prompts for GRPO; return the file's path."""
        cfg = self.cfg
        tag = canonical_sha({"data": self.table.data_hash, "split": cfg.split,
                             "split_seed": cfg.split_seed})[:12]
        path = cfg.out.absolute() / "inputs" / f"train-prompts-{tag}.csv"
        if not path.is_file():
            items = self.table.items.reset_index()
            items["prompt_id"] = items["prompt_id"].astype(str)
            assignment = split_prompts(items["prompt_id"], cfg.split, cfg.split_seed)
            prompts = (items[items["prompt_id"].map(assignment) == "train"]
                       [["prompt_id", "prompt"]].drop_duplicates("prompt_id")
                       .sort_values("prompt_id"))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_table(path, prompts)
        self.substitutions[str(path)] = f"prompts:{tag}"
        return str(path)

    def scorer(self, options: Mapping[str, Any], seed: int) -> str:
        """Fit (once) a reward scorer on the training prompts' ratings; return its folder."""
        from disagree.panel import RatingPanelScorer, split_items

        cfg = self.cfg
        tag = canonical_sha({"options": dict(options), "seed": seed, "split": cfg.split,
                             "data": self.table.data_hash, "split_seed": cfg.split_seed})[:12]
        path = cfg.out.absolute() / "inputs" / f"scorer-{tag}"
        if not (path / "scorer.json").is_file():
            train_items, _ = split_items(self.table, cfg.split, cfg.split_seed)
            RatingPanelScorer(seed=seed, **options).fit(self.table, train_items).save(path)
        self.substitutions[str(path)] = f"scorer:{tag}"
        return str(path)


def canonical_sha(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def substitute(obj: Any, paths: Mapping[str, str]) -> Any:
    """Replace every string of ``obj`` that is a key of ``paths`` by its value (recursively)."""
    if isinstance(obj, Mapping):
        return {k: substitute(v, paths) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [substitute(v, paths) for v in obj]
    return paths.get(obj, obj) if isinstance(obj, str) else obj


def resolve_cell(cfg: GridConfig, inputs: GridInputs, experiment: str, variant: str,
                 seed: int) -> tuple[str, dict[str, Any]]:
    """Return a cell's digest and its resolved train config (``output_dir`` in its folder).

    Raises
    ------
    EvaluateError
        ``experiments.<experiment>.variants.<variant>: <the train config's problem>``.
    """
    from disagree.train import load_config

    where = f"experiments.{experiment}.variants.{variant}"
    raw = merge(cfg.train, cfg.experiments[experiment].variants[variant])
    raw["seed"] = seed
    raw["output_dir"] = str(cfg.out.absolute() / "cells" / "pending")
    if raw.get("method") == "grpo":
        if "pairs" in raw:
            raise EvaluateError(f"{where}: pairs: a grpo variant trains on prompts and a reward; "
                                "remove the template's pairs with `pairs: null`")
        raw["prompts"] = inputs.train_prompts()
        reward = dict(raw.get("reward") or {})
        if not isinstance(reward.get("scorer"), str):
            try:
                options = ScorerOptions.model_validate(reward.get("scorer") or {}).options()
            except ValidationError as err:
                raise EvaluateError(f"{where}: reward.scorer: "
                                    f"{problems(err, {'': ScorerOptions})}") from None
            reward["scorer"] = inputs.scorer(options, seed)
            reward.pop("ratings", None)
        raw["reward"] = reward
    else:
        pairs = raw.get("pairs")
        if not isinstance(pairs, Mapping):
            raise EvaluateError(f"{where}: pairs: the grid needs a mapping of make_pairs options "
                                f"(it sets the prompt split), got {pairs!r}")
        pairs = {"ratings": inputs.ratings, **pairs, "split": list(cfg.split),
                 "split_seed": cfg.split_seed}
        if pairs.get("strategy") == "soft" and "fit" not in pairs:
            pairs["fit"] = str(cfg.fit)
        raw["pairs"] = pairs
    try:
        resolved = load_config(raw).to_dict()
    except DisagreeError as err:
        raise EvaluateError(f"{where}: {err}") from None
    resolved.pop("output_dir")
    digest = canonical_sha({"config": substitute(resolved, inputs.substitutions),
                            "inputs": inputs.hashes()})
    folder = cfg.out.absolute() / "cells" / digest[:16]
    return digest, {**resolved, "output_dir": str(folder / "run")}


def expand_cells(cfg: GridConfig, inputs: GridInputs) -> list[Cell]:
    """Resolve every (experiment, variant, seed); merge entries whose configs are equal.

    A cell used by several experiments (the same resolved config and seed) is trained once and
    evaluated on the union of their dimensions and units.
    """
    found: dict[str, dict[str, Any]] = {}
    for exp in cfg.experiments:
        evaluations = [(d, u) for d in cfg.dimensions_of(exp) for u in cfg.units_of(exp)]
        for variant in cfg.experiments[exp].variants:
            for seed in cfg.seeds:
                digest, config = resolve_cell(cfg, inputs, exp, variant, seed)
                cell = found.setdefault(digest, {"config": config, "entries": [],
                                                 "evaluations": []})
                cell["entries"].append((exp, variant, seed))
                cell["evaluations"] += [e for e in evaluations if e not in cell["evaluations"]]
    return [Cell(d[:16], d, c["config"], Path(c["config"]["output_dir"]).parent,
                 tuple(c["entries"]), tuple(c["evaluations"])) for d, c in found.items()]
