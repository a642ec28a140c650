"""The sections of a run config as pydantic models, and pydantic's errors as config messages.

:class:`PairSpec` (a ``pairs:`` mapping), :class:`PromptSpec` (``prompts:``), :class:`Reward`
(``reward:``) and :class:`ScorerOptions` (``reward.scorer:``) check the keys and the types of
one section each; :class:`~disagree.train.config.TrainConfig` puts them together. Every model
forbids unknown keys and is frozen. Rules that relate several keys (a method and its data) are
checked by hand in :mod:`disagree.train.config`.

:func:`problems` turns a :class:`pydantic.ValidationError` into the text of a
:class:`~disagree.errors.TrainError`: the key path (``pairs.strategy``), the bad value and what
is allowed, with a did-you-mean suggestion for an unknown key. Renamed keys (``scale``,
``unit``, ``attributes``) are accepted with a note in the validation context; the caller emits
the :class:`DeprecationWarning`.

Depends on pydantic and :mod:`disagree.data.groups` only (no torch).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from disagree.data.groups import POPULATION, parse_group
from disagree.errors import DisagreeError

#: Union tags of "a file or a mapping of options" keys; they are left out of key paths.
FILE, OPTIONS = "<file>", "<options>"
#: What an error type expected, for :func:`problems`.
EXPECTED = {"int_type": "an integer", "bool_type": "true or false", "string_type": "a string",
            "dict_type": "a mapping", "list_type": "a list", "float_type": "a number",
            "model_type": "a mapping of options", "model_attributes_type": "a mapping of options"}


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> int | float:
    if not is_number(value):
        raise ValueError(f"expected a number, got {value!r}")
    return value  # as written: 1 stays 1, so the config digest does not change


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def _file(value: Any) -> str:
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"expected a file path or a mapping of options, got {value!r}")
    if not Path(value).exists():
        raise ValueError(f"file {str(value)!r} does not exist")
    return str(Path(value).absolute())


def _ratings(value: Any) -> str:
    return "default" if value == "default" else _file(value)


def _group(value: Any) -> dict[str, Any] | None:
    """Check a group: a mapping of factor to level, its string form, or population (None)."""
    if value is None or value == POPULATION:
        return None
    if isinstance(value, str):
        try:
            return parse_group(value) or None
        except DisagreeError as err:
            raise ValueError(str(err)) from None
    if isinstance(value, Mapping) and value and all(
            isinstance(k, str) and (isinstance(v, str) or is_number(v))
            for k, v in value.items()):
        return dict(value)  # the levels as written (the config digest)
    raise ValueError(f"expected 'population' or a group, a mapping of factors to levels, e.g. "
                     f"{{politics: conservative}}, got {value!r}")


def _dimension(value: Any) -> str | list[str] | dict[str, int | float]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, Mapping) and value and all(
            isinstance(k, str) and is_number(v) for k, v in value.items()):
        return dict(value)
    raise ValueError(f"expected a dimension, a list of dimensions or a mapping of dimension to "
                     f"weight, got {value!r}")


def _weights(value: Any) -> dict[str, int | float]:
    if not isinstance(value, Mapping) or not value or not all(
            isinstance(k, str) and is_number(v) for k, v in value.items()):
        raise ValueError(f"expected a mapping of dimension to number, e.g. {{toxicity: -1.0}}, "
                         f"got {value!r}")
    return dict(value)


def _file_or_options(value: Any) -> str:
    return OPTIONS if isinstance(value, Mapping | BaseModel) else FILE


Number = Annotated[float, PlainValidator(_number)]
PositiveInt = Annotated[StrictInt, AfterValidator(_positive)]
#: An existing file or folder, made absolute.
ExistingPath = Annotated[str, PlainValidator(_file)]
#: ``"default"`` (the bundled survey) or a ratings file, made absolute.
RatingsSource = Annotated[str, PlainValidator(_ratings)]
Group = Annotated[dict[str, Any] | None, PlainValidator(_group)]


def renamed(data: Any, info: ValidationInfo, where: str, old: str, new: str) -> Any:
    """Move the value of a renamed key ``old`` to ``new``; note the deprecation in the context.

    The notes (``"<where>.<old> is deprecated; use <where>.<new>"``) are collected in
    ``info.context["deprecated"]``; :func:`~disagree.train.config.load_config` warns.
    """
    if not isinstance(data, Mapping) or old not in data:
        return data
    if new in data:
        raise ValueError(f"'{old}' is the old name of '{new}'; give only '{new}'")
    if info.context is not None:
        info.context.setdefault("deprecated", []).append(
            f"{where}.{old} is deprecated; use {where}.{new}")
    data = dict(data)
    data[new] = data.pop(old)
    return data


class Section(BaseModel):
    """Base of the config models: unknown keys are errors, and a checked config is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def options(self) -> dict[str, Any]:
        """Return the keys the config gave (defaults left to the function they go to)."""
        return self.model_dump(exclude_unset=True)


class PairSpec(Section):
    """A ``pairs:`` mapping: where the ratings and the fit are, then ``make_pairs`` keywords.

    Keys left out take :func:`disagree.pairs.make_pairs`'s defaults; ``split_seed`` is
    ``make_pairs``'s ``seed`` (the prompt split), by default the run's ``seed``, so that runs
    of several seeds can share one split.
    """

    ratings: RatingsSource = "default"
    fit: ExistingPath | None = None
    dimension: Annotated[Any, PlainValidator(_dimension)] = None
    strategy: Literal["majority", "all", "soft"] | None = None
    unit: Literal["population", "group", "rater"] | None = None
    group: Group = None
    to_scale: Annotated[StrictInt, Field(ge=2)] | None = None
    margin: Annotated[Number, Field(ge=0, lt=0.5)] | None = None
    better: dict[str, Literal["lower", "higher"]] | None = None
    split: Annotated[list[Number], Field(min_length=3, max_length=3)] | None = None
    ties: Literal["worse", "drop"] | None = None
    draws: PositiveInt | None = None
    split_seed: StrictInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any, info: ValidationInfo) -> Any:
        return renamed(data, info, "pairs", "scale", "to_scale")

    def to_dict(self) -> dict[str, Any]:
        """Return the keys the config gave, and ``ratings`` (paths absolute)."""
        return {**self.options(), "ratings": self.ratings}


class PromptSpec(Section):
    """A ``prompts:`` mapping: the distinct prompts of a ratings table."""

    ratings: RatingsSource = "default"


class ScorerOptions(Section):
    """``reward.scorer`` options: keywords of the rating-panel scorer trained for the reward.

    Keys left out take the scorer's defaults.
    """

    encoder: Literal["auto", "hashing", "minilm"] | None = None
    head: Literal["ordinal", "multinomial"] | None = None
    factors: list[StrictStr] | None = None
    text_columns: list[StrictStr] | None = None
    l2: Annotated[Number, Field(ge=0)] | None = None
    epochs: PositiveInt | None = None
    lr: Annotated[Number, Field(gt=0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any, info: ValidationInfo) -> Any:
        return renamed(data, info, "reward.scorer", "attributes", "factors")


ScorerSource = Annotated[
    Annotated[ExistingPath, Tag(FILE)] | Annotated[ScorerOptions, Tag(OPTIONS)],
    Discriminator(_file_or_options), BeforeValidator(lambda v: {} if v is None else v)]


class Reward(Section):
    """The GRPO reward: weights per dimension, whose ratings, and the scorer."""

    weights: Annotated[dict[str, Any], PlainValidator(_weights)] = Field(
        default=None, validate_default=True)
    group: Group = None
    scorer: ScorerSource = Field(default_factory=ScorerOptions)
    ratings: RatingsSource = "default"

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any, info: ValidationInfo) -> Any:
        return renamed(data, info, "reward", "unit", "group")

    def to_dict(self) -> dict[str, Any]:
        """Every key (``group`` None for the population; scorer options as given)."""
        scorer = self.scorer if isinstance(self.scorer, str) else self.scorer.options()
        return {"weights": dict(self.weights), "group": self.group, "scorer": scorer,
                "ratings": self.ratings}


PairsSource = Annotated[Annotated[ExistingPath, Tag(FILE)] | Annotated[PairSpec, Tag(OPTIONS)],
                        Discriminator(_file_or_options)]
PromptsSource = Annotated[Annotated[ExistingPath, Tag(FILE)]
                          | Annotated[PromptSpec, Tag(OPTIONS)],
                          Discriminator(_file_or_options)]


def problems(err: ValidationError, sections: Mapping[str, type[BaseModel]]) -> str:
    """Return the config message of a validation error: one ``key: problem`` per error.

    Parameters
    ----------
    err : pydantic.ValidationError
        From validating a config.
    sections : mapping of str to model class
        The model of each key path (``""`` for the top level), for the valid keys of an
        unknown-key message.

    Returns
    -------
    str
        The problems, joined by ``"; "``.
    """
    return "; ".join(dict.fromkeys(_problem(e, sections) for e in err.errors()))


def _problem(error: Any, sections: Mapping[str, type[BaseModel]]) -> str:
    loc = [str(p) for p in error["loc"] if str(p) not in (FILE, OPTIONS)]
    path, kind, value = ".".join(loc), error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        where, key = ".".join(loc[:-1]), loc[-1]
        valid = list(sections[where].model_fields) if where in sections else []
        return (f"{where + ': ' if where else ''}unknown key '{key}'{suggest(key, valid)}"
                + (f"; valid keys: {valid}" if valid else ""))
    if kind == "missing":
        return f"config key '{path}' is required"
    if kind == "literal_error":
        expected = ctx["expected"]
        head, sep, last = expected.rpartition(" or ")
        allowed = f"[{head}, {last}]" if sep else f"[{expected}]"
        return f"{path}: {value!r} is not one of {allowed}"
    if kind in ("value_error", "assertion_error"):
        return f"{path}: {ctx['error']}" if path else str(ctx["error"])
    if kind in EXPECTED:
        return f"{path}: expected {EXPECTED[kind]}, got {value!r}"
    return f"{path}: {error['msg'][0].lower()}{error['msg'][1:]}, got {value!r}"


def suggest(key: str, valid: Any) -> str:
    """Return `` (did you mean 'x'?)`` for the valid key closest to ``key``, or ``""``."""
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
