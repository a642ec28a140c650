"""The YAML config of the paper's experiment grid (``disagree experiments CONFIG.yaml``).

::

    out: grid                    # OUT/cells/<hash>/{run/, cell.json}, results.csv, summary.csv
    ratings: default             # the bundled survey, or a ratings file
    fit: fits/default            # a fit folder of these ratings (`disagree fit`): the judge
    seeds: [0, 1, 2]             # every variant is trained once per seed (3+ for intervals)
    split: [0.8, 0.1, 0.1]       # the prompt split shared by every cell (and the held-out set)
    split_seed: 0
    budget: {epochs: 2}          # every cell: 2 epochs over its own training pairs (GRPO: prompts)
    dimensions: [toxicity]       # evaluated dimensions (an experiment may give its own)
    units: [population]          # whose soft labels judge: population or e.g. politics=liberal
    train:                       # a `disagree train` config without output_dir, seed, max_steps
      method: dpo
      model: tiny
      pairs: {strategy: majority, dimension: toxicity}
      training: {warmup_steps: 0.1}   # below 1: a ratio of each cell's steps
    experiments:                 # experiment -> variants: overrides merged into `train`
      disagreement:
        variants:
          majority: {pairs: {strategy: majority}}
          all: {pairs: {strategy: all}}
          soft: {method: dpo-soft, pairs: {strategy: soft}}
      optimiser:
        judges: [panel, posterior]   # default: [judge.name]
        variants: {...}
      group:                     # expanded: a variant per level of every interaction factor
        groups: {variant: {method: dpo-soft, pairs: {strategy: soft}}}
    comparisons: null            # default: the paper's comparisons among the experiments given
    judge:
      name: posterior            # the judge of experiments that name none
      column: score              # the posterior judge's score column
      panel: {scorer: {encoder: hashing}, seed: 0}   # the panel judge's scorer (all ratings)
      classifier: {toxicity: {model: some/classifier, label: toxic}}
      generation: {n: 4, max_new_tokens: 48, seed: 0}  # the generating judges' sampling
    bootstrap: {n: 2000, seed: 0}
    executor: {name: local}      # or {name: ray, address: auto, num_cpus: 1, num_gpus: 1}

A variant is merged into ``train`` key by key (mappings merged recursively; ``null`` removes a
key, e.g. ``pairs: null`` for a GRPO variant). The grid sets ``seed``, ``output_dir``,
``training.num_train_epochs`` (``budget.epochs``: every cell the same number of passes over its
own training examples; ``max_steps`` and a ``warmup_steps`` of 1 or more, which would give the
cells unequal budgets, are refused), ``pairs.split`` and ``pairs.split_seed`` (one prompt split
for every cell), ``pairs.ratings`` (default ``ratings``) and a soft strategy's ``pairs.fit``
(:mod:`disagree.evaluate.grid_cells`).

An experiment with ``groups:`` becomes one experiment per dimension on which the fit has
group-by-item interactions, ``<name>-<dimension>``: a ``population`` variant and one variant per
level of every factor interacting on that dimension (``politics=liberal``, trained on that
group's pairs), each merged with ``groups.variant``, judged by the population and by every
group (:func:`expand_groups`, done by :func:`load_grid_config`).

Judges: ``posterior`` (the policy reranks the survey's rated responses: the ``reranking``
view), ``panel`` (generates, then a rating-panel scorer fitted on every rating of the survey,
with its own seed, scores the completions) and ``classifier`` (generates, then a
text-classification model per dimension). Relative paths are relative to the working
directory. Every problem raises :class:`~disagree.errors.EvaluateError` naming the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictInt, ValidationError, field_validator, model_validator

from disagree.data.groups import format_group, parse_group
from disagree.errors import DisagreeError, EvaluateError
from disagree.evaluate.config import Bootstrap, read_config
from disagree.evaluate.generate import GenerationSettings
from disagree.model import ModelSpec
from disagree.pairs import BETTER
from disagree.train.schema import ScorerOptions, Section, problems

#: Keys of the ``train:`` template that the grid sets for each cell.
SET_BY_GRID = ("output_dir", "seed")
#: Training keys the grid refuses: ``budget.epochs`` sets every cell's length.
BUDGET_KEYS = ("max_steps", "num_train_epochs")
#: Judge names, and what each looks at: its own completions or the survey's rated responses.
VIEWS = {"posterior": "reranking", "panel": "generation", "classifier": "generation"}
JudgeName = Literal["posterior", "panel", "classifier"]


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


def budget_problem(training: Mapping[str, Any]) -> str | None:
    """Return why a ``training:`` mapping would break the grid's equal budgets, or ``None``."""
    for key in BUDGET_KEYS:
        if key in training:
            return (f"training.{key}: the grid trains every cell budget.epochs epochs over its "
                    f"own training pairs (prompts for GRPO), so that cells get equal budgets; "
                    f"remove it")
    warmup = training.get("warmup_steps")
    if isinstance(warmup, int | float) and warmup >= 1:
        return (f"training.warmup_steps: {warmup} steps would be a different share of each "
                f"cell's training; give a ratio below 1 (e.g. 0.1: 10% of the cell's steps)")
    return None


class Groups(Section):
    """``groups:``: expand to a variant per level of every factor the fit has interactions for."""

    variant: dict[str, Any] = Field(default_factory=dict)


class Experiment(Section):
    """One experiment: its variants (or ``groups``), dimensions, units and judges."""

    variants: dict[str, dict[str, Any] | None] | None = None
    groups: Groups | None = None
    dimensions: tuple[str, ...] | None = None
    units: tuple[str, ...] | None = None
    judges: tuple[JudgeName, ...] | None = None

    @field_validator("variants")
    @classmethod
    def _some(cls, value: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("expected at least one variant")
        return {str(k): dict(v or {}) for k, v in value.items()}

    @field_validator("units", mode="before")
    @classmethod
    def _units(cls, value: Any) -> Any:
        return None if value is None else tuple(unit_label(u) for u in value)

    @field_validator("judges")
    @classmethod
    def _judges(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError(f"expected distinct judges, at least one, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Experiment:
        if (self.variants is None) == (self.groups is None):
            raise ValueError("give either variants or groups")
        return self


class GridComparison(Section):
    """``first`` vs ``second`` (difference and ratio) on a dimension, by a judge and unit."""

    experiment: str
    first: str
    second: str
    dimension: str
    unit: str = "population"
    judge: JudgeName | None = None
    paper: float | None = None

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: Any) -> str:
        return unit_label(value)

    @property
    def label(self) -> str:
        """``all vs majority (toxicity)``, with the unit when it is not the population."""
        unit = "" if self.unit == "population" else f", {self.unit}"
        return f"{self.first} vs {self.second} ({self.dimension.replace('_', ' ')}{unit})"


class PanelOptions(Section):
    """The panel judge's rating-panel scorer: options, and the seed of its fit."""

    scorer: ScorerOptions = ScorerOptions()
    seed: StrictInt = 0


class ClassifierModel(Section):
    """A text-classification model (hub id or folder) and the label whose probability scores."""

    model: str
    label: str


class GridJudge(Section):
    """The default judge, the posterior judge's settings and the generating judges' options."""

    name: JudgeName = "posterior"
    column: Literal["score", "score_mix"] = "score"
    batch_size: int = Field(16, ge=1)
    panel: PanelOptions = PanelOptions()
    classifier: dict[str, ClassifierModel] = Field(default_factory=dict)
    generation: GenerationSettings = GenerationSettings()


class Budget(Section):
    """Every cell's training budget: ``epochs`` over its own training examples."""

    epochs: float = Field(gt=0)


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
    budget: Budget
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
        problem = budget_problem(value.get("training") or {})
        if problem:
            raise ValueError(problem)
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
            if "classifier" in self.judges_of(name):
                missing = [d for d in self.dimensions_of(name) if d not in self.judge.classifier]
                if missing:
                    raise ValueError(f"experiments.{name}.judges: classifier needs a model for "
                                     f"{', '.join(missing)} in judge.classifier")
                if set(self.units_of(name)) != {"population"}:
                    raise ValueError(f"experiments.{name}.judges: a classifier judges for no "
                                     f"group; judge units other than population with panel or "
                                     f"posterior")
        for i, c in enumerate(self.comparisons or ()):
            self._check_comparison(i, c)
        return self

    def _check_comparison(self, i: int, c: GridComparison) -> None:
        exp = self.experiments.get(c.experiment)
        if exp is None:
            raise ValueError(f"comparisons[{i}].experiment: {c.experiment!r} is not an "
                             f"experiment ({', '.join(self.experiments)})")
        for which in ("first", "second"):
            if getattr(c, which) not in (exp.variants or {}):
                raise ValueError(f"comparisons[{i}].{which}: {getattr(c, which)!r} is not "
                                 f"a variant of {c.experiment} ({', '.join(exp.variants or {})})")
        if c.dimension not in self.dimensions_of(c.experiment):
            raise ValueError(f"comparisons[{i}].dimension: {c.dimension!r} is not "
                             f"evaluated in {c.experiment}")
        if c.unit not in self.units_of(c.experiment):
            raise ValueError(f"comparisons[{i}].unit: {c.unit!r} does not judge "
                             f"{c.experiment}")
        if c.judge is not None and c.judge not in self.judges_of(c.experiment):
            raise ValueError(f"comparisons[{i}].judge: {c.judge!r} does not judge "
                             f"{c.experiment} ({', '.join(self.judges_of(c.experiment))})")

    def dimensions_of(self, experiment: str) -> tuple[str, ...]:
        """Return the dimensions an experiment is evaluated on."""
        return self.experiments[experiment].dimensions or self.dimensions

    def units_of(self, experiment: str) -> tuple[str, ...]:
        """Return the units whose soft labels judge an experiment."""
        return self.experiments[experiment].units or self.units

    def judges_of(self, experiment: str) -> tuple[str, ...]:
        """Return the judges of an experiment; the first is its comparisons' by default."""
        return self.experiments[experiment].judges or (self.judge.name,)

    def direction(self, dimension: str) -> str:
        """``lower`` or ``higher``: which way a dimension is better."""
        return {**BETTER, **self.better}[dimension]

    def judge_key(self, name: str, dimension: str) -> str:
        """Key of a judge in ``cell.json``: its name and a hash of its options when it has any.

        Changing a generating judge's options changes its key, so the cells are judged again
        (not trained again).
        """
        if name == "posterior":
            return name
        options: dict[str, Any] = {"generation": self.judge.generation.model_dump()}
        if name == "panel":
            options["panel"] = self.judge.panel.model_dump(mode="json")
        else:
            options["classifier"] = self.judge.classifier[dimension].model_dump()
        text = json.dumps(options, sort_keys=True, separators=(",", ":"))
        return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


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


def expand_groups(raw: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """Replace every experiment with ``groups:`` by one experiment per interacting dimension.

    Parameters
    ----------
    raw : mapping
        A grid config's content (checked).
    spec : ModelSpec
        The fit's spec: its interaction cells ``(dimension, factor)`` and factor levels.

    Returns
    -------
    dict
        The content with experiments ``<name>-<dimension>`` in place of each ``groups`` one:
        variants ``population`` and ``factor=level`` (that group's pairs on the dimension),
        each merged with ``groups.variant``; units ``population`` and every group.

    Raises
    ------
    EvaluateError
        When the fit has no interaction on the experiment's dimensions.
    """
    experiments: dict[str, Any] = {}
    for name, exp in raw["experiments"].items():
        if not isinstance(exp, Mapping) or exp.get("groups") is None:
            experiments[name] = exp
            continue
        override = dict(exp["groups"].get("variant") or {})
        wanted = exp.get("dimensions") or spec.dimensions
        found = 0
        for dim in wanted:
            factors = [f for d, f in spec.interaction_cells if d == dim]
            if not factors:
                continue
            found += 1
            groups = [{f: str(level)} for f in factors for level in spec.levels[f]]
            variants = {"population": merge(override, {"pairs": {"dimension": dim}})}
            variants |= {format_group(g): merge(override, {"pairs": {"dimension": dim,
                                                                     "group": g}})
                         for g in groups}
            experiments[f"{name}-{dim}"] = {
                **{k: v for k, v in exp.items() if k not in ("groups", "dimensions", "units")},
                "dimensions": [dim], "variants": variants,
                "units": ["population", *map(format_group, groups)]}
        if not found:
            raise EvaluateError(f"experiments.{name}.groups: the fit has no group-by-item "
                                f"interactions on {', '.join(wanted)}; fit with --interactions "
                                f"(e.g. toxicity:gender,emotional_awareness:politics)")
    return {**raw, "experiments": experiments}


def load_grid_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> GridConfig:
    """Read and check a grid config (a YAML file or the same content as a dict).

    Experiments with ``groups:`` are expanded from the fit's interactions
    (:func:`expand_groups`).

    Raises
    ------
    EvaluateError
        For a missing file, bad YAML, an unknown or missing key or a bad value (named).
    """
    raw = read_config(source)
    cfg = _validate(raw)
    if any(e.groups is not None for e in cfg.experiments.values()):
        meta = json.loads((cfg.fit / "model.json").read_text(encoding="utf-8"))
        cfg = _validate(expand_groups({**raw, "fit": str(cfg.fit)},
                                      ModelSpec.from_json(meta["spec"])))
    return cfg


def _validate(raw: Mapping[str, Any]) -> GridConfig:
    try:
        return GridConfig.model_validate(raw)
    except ValidationError as err:
        sections = {"": GridConfig, "judge": GridJudge, "bootstrap": Bootstrap,
                    "executor": Executor, "budget": Budget, "judge.panel": PanelOptions}
        experiments = raw.get("experiments")
        if isinstance(experiments, Mapping):
            sections.update({f"experiments.{k}": Experiment for k in experiments})
            sections.update({f"experiments.{k}.groups": Groups for k in experiments})
        raise EvaluateError(f"grid config: {problems(err, sections)}") from None
