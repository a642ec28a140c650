"""What a model is fitted to: the checked specification and the integer-coded data arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.errors import DataError, ModelError
from disagree.ordinal import coef_names, design_matrix

#: Weakly informative priors on the logit scale (all effects are log-odds of a higher rating).
DEFAULT_PRIORS = {
    "beta_sd": 1.0,        # beta[d, p] ~ Normal(0, 1): an odds ratio of e^2 ~ 7 is 2 sd out
    "cutpoint_sd": 2.5,    # c[d, k] ~ Normal(0, 2.5), ordered, on centred dummy columns
    "rater_sd": 1.0,       # sd of rater intercepts ~ HalfNormal(1), per dimension
    "item_sd": 1.0,        # sd of item intercepts ~ HalfNormal(1), per dimension
    "lkj_eta": 2.0,        # rater-intercept correlation across dimensions ~ LKJ(2)
    "item_group_sd": 0.5,  # sd of group-by-item deviations ~ HalfNormal(0.5), per dim x factor
    "level_sd": 1.0,       # effects="pooled": sd of a factor's level effects ~ HalfNormal(1)
}
#: How the level effects of a factor are modelled (see :mod:`disagree.model.build`).
EFFECTS = ("dummy", "pooled")


@dataclass(frozen=True)
class ModelSpec:
    """A checked model specification.

    Attributes
    ----------
    factors : tuple of str
        Rater attributes used as categorical factors.
    levels : dict
        Levels per factor, reference first.
    dimensions : tuple of str
        Dimensions modelled jointly.
    scale : int
        Number of rating categories K (shared by the dimensions of one fit).
    priors : dict
        Prior scales (see ``DEFAULT_PRIORS``).
    interactions : tuple of str
        Factors with group-by-item deviations (each level rates the items its own way), in
        ``factors`` order.
    effects : {"dummy", "pooled"}
        Level effects as independent ``Normal(0, beta_sd)`` coefficients of treatment dummies,
        or as a zero-sum batch per factor and dimension with a learned scale.
    interaction_dimensions : tuple of (str, tuple of str)
        ``(factor, dimensions)`` per interaction factor whose deviations apply to some
        dimensions only, in ``interactions`` and ``dimensions`` order; empty (the default,
        and what fits written before it mean): every interaction factor on every dimension.
    """

    factors: tuple[str, ...]
    levels: dict[str, list[str]]
    dimensions: tuple[str, ...]
    scale: int
    priors: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    interactions: tuple[str, ...] = ()
    effects: str = "dummy"
    interaction_dimensions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def interaction_dims(self, factor: str) -> tuple[str, ...]:
        """Return the dimensions on which interaction factor ``factor`` has deviations."""
        return dict(self.interaction_dimensions).get(factor, self.dimensions)

    @property
    def interaction_cells(self) -> list[tuple[str, str]]:
        """``(dimension, factor)`` pairs with deviations, dimension-major (``item_group_sd``)."""
        return [(d, f) for d in self.dimensions for f in self.interactions
                if d in self.interaction_dims(f)]

    @property
    def coef_names(self) -> list[tuple[str, str]]:
        """``(factor, level)`` of every coefficient, references dropped."""
        return coef_names(self.levels)

    @property
    def coef_labels(self) -> list[str]:
        """Coefficient labels ``factor[level]``, the ``factor_level`` coordinate."""
        return [f"{f}[{lv}]" for f, lv in self.coef_names]

    @property
    def interaction_labels(self) -> list[str]:
        """Labels ``factor[level]`` of all levels of the interaction factors (references too)."""
        return [f"{f}[{lv}]" for f in self.interactions for lv in self.levels[f]]

    def to_json(self) -> dict:
        """Return a JSON-ready dict."""
        out = {**asdict(self), "factors": list(self.factors),
               "dimensions": list(self.dimensions), "interactions": list(self.interactions)}
        out.pop("interaction_dimensions")
        if self.interaction_dimensions:  # absent: every dimension (as in older fits)
            out["interaction_dimensions"] = {f: list(d) for f, d in self.interaction_dimensions}
        return out

    @classmethod
    def from_json(cls, obj: Mapping) -> ModelSpec:
        """Inverse of :meth:`to_json`."""
        # JSON objects lose key order: restore it; fits written before 0.2 say "covariates"
        factors = tuple(obj["factors"] if "factors" in obj else obj["covariates"])
        # fits written before interactions have neither key (and older priors)
        interactions = tuple(obj.get("interactions", ()))
        by_factor = obj.get("interaction_dimensions") or {}
        return cls(factors, {f: list(obj["levels"][f]) for f in factors},
                   tuple(obj["dimensions"]), int(obj["scale"]), dict(obj["priors"]),
                   interactions, str(obj.get("effects", "dummy")),
                   tuple((f, tuple(by_factor[f])) for f in interactions if f in by_factor))


def make_spec(table: RatingTable, factors: Sequence[str],
              reference: Mapping[str, str] | None = None,
              dimensions: Sequence[str] | None = None,
              priors: Mapping[str, float] | None = None,
              interactions: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
              effects: str = "dummy") -> ModelSpec:
    """Check the arguments against ``table`` and return the :class:`ModelSpec`.

    ``interactions`` is a list of factors (deviations on every dimension) or a mapping
    dimension -> factors, e.g. ``{"toxicity": ["gender"], "emotional_awareness":
    ["politics"]}`` (deviations of each factor on its dimensions only; a mapping that gives
    every factor every dimension is the same model as the list).

    Raises
    ------
    ModelError
        For an unknown dimension, a factor that is not a rater attribute (unknown, or an
        item attribute), a reference level that does not exist, raters without a value,
        dimensions on different scales, an interaction that is not one of the factors (or, in
        the mapping, on a dimension that is not fitted), or an unknown ``effects``.
    """
    try:
        dims = table.select(dimensions).dimensions
        levels = table.factor_levels(list(factors), reference)
    except DataError as exc:
        raise ModelError(str(exc)) from None
    for name, lvs in levels.items():
        if len(lvs) < 2:
            raise ModelError(f"factor {name!r} has a single level ({lvs[0]!r}) in the data; "
                             "it cannot have an effect: leave it out")
    scales = {table.scales[d] for d in dims}
    if len(scales) > 1:
        raise ModelError(
            f"dimensions {', '.join(dims)} use different scales "
            f"({', '.join(f'{d}: {table.scales[d]}' for d in dims)}); fit them separately or "
            "convert with to_scale first")
    unknown = set(priors or {}) - set(DEFAULT_PRIORS)
    if unknown:
        raise ModelError(f"unknown prior {', '.join(sorted(unknown))}; priors are "
                         f"{', '.join(DEFAULT_PRIORS)}")
    by_factor = _interaction_dimensions(interactions, list(factors), list(dims))
    if effects not in EFFECTS:
        raise ModelError(f"effects={effects!r}; choose one of {', '.join(EFFECTS)}")
    chosen = tuple(f for f in factors if f in by_factor)
    partial = tuple((f, by_factor[f]) for f in chosen if by_factor[f] != tuple(dims))
    return ModelSpec(tuple(factors), levels, tuple(dims), scales.pop(),
                     {**DEFAULT_PRIORS, **(priors or {})}, chosen, effects, partial)


def _interaction_dimensions(interactions: Sequence[str] | Mapping[str, Sequence[str]] | None,
                            factors: list[str], dims: list[str]) -> dict[str, tuple[str, ...]]:
    """Check ``interactions`` (list or mapping); return the dimensions of each factor."""
    if not isinstance(interactions, Mapping):
        return {f: tuple(dims) for f in _distinct_factors("interactions", interactions, factors)}
    unknown = [d for d in interactions if d not in dims]
    if unknown:
        raise ModelError(f"interactions: dimension {', '.join(map(repr, unknown))} is not "
                         f"fitted; the mapping's keys are dimensions ({', '.join(dims)})")
    by_factor: dict[str, list[str]] = {}
    for d, fs in interactions.items():
        for f in _distinct_factors(f"interactions[{d!r}]", fs, factors):
            by_factor.setdefault(f, []).append(d)
    return {f: tuple(d for d in dims if d in ds) for f, ds in by_factor.items()}


def _distinct_factors(name: str, given: str | Sequence[str] | None,
                      factors: list[str]) -> list[str]:
    """Return ``given`` as a list, checked to hold distinct factors of the model."""
    listed = [given] if isinstance(given, str) else list(given or [])
    outside = [f for f in listed if f not in factors]
    if outside or len(set(listed)) < len(listed):
        raise ModelError(f"{name}={listed!r}: expected distinct factors of the model "
                         f"({', '.join(factors)}); not factors: "
                         f"{', '.join(map(str, outside)) or '(none)'}")
    return listed


@dataclass(frozen=True)
class ModelData:
    """Integer-coded arrays for the sampler, and the labels to decode them.

    ``y`` is 0-based (rating - 1). ``x`` is the raters' dummy-coded design (uncentred).
    """

    y: np.ndarray
    rater: np.ndarray
    item: np.ndarray
    dim: np.ndarray
    x: np.ndarray
    codes: dict[str, np.ndarray]  # level index (in ``spec.levels`` order) per rater, per factor
    rater_ids: list[str]
    item_ids: list[str]
    raters: pd.DataFrame  # factors per rater, indexed by rater_id, in rater_ids order


def model_data(table: RatingTable, spec: ModelSpec) -> ModelData:
    """Encode the ratings of ``spec.dimensions`` as integer arrays."""
    r = table.ratings[table.ratings["dimension"].isin(spec.dimensions)]
    rater_ids = sorted(r["rater_id"].unique())
    item_ids = sorted(r["item_id"].unique())
    raters = table.raters.loc[rater_ids, list(spec.factors)].astype(str)
    return ModelData(
        y=(r["rating"].to_numpy() - 1).astype(np.int64),
        rater=pd.Index(rater_ids).get_indexer(r["rater_id"]).astype(np.int64),
        item=pd.Index(item_ids).get_indexer(r["item_id"]).astype(np.int64),
        dim=pd.Index(spec.dimensions).get_indexer(r["dimension"]).astype(np.int64),
        x=design_matrix(raters, spec.levels),
        codes={f: pd.Index(spec.levels[f]).get_indexer(raters[f]).astype(np.int64)
               for f in spec.factors},
        rater_ids=rater_ids, item_ids=item_ids, raters=raters,
    )
