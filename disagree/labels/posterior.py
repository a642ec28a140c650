"""The posterior arrays that soft labels and pair preferences need, and the units' cell mixes.

Depends on :mod:`disagree.model` (the fit, :func:`~disagree.model.contrasts.item_deviations`,
cells and populations) and :mod:`disagree.ordinal`; shared by :mod:`disagree.labels.soft` and
:mod:`disagree.labels.preferences`.

:class:`Posterior` holds, per dimension, the draws of the cut points, coefficients, rater sd,
rater effects and item effects, and, with group-by-item interactions, each interaction
factor's item deviations (``fit.spec.interactions``), all thinned to the same draws.
:meth:`Posterior.profile_effects` turns the deviations into the item effects each rater or
factor cell meets (its *profile*: its levels of the interaction factors).
:func:`mixture_units` lists the units of the group and population levels and the weighted
factor cells each one mixes.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from disagree.data.groups import format_group
from disagree.errors import ModelError
from disagree.model.contrasts import cells_from_design, item_deviations, population_cells
from disagree.model.draws import flat_draws, thinned
from disagree.model.fitting import Fit
from disagree.model.sampling import no_rater_effects
from disagree.ordinal import collapse_cells, profile_item_effects

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Posterior:
    """The posterior arrays the labels need, draws flattened and thinned, per dimension.

    Shapes: ``cutpoints (D, S, K-1)``, ``beta (D, S, P)``, ``rater_sd (D, S)``,
    ``rater_effects (D, S, R)`` (None for a fit without them), ``item_effects (D, S, J)``,
    ``design (R, P)``;
    ``deviations[d]`` maps each interaction factor to its item deviations on dimension ``d``,
    ``(S, J, L_f)`` with levels in the order of ``levels[f]`` (empty without interactions);
    ``raters`` holds the factor levels of each rater (``R`` rows).
    """

    dimensions: list[str]
    item_ids: list[str]
    rater_ids: list[str]
    scale: int
    levels: dict[str, list[str]]
    cutpoints: np.ndarray
    beta: np.ndarray
    rater_sd: np.ndarray
    rater_effects: np.ndarray | None
    item_effects: np.ndarray
    design: np.ndarray
    deviations: list[dict[str, np.ndarray]]
    raters: pd.DataFrame

    @classmethod
    def extract(cls, fit: Fit, dimensions: Sequence[str] | None,
                items: Sequence[str] | None, draws: int | None,
                rater_effects: bool = True) -> Posterior:
        """Select dimensions, items and draws from ``fit.idata`` (errors name the bad value).

        Each variable is read one dimension at a time into its final array, so the peak memory
        is the result plus one dimension's slice of one variable (the netCDF file is read
        lazily).

        Parameters
        ----------
        fit : Fit
        dimensions : sequence of str, optional
            Default all of the fit; kept in the fit's order.
        items : sequence of str, optional
            Item ids; default all of the fit; kept in the fit's order.
        draws : int, optional
            Keep this many draws, evenly spaced over the chains; default all.
        rater_effects : bool, default True
            Read the rater effects (needed by rater-level labels only; the largest array).

        Returns
        -------
        Posterior
        """
        post = fit.idata.posterior
        valid = [str(d) for d in post.coords["dimension"].values]
        dims = valid if dimensions is None else list(dimensions)
        unknown = [d for d in dims if d not in valid]
        if unknown or not dims:
            raise ModelError(f"dimension(s) {', '.join(map(repr, unknown)) or '(none)'} not in "
                             f"the fit; dimensions are {', '.join(valid)}")
        dims = [d for d in valid if d in dims]
        all_items = [str(j) for j in post.coords["item"].values]
        item_ids, item_index = _select_items(all_items, items)
        pick = thinned(post.sizes["chain"] * post.sizes["draw"], draws)
        at = [valid.index(d) for d in dims]

        def take(name: str, last: np.ndarray | slice = slice(None)) -> np.ndarray:
            """``name`` as (D, S, *rest), filled one dimension at a time."""
            out = None
            for i, d in enumerate(at):
                values = flat_draws(post, name, d, pick)[..., last]
                if out is None:
                    out = np.empty((len(dims), *values.shape), dtype=values.dtype)
                out[i] = values
            return out

        levels = {f: list(v) for f, v in fit.spec.levels.items()}
        positions = np.arange(len(all_items))[item_index]
        deviations = [item_deviations(post, levels, fit.spec.interactions, d, positions, pick)
                      for d in at]
        design = fit.idata.constant_data["rater_design"].transpose(
            "rater", "factor_level").values.astype(float)
        return cls(
            dimensions=dims, item_ids=item_ids,
            rater_ids=[str(r) for r in fit.idata.constant_data.coords["rater"].values],
            scale=fit.spec.scale,
            levels=levels, cutpoints=take("cutpoints"), beta=take("beta"),
            rater_sd=take("rater_sd"),
            rater_effects=take("rater_effect") if rater_effects and "rater_effect" in post
            else None,
            item_effects=take("item_effect", last=item_index), design=design,
            deviations=deviations, raters=cells_from_design(design, levels))

    def rater_linear(self, d: int) -> np.ndarray:
        """``x_r . beta + u_r`` of every rater on dimension ``d``, shape (S, R)."""
        if self.rater_effects is None:
            raise no_rater_effects("rater-level soft labels and pairs")
        return self.beta[d] @ self.design.T + self.rater_effects[d]

    def profile_effects(self, d: int, cells: pd.DataFrame | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Item effects of every interaction profile in ``cells`` on dimension ``d``.

        Parameters
        ----------
        d : int
            Position of the dimension.
        cells : DataFrame, optional
            One row per factor cell, a column per factor; default the raters.

        Returns
        -------
        effects : array (S, Q, J)
            ``v[j] + sum_f w_f[j, level_f]`` of each distinct profile (``Q = 1`` and the
            plain item effects without interactions).
        profile : int array (len(cells),)
            Profile (row of the ``Q`` axis) of each cell.
        """
        cells = self.raters if cells is None else cells
        return profile_item_effects(self.item_effects[d], self.deviations[d], cells,
                                    self.levels)


def mixture_units(fit: Fit, unit: str, factors: Sequence[str] | None,
                  population: object,
                  ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Units, and the weighted factor cells of each, for the group and population levels.

    Parameters
    ----------
    fit : Fit
    unit : {"group", "population"}
    factors : sequence of str, optional
        ``unit="group"``: the factors that define the groups (default every factor); every
        combination of their levels is a unit. The other factors are held at the mix of the
        fit's raters in the group; a group without raters gets the sample's joint mix of the
        other factors (logged at INFO level).
    population : DataFrame or path, optional
        ``unit="population"``: target cells and proportions (see
        :func:`disagree.model.population_cells`); default the sample's raters.

    Returns
    -------
    units : DataFrame (G rows)
        The unit columns (the group factors, or ``population``).
    cells : DataFrame (C rows)
        One column per factor of the fit.
    weights : array (C,)
        Weight of each cell within its unit (not normalised).
    groups : int array (C,)
        Non-decreasing unit index of each cell; every unit has at least one cell.
    """
    levels = fit.spec.levels
    sample = cells_from_design(fit.idata.constant_data["rater_design"].values, levels)
    if unit == "population":
        name = "sample" if population is None else "target"
        cells, weights = (sample, np.ones(len(sample))) if population is None else \
            population_cells(population, sample, levels)
        cells, weights = collapse_cells(cells, weights)
        return (pd.DataFrame({"population": [name]}), cells, weights,
                np.zeros(len(cells), dtype=int))
    by = list(levels) if factors is None else list(factors)
    unknown = [b for b in by if b not in levels]
    if unknown or not by or len(set(by)) < len(by):
        raise ModelError(f"factors={by!r}: expected distinct factors of the fit "
                         f"({', '.join(levels)}); unknown: {', '.join(unknown) or '(none)'}")
    units = pd.DataFrame(list(itertools.product(*(levels[b] for b in by))), columns=by)
    rest = [c for c in levels if c not in by]
    observed, counts = collapse_cells(sample, np.ones(len(sample)))
    key = pd.MultiIndex.from_frame(units)
    unit_of = key.get_indexer(pd.MultiIndex.from_frame(observed[by]))
    empty = np.setdiff1d(np.arange(len(units)), unit_of)
    parts = [observed.assign(_unit=unit_of, _w=counts)]
    if len(empty):
        log.info("groups with no rater in the fit (other factors at the sample's mix): %s",
                 "; ".join(format_group(row) for row in units.iloc[empty].to_dict("records")))
        mix, mix_w = collapse_cells(sample[rest], np.ones(len(sample))) if rest else \
            (pd.DataFrame(index=[0]), np.ones(1))
        filler = units.iloc[empty].assign(_unit=empty).merge(mix.assign(_w=mix_w), how="cross")
        parts.append(filler)
    cells = pd.concat(parts, ignore_index=True).sort_values("_unit", kind="stable")
    return (units, cells[list(levels)].reset_index(drop=True), cells["_w"].to_numpy(float),
            cells["_unit"].to_numpy(int))


def as_list(value: str | Sequence[str] | None) -> list[str] | None:
    """Accept one name or several (None stays None)."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _select_items(all_items: list[str], items: Sequence[str] | None,
                  ) -> tuple[list[str], np.ndarray | slice]:
    """Item ids in the fit's order and their positions (a slice for all of them)."""
    if items is None:
        return all_items, slice(None)
    wanted = {str(j) for j in items}
    missing = sorted(wanted - set(all_items))
    if missing or not wanted:
        shown = ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise ModelError(f"item(s) {shown or '(none)'} not in the fit "
                         f"({len(all_items)} items, e.g. {', '.join(all_items[:3])})")
    item_ids = [j for j in all_items if j in wanted]
    position = {j: i for i, j in enumerate(all_items)}
    return item_ids, np.asarray([position[j] for j in item_ids])
