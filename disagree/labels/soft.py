"""Posterior soft labels: predictive rating distributions per rater, group or population.

Depends on :mod:`disagree.model` (the fit), :mod:`disagree.ordinal`,
:mod:`disagree.labels.posterior` and :mod:`disagree.labels.kernels`. One row per item x
dimension x unit, columns
``item_id, dimension, <unit columns>, p_1..p_K, mean, sd``:

``p_k``
    Posterior mean of ``P(Y = k)`` for the unit on the item: the average over posterior
    draws of the model's category probabilities (so ``p_1 + ... + p_K = 1``).
``mean``
    Posterior mean of the expected rating ``E[Y] = sum_k k P(Y = k)`` (equals
    ``sum_k k p_k``).
``sd``
    Posterior standard deviation, over draws (``ddof=1``), of the expected rating: how sure
    the model is of the unit's average rating of the item. It is *not* the spread of
    individual ratings (that is in ``p_k``).

The units (``unit``):

``"rater"``
    Column ``rater_id``; every rater of the fit on every item and dimension of the fit,
    including the (many) items the rater never saw, with
    ``eta = x_r . beta + u_r + v_j`` (plus the rater's levels' item deviations),
    ``u_r`` the rater's own posterior effect.
``"group"``
    One column per factor in ``factors``; every combination of their levels. The rater effect
    is integrated over its distribution ``N(0, rater_sd^2)`` (Gauss-Hermite quadrature), not
    set to zero; the factors not in ``factors`` are held at the mix of the fit's raters who
    belong to the group (their factor cells, weighted by their number of raters). A
    combination with no rater in the fit gets the whole sample's joint mix of the other
    factors instead (the model extrapolates additively on the logit scale; such groups
    are logged at INFO level).
``"population"``
    Column ``population``: ``"sample"`` (the cells of the fit's raters, each rater weighted
    equally), or ``"target"`` when a ``population`` table of cell proportions is given
    (poststratification, see :func:`disagree.model.population_cells`). The rater effect is
    integrated as for groups.

Group-by-item interactions (``fit.spec.interactions``). Every rater, and every factor cell of
a group's or population's mix, meets the item effects of its own levels of the interaction
factors, ``v_j + sum_f w_f[j, level_f]``: a rater's labels use its own levels' deviations, and a
group or population averages over its cells, each with its own deviations (a group of
conservatives mixed over ethnicities meets the conservative deviations and, cell by cell, each
ethnicity's). A fit without interactions gives, to the last bit, the numbers of earlier
releases.

Items are those of the fit (``item`` coordinate of the posterior); an item never rated on a
dimension still gets a prediction there, from its prior-only item effect.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from disagree._io import read_table, write_table
from disagree.errors import ModelError, renamed
from disagree.labels.kernels import CHUNK_SIZE, mixture_moments, rater_moments
from disagree.labels.posterior import Posterior, as_list, mixture_units
from disagree.model.fitting import Fit, as_fit
from disagree.ordinal import design_matrix

UNITS = ("rater", "group", "population")
SUFFIXES = (".parquet", ".pq", ".csv", ".tsv")
#: Columns every soft-label table has besides the unit columns and ``p_1..p_K``.
KEY_COLUMNS = ("item_id", "dimension")
SUMMARY_COLUMNS = ("mean", "sd")


def prob_columns(scale: int) -> list[str]:
    """Return the category-probability columns of a soft-label table on a ``scale``-point scale."""
    return [f"p_{k}" for k in range(1, scale + 1)]


def soft_labels(fit: Fit | str | os.PathLike[str], unit: str | None = None,
                factors: str | Sequence[str] | None = None,
                population: pd.DataFrame | str | os.PathLike[str] | None = None,
                dimensions: str | Sequence[str] | None = None,
                items: Sequence[str] | None = None, draws: int | None = None,
                n_nodes: int = 24, chunk_size: int = CHUNK_SIZE,
                progress: bool = False, *, level: str | None = None,
                by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Posterior predictive distribution over rating categories, per unit, item and dimension.

    Parameters
    ----------
    fit : Fit or path
        A fitted (or loaded) model, or its fit directory.
    unit : {"population", "group", "rater"}
        Whose labels (see the module docstring); default ``"population"``.
    factors : str or sequence of str, optional
        Only with ``unit="group"``: the factors that define the groups (default: every
        factor of the fit, i.e. the finest demographic cells).
    population : DataFrame or path, optional
        Only with ``unit="population"``: target population, factor columns and a
        ``proportion`` column (or a table file of it); factors it omits keep the sample's mix.
    dimensions : str or sequence of str, optional
        Dimensions to label (default: all of the fit), in the fit's order.
    items : sequence of str, optional
        Item ids to label (default: all of the fit), in the fit's order.
    draws : int, optional
        Use this many posterior draws, evenly spaced over the chains (deterministic
        thinning, for speed); default all.
    n_nodes : int
        Gauss-Hermite nodes for the rater-effect integral (group and population levels).
    chunk_size : int
        About how many float64 values the largest temporary array holds (memory bound; the
        result does not depend on it beyond rounding).
    progress : bool
        Show a progress bar.
    level, by
        Deprecated names of ``unit`` and ``factors``.

    Returns
    -------
    DataFrame
        ``item_id, dimension, <unit columns>, p_1..p_K, mean, sd``, sorted by item (fit
        order), dimension (fit order), then unit (``rater_id`` in fit order, groups by level
        order with references first).

    Raises
    ------
    ModelError
        For an unknown unit, dimension, item or factor, ``factors`` or ``population``
        given with the wrong unit, a bad population table, or a non-positive ``draws``,
        ``n_nodes`` or ``chunk_size``.
    """
    level = renamed(unit, level, "level", "unit") or "population"
    by = renamed(factors, by, "by", "factors")
    check_arguments(level, by, population, draws, n_nodes, chunk_size)
    fit = as_fit(fit)
    post = Posterior.extract(fit, as_list(dimensions), items, draws,
                             rater_effects=level == "rater")
    if level == "rater":
        units = pd.DataFrame({"rater_id": post.rater_ids})
    else:
        units, cells, weights, groups = mixture_units(fit, level, as_list(by), population)
        design = design_matrix(cells, fit.spec.levels)
    n_draws, n_items = post.cutpoints.shape[1], len(post.item_ids)
    work = len(post.dimensions) * n_draws * n_items * (len(units) if level == "rater" else 1)
    results = []
    with tqdm(total=work, disable=not progress, desc=f"soft labels ({level})",
              unit_scale=True) as bar:
        for d in range(len(post.dimensions)):
            if level == "rater":
                effects, profiles = post.profile_effects(d)
                results.append(rater_moments(post.cutpoints[d], post.rater_linear(d), effects,
                                             chunk_size, bar, profiles=profiles))
            else:
                effects, profiles = post.profile_effects(d, cells)
                results.append(mixture_moments(post.cutpoints[d], post.beta[d] @ design.T,
                                               weights, groups, effects, post.rater_sd[d],
                                               n_nodes, chunk_size, bar, profiles=profiles))
    return _frame(post, units, results)


def write_soft_labels(labels: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write soft labels atomically as Parquet (``.parquet``/``.pq``), CSV or TSV.

    Parameters
    ----------
    labels : DataFrame
        As returned by :func:`soft_labels`.
    path : path
        Output file; the suffix chooses the format.

    Returns
    -------
    Path
        ``path``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelError(f"cannot write soft labels to {path}: unsupported suffix {suffix!r} "
                         f"(use {', '.join(SUFFIXES)})")
    check_soft_labels(labels, "soft labels")
    return write_table(path, labels)


def read_soft_labels(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a soft-label table written by :func:`write_soft_labels` and check its columns."""
    labels = read_table(path, error=ModelError, kinds=("parquet", "csv", "tsv"),
                        what="soft labels")
    check_soft_labels(labels, str(path))
    return labels.astype(dict.fromkeys(KEY_COLUMNS, str))


def check_soft_labels(labels: pd.DataFrame, name: str) -> None:
    """Raise ModelError naming the columns a soft-label table lacks, or bad probabilities."""
    missing = [c for c in (*KEY_COLUMNS, "p_1", *SUMMARY_COLUMNS) if c not in labels]
    if missing:
        raise ModelError(f"{name}: not a soft-label table: missing column(s) "
                         f"{', '.join(missing)}")
    probs = labels[[c for c in labels.columns if c.startswith("p_")]].to_numpy(float)
    bad = np.flatnonzero(~np.isclose(probs.sum(axis=1), 1.0, atol=1e-6) | (probs < 0).any(1))
    if len(bad):
        raise ModelError(f"{name}: row {bad[0] + 1}: p_1..p_K must be probabilities summing "
                         f"to 1 ({len(bad)} such row(s))")


def check_arguments(level: str, by: str | Sequence[str] | None,
                     population: object, draws: int | None, n_nodes: int,
                     chunk_size: int) -> None:
    """Raise ModelError for a unit, ``factors`` or ``population`` that do not fit together.

    Also for a ``draws``, ``n_nodes`` or ``chunk_size`` that is not a positive integer
    (``draws`` may be None).
    """
    if level not in UNITS:
        raise ModelError(f"unknown unit {level!r}; choose one of {', '.join(UNITS)}")
    if by is not None and level != "group":
        raise ModelError(f"factors={by!r} is only used with unit='group' (got unit={level!r})")
    if population is not None and level != "population":
        raise ModelError("population is only used with unit='population' "
                         f"(got unit={level!r})")
    for name, value in (("draws", draws), ("n_nodes", n_nodes), ("chunk_size", chunk_size)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ModelError(f"{name}={value!r}: expected a positive integer")


def _frame(post: Posterior, units: pd.DataFrame,
           results: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Assemble the long table: rows item-major, then dimension, then unit."""
    probs = np.stack([r[0] for r in results])  # (D, U, J, K)
    mean = np.stack([r[1] for r in results])  # (D, U, J)
    sd = np.stack([r[2] for r in results])
    n_dims, n_units, n_items = mean.shape
    columns: dict[str, np.ndarray] = {
        "item_id": np.repeat(np.asarray(post.item_ids, dtype=object), n_dims * n_units),
        "dimension": np.tile(np.repeat(np.asarray(post.dimensions, dtype=object), n_units),
                             n_items),
    }
    for col in units.columns:
        columns[col] = np.tile(units[col].to_numpy(dtype=object), n_items * n_dims)
    flat = probs.transpose(2, 0, 1, 3).reshape(-1, post.scale)
    for k in range(post.scale):
        columns[f"p_{k + 1}"] = flat[:, k]
    columns["mean"] = mean.transpose(2, 0, 1).ravel()
    columns["sd"] = sd.transpose(2, 0, 1).ravel()
    return pd.DataFrame(columns)
