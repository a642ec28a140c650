"""The YAML config of a Figure 2 study (``disagree figure2 CONFIG.yaml``), checked up front.

::

    out: figure2                 # output folder: runs/, scores.csv, figure2.csv, alignment.csv
    ratings: default             # the bundled survey, or a ratings file
    fit: fits/default            # a fit folder of these ratings (`disagree fit`)
    comparisons:                 # default: the paper's three (first minus second)
      - {factor: gender, first: female, second: male, dimension: toxicity}
    seeds: [0, 1]                # one model per group and seed
    strategy: soft               # pairs of each group: soft | majority | all
    split: [0.8, 0.1, 0.1]       # the prompt split of every run (train, validation, test)
    split_seed: 0
    train:                       # a `disagree train` config without output_dir, seed, pairs
      method: dpo-soft           # soft-target DPO: each group's confidence shapes its model
      model: tiny
      training: {max_steps: 40, learning_rate: 1.0e-3, beta: 0.1}
    workers: 1                   # training runs at once, each in its own process
    judge: {name: posterior}     # posterior | panel | classifier, and its options
    column: null                 # the judge's score of a model (see below)
    alignment: true              # also the group alignment matrix
    population_models: true      # with it, the population's models too (a row of the matrix)
    bootstrap: {n: 2000, seed: 0}

``column`` is the judge's score column the ``model`` row compares. The default is what a
model would be judged on if it *chose*: a generating judge's ``score`` (the mean over sampled
completions) and the posterior judge's ``score_mix`` (the candidates' labels weighted by the
softmax of the implicit rewards, the Bradley-Terry probability under the trained model that
each is the best of the prompt's responses). That is the model-side counterpart of the
``preference`` row, which weights the candidates by the posterior probability that each is a
group's favourite. ``score`` with the posterior judge scores the top-ranked response alone.

Relative paths are relative to the working directory. Every problem raises
:class:`~disagree.errors.EvaluateError` naming the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictInt, ValidationError, field_validator, model_validator

from disagree.errors import EvaluateError, TrainError
from disagree.train.config import read_config_file
from disagree.train.schema import Section, problems

#: Keys of a ``train:`` template that the study sets for each run.
SET_BY_STUDY = ("output_dir", "seed", "pairs", "prompts")


class Comparison(Section):
    """Two levels of a factor compared on a dimension, as ``first`` minus ``second``."""

    factor: str
    first: str
    second: str
    dimension: str

    @property
    def label(self) -> str:
        """``female - male (toxicity)``."""
        return f"{self.first} - {self.second} ({self.dimension.replace('_', ' ')})"

    def group(self, which: str) -> dict[str, str]:
        """``{factor: level}`` of ``first`` or ``second``."""
        return {self.factor: getattr(self, which)}


#: The paper's Figure 2: female minus male on toxicity; liberal minus conservative and White
#: minus Black on emotional awareness.
PAPER_COMPARISONS = (
    Comparison(factor="gender", first="female", second="male", dimension="toxicity"),
    Comparison(factor="politics", first="liberal", second="conservative",
               dimension="emotional_awareness"),
    Comparison(factor="ethnicity", first="White", second="Black",
               dimension="emotional_awareness"),
)


class Bootstrap(Section):
    """Bootstrap replicates and seed."""

    n: int = Field(2000, ge=100)
    seed: StrictInt = 0


class Judge(Section):
    """The judge's name and options (see :mod:`disagree.evaluate.judges`)."""

    name: Literal["posterior", "panel", "classifier"] = "posterior"
    group: dict[str, str] | None = None
    scorer: str | dict[str, Any] | None = None
    model: str | None = None
    label: str | None = None
    generation: dict[str, Any] | None = None


class Figure2Config(Section):
    """A checked Figure 2 config (see the module docstring); frozen."""

    out: Path
    ratings: str = "default"
    fit: Path
    comparisons: tuple[Comparison, ...] = PAPER_COMPARISONS
    seeds: tuple[StrictInt, ...] = (0,)
    strategy: Literal["soft", "majority", "all"] = "soft"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: StrictInt = 0
    train: dict[str, Any] = Field(default_factory=lambda: {"method": "dpo-soft", "model": "tiny"})
    workers: int = Field(1, ge=1)
    judge: Judge = Judge()
    column: Literal["score", "score_mix"] | None = None
    alignment: bool = True
    population_models: bool = True
    bootstrap: Bootstrap = Bootstrap()

    @field_validator("fit")
    @classmethod
    def _fit_exists(cls, value: Path) -> Path:
        if not (value / "model.json").is_file():
            raise ValueError(f"{value} is not a complete fit folder (no model.json); make it "
                             f"with `disagree fit`")
        return value.absolute()

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"expected distinct seeds, at least one, got {list(value)}")
        return value

    @field_validator("train")
    @classmethod
    def _template(cls, value: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in SET_BY_STUDY if k in value]
        if given:
            raise ValueError(f"the study sets {', '.join(given)} for each run; remove it")
        if value.get("method", "dpo") == "grpo":
            raise ValueError("method grpo has no pairs to restrict to a group; use a DPO method")
        return value


    @model_validator(mode="after")
    def _column_of_judge(self) -> Figure2Config:
        if self.column == "score_mix" and self.judge.name != "posterior":
            raise ValueError(f"column score_mix is the posterior judge's; the {self.judge.name} "
                             f"judge has score (its mean over sampled completions)")
        return self

    @property
    def score_column(self) -> str:
        """The judge's column the ``model`` row compares (see the module docstring)."""
        return self.column or ("score_mix" if self.judge.name == "posterior" else "score")


def read_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Return the raw content of a config: a YAML file's mapping, or a copy of ``source``.

    Raises
    ------
    EvaluateError
        For a missing file, bad YAML or a file that is not a mapping.
    """
    try:
        return read_config_file(source)
    except TrainError as err:
        raise EvaluateError(str(err)) from None


def load_figure2_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> Figure2Config:
    """Read and check a Figure 2 config (a YAML file or the same content as a dict).

    Raises
    ------
    EvaluateError
        For a missing file, bad YAML, an unknown or missing key or a bad value (named).
    """
    raw = read_config(source)
    try:
        return Figure2Config.model_validate(raw)
    except ValidationError as err:
        sections = {"": Figure2Config, "judge": Judge, "bootstrap": Bootstrap}
        raise EvaluateError(f"figure2 config: {problems(err, sections)}") from None
