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
        Factors with group-by-item deviations (each level rates the items its own way).
    effects : {"dummy", "pooled"}
        Level effects as independent ``Normal(0, beta_sd)`` coefficients of treatment dummies,
        or as a zero-sum batch per factor and dimension with a learned scale.
    """

    factors: tuple[str, ...]
    levels: dict[str, list[str]]
    dimensions: tuple[str, ...]
    scale: int
    priors: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRIORS))
    interactions: tuple[str, ...] = ()
    effects: str = "dummy"

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
        return {**asdict(self), "factors": list(self.factors),
                "dimensions": list(self.dimensions), "interactions": list(self.interactions)}

    @classmethod
    def from_json(cls, obj: Mapping) -> ModelSpec:
        """Inverse of :meth:`to_json`."""
        # JSON objects lose key order: restore it; fits written before 0.2 say "covariates"
        factors = tuple(obj["factors"] if "factors" in obj else obj["covariates"])
        # fits written before interactions have neither key (and older priors)
        return cls(factors, {f: list(obj["levels"][f]) for f in factors},
                   tuple(obj["dimensions"]), int(obj["scale"]), dict(obj["priors"]),
                   tuple(obj.get("interactions", ())), str(obj.get("effects", "dummy")))


def make_spec(table: RatingTable, factors: Sequence[str],
              reference: Mapping[str, str] | None = None,
              dimensions: Sequence[str] | None = None,
              priors: Mapping[str, float] | None = None,
              interactions: Sequence[str] | None = None, effects: str = "dummy") -> ModelSpec:
    """Check the arguments against ``table`` and return the :class:`ModelSpec`.

    Raises
    ------
    ModelError
        For an unknown dimension, a factor that is not a rater attribute (unknown, or an
        item attribute), a reference level that does not exist, raters without a value,
        dimensions on different scales, an interaction that is not one of the factors, or an
        unknown ``effects``.
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
    interactions = list(interactions or [])
    outside = [f for f in interactions if f not in factors]
    if outside or len(set(interactions)) < len(interactions):
        raise ModelError(f"interactions={interactions!r}: expected distinct factors of the model "
                         f"({', '.join(factors)}); not factors: {', '.join(outside) or '(none)'}")
    if effects not in EFFECTS:
        raise ModelError(f"effects={effects!r}; choose one of {', '.join(EFFECTS)}")
    return ModelSpec(tuple(factors), levels, tuple(dims), scales.pop(),
                     {**DEFAULT_PRIORS, **(priors or {})},
                     tuple(f for f in factors if f in interactions), effects)


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
