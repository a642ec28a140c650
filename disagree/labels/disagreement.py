"""Where the levels of a factor rate the items differently: per-item group probabilities.

For a factor ``f``, level ``l`` and item ``j`` of a dimension, the probability of a high rating
(``rating >= t``, default 4 on 5 points) is standardised like the contrasts
(:mod:`disagree.ordinal`), item by item instead of averaged over the items::

    P_l(j) = sum_c w_c E_u[P(Y >= t | eta = x_c(l) . beta + u + v_j + sum_g w_g[j, level_g(c)])]

over the factor cells ``c`` of the fit's raters (the sample's mix ``w_c`` of the other factors)
with ``f`` set to ``l``, ``u ~ N(0, rater_sd^2)`` integrated numerically (one grid per draw
shared by the cells, exact to rounding, or Gauss-Hermite nodes for tiny sds: see
:func:`_high_probabilities`), each cell meeting its own item effect (``item_effect`` plus the
``item_group_effect`` of its interaction levels), per posterior draw, in blocks of draws that
bound the memory. :class:`LevelProbabilities` holds these draws and makes two tables, of
posterior means and equal-tailed intervals:

items (:func:`group_disagreement`)
    One row per item and level (reference first): ``p_high``, the difference to the reference
    in percentage points (``diff_pp``, NaN on the reference's row) and ``p_order_differs_max``,
    the largest ``p_order_differs`` (below) over the other responses to the item's prompt.
    Items are ranked (``rank`` 1 first) by ``max_abs_diff_pp``, the largest absolute mean
    difference over the levels shown (``sort="difference"``, default: in probability units,
    needs no prompts, but includes each level's overall shift, largest on items rated high
    about half of the time), or by ``p_order_differs_max`` (``sort="order"``: reversals within
    a prompt, free of any overall shift: the disagreement that changes preference pairs).
pairs (:func:`pair_disagreement`)
    One row per pair of responses to one prompt and non-reference level: each group's
    posterior probability of preferring ``item_a``, the mean gaps in percentage points, and
    ``p_order_differs``, the posterior probability that ``P_level(a) - P_level(b)`` and
    ``P_ref(a) - P_ref(b)`` have opposite signs (a tie counts as not differing).

Without interactions every level orders the items alike (``P_l(j)`` increases with ``v_j``),
so ``p_order_differs`` is 0. The fit does not store the items' prompts: pass ``prompts=``, a
:class:`~disagree.data.ratings.RatingTable`, a mapping ``item_id -> prompt_id`` or a DataFrame
with a ``prompt_id`` column (see :func:`prompts_of`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import expit

from disagree.data.ratings import RatingTable
from disagree.data.scale import high_threshold
from disagree.errors import ModelError
from disagree.model.contrasts import cells_from_design, item_deviations
from disagree.model.draws import flat_draws, thinned
from disagree.model.fitting import Fit, as_fit
from disagree.ordinal import collapse_cells, design_matrix, gauss_hermite, profile_item_effects

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Columns of the items table, in order.
COLUMNS = ["rank", "item_id", "prompt_id", "dimension", "factor", "level", "reference",
           "p_high", "p_high_lower", "p_high_upper", "diff_pp", "diff_pp_lower",
           "diff_pp_upper", "p_order_differs_max", "max_abs_diff_pp"]
#: Columns of the pairs table, in order.
PAIR_COLUMNS = ["prompt_id", "item_a", "item_b", "dimension", "factor", "level", "reference",
                "p_a_over_b_reference", "p_a_over_b_level", "gap_pp_reference", "gap_pp_level",
                "p_order_differs"]
#: Orders of the items table.
SORTS = ("difference", "order")
#: About how many float64 values the largest temporary array holds (16 MB).
CHUNK_SIZE = 2_000_000

Prompts = RatingTable | pd.DataFrame | pd.Series | Mapping[str, str]


@dataclass(frozen=True)
class LevelProbabilities:
    """Posterior draws of each level's probability of a high rating on each item.

    ``draws`` has shape (S, L, J): draws x ``levels`` (the reference first) x ``item_ids``
    (the items rated on the dimension, in the fit's order).
    """

    factor: str
    dimension: str
    reference: str
    levels: list[str]
    item_ids: list[str]
    threshold: int
    draws: np.ndarray

    def item_table(self, ci: float = 0.95, prompts: Prompts | None = None,
                   sort: str = "difference") -> pd.DataFrame:
        """Return the items table (see :func:`group_disagreement`)."""
        if sort not in SORTS:
            raise ModelError(f"sort={sort!r}; choose one of {', '.join(SORTS)}")
        if sort == "order" and prompts is None:
            raise ModelError("sort='order' needs the items' prompts, e.g. prompts=table "
                             "(a RatingTable) or a mapping item_id -> prompt_id")
        lo, hi = _quantiles(ci)
        p, n_levels, n_items = self.draws, len(self.levels), len(self.item_ids)
        diff = 100.0 * (p[:, 1:] - p[:, :1])  # (S, L-1, J)
        mean_diff = diff.mean(axis=0)
        key = np.abs(mean_diff).max(axis=0)  # (J,)
        order_max = np.full((n_levels, n_items), np.nan)
        prompt = np.full(n_items, np.nan, dtype=object)
        if prompts is not None:
            prompt = _prompt_ids(prompts, self.item_ids)
            ia, ib = _pairs(prompt)
            differs = _order_differs(p, ia, ib)  # (L-1, n_pairs)
            for pos in (ia, ib):
                np.fmax.at(order_max[1:].T, pos, differs.T)
        keys = (key,) if sort == "difference" else (key, np.nan_to_num(order_max, nan=-1).max(0))
        rank_of = np.empty(n_items, dtype=int)
        rank_of[np.lexsort(tuple(-k for k in keys))] = np.arange(1, n_items + 1)
        none = np.full((1, n_items), np.nan)
        frame = pd.DataFrame({
            "rank": np.tile(rank_of, n_levels),
            "item_id": np.tile(np.asarray(self.item_ids, dtype=object), n_levels),
            "prompt_id": np.tile(prompt, n_levels),
            "dimension": self.dimension, "factor": self.factor,
            "level": np.repeat(np.asarray(self.levels, dtype=object), n_items),
            "reference": self.reference, "p_high": p.mean(axis=0).ravel(),
            "p_high_lower": np.quantile(p, lo, axis=0).ravel(),
            "p_high_upper": np.quantile(p, hi, axis=0).ravel(),
            "diff_pp": np.concatenate([none, mean_diff]).ravel(),
            "diff_pp_lower": np.concatenate([none, np.quantile(diff, lo, axis=0)]).ravel(),
            "diff_pp_upper": np.concatenate([none, np.quantile(diff, hi, axis=0)]).ravel(),
            "p_order_differs_max": order_max.ravel(),
            "max_abs_diff_pp": np.tile(key, n_levels),
            "_level": np.repeat(np.arange(n_levels), n_items)})
        frame = frame.sort_values(["rank", "_level"]).reset_index(drop=True)[COLUMNS]
        frame.attrs.update(threshold=self.threshold, ci=ci, sort=sort)
        return frame

    def pair_table(self, prompts: Prompts) -> pd.DataFrame:
        """Return the pairs table (see :func:`pair_disagreement`)."""
        prompt = _prompt_ids(prompts, self.item_ids)
        ia, ib = _pairs(prompt)
        gap = self.draws[:, :, ia] - self.draws[:, :, ib]  # (S, L, n_pairs)
        differs = _order_differs(self.draws, ia, ib)
        ids = np.asarray(self.item_ids, dtype=object)
        frame = pd.concat([pd.DataFrame({
            "prompt_id": prompt[ia], "item_a": ids[ia], "item_b": ids[ib],
            "dimension": self.dimension, "factor": self.factor, "level": level,
            "reference": self.reference,
            "p_a_over_b_reference": (gap[:, 0] > 0).mean(axis=0),
            "p_a_over_b_level": (gap[:, k] > 0).mean(axis=0),
            "gap_pp_reference": 100.0 * gap[:, 0].mean(axis=0),
            "gap_pp_level": 100.0 * gap[:, k].mean(axis=0),
            "p_order_differs": differs[k - 1]}, columns=PAIR_COLUMNS)
            for k, level in enumerate(self.levels[1:], start=1)], ignore_index=True)
        frame = frame.sort_values("p_order_differs", ascending=False, kind="stable")
        frame = frame.reset_index(drop=True)
        frame.attrs.update(threshold=self.threshold)
        return frame


def level_probabilities(fit: Fit | str | os.PathLike[str], factor: str, dimension: str,
                        levels: Sequence[str] | None = None, threshold: int | None = None,
                        draws: int | None = None, *, reference: str | None = None,
                        n_nodes: int = 20, chunk_size: int = CHUNK_SIZE) -> LevelProbabilities:
    """Posterior draws of every level's standardised probability of a high rating, per item.

    Parameters
    ----------
    fit : Fit or path
        A fitted (or loaded) model, or its fit directory.
    factor : str
        A factor of the fit, e.g. ``"politics"``.
    dimension : str
        A dimension of the fit.
    levels : sequence of str, optional
        Levels of ``factor`` to show (default: all); the reference is added first if missing.
    threshold : int, optional
        Lowest rating counted as high (default 4 on 5 points,
        :func:`disagree.data.scale.high_threshold`).
    draws : int, optional
        Use this many posterior draws, evenly spaced over the chains (default: all).
    reference : str, optional
        The level the others are compared with (default: the fit's reference).
    n_nodes : int
        Gauss-Hermite nodes per cell for draws with a very small rater sd (the others use an
        exact grid).
    chunk_size : int
        About how many float64 values the largest temporary array holds.

    Returns
    -------
    LevelProbabilities
        ``.item_table(ci, prompts, sort)`` and ``.pair_table(prompts)`` make the two tables
        from the same draws.

    Raises
    ------
    ModelError
        Naming an unknown factor, dimension, level or reference (and the valid ones), a
        threshold outside ``2..K``, or a non-positive ``draws``, ``n_nodes`` or ``chunk_size``.
    """
    fit = as_fit(fit)
    all_levels, dims, scale = fit.spec.levels, list(fit.spec.dimensions), fit.spec.scale
    if factor not in all_levels:
        raise ModelError(f"factor {factor!r} is not a factor of the fit; factors are "
                         f"{', '.join(all_levels)}")
    if dimension not in dims:
        raise ModelError(f"dimension {dimension!r} is not in the fit; dimensions are "
                         f"{', '.join(dims)}")
    shown = _levels(all_levels[factor], factor, levels, reference)
    threshold = high_threshold(scale) if threshold is None else int(threshold)
    if not 2 <= threshold <= scale:
        raise ModelError(f"threshold {threshold} must be between 2 and {scale} (the scale)")
    for name, value in (("draws", draws), ("n_nodes", n_nodes), ("chunk_size", chunk_size)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ModelError(f"{name}={value!r}: expected a positive integer")
    d, cd = dims.index(dimension), fit.idata.constant_data
    items = np.unique(cd["obs_item"].values[cd["obs_dimension"].values == d])
    post = fit.idata.posterior
    pick = thinned(post.sizes["chain"] * post.sizes["draw"], draws)
    sample = cells_from_design(cd["rater_design"].values, all_levels)
    others = [f for f in all_levels if f != factor]
    cells, weights = collapse_cells(sample[others]) if others else \
        (pd.DataFrame(index=[0]), np.ones(1))
    settings = [cells.assign(**{factor: lv}) for lv in shown]
    beta = flat_draws(post, "beta", d, pick)  # (S, P)
    eta = np.stack([beta @ design_matrix(c, all_levels).T for c in settings], axis=1)
    effects, profile = profile_item_effects(
        flat_draws(post, "item_effect", d, pick)[:, items],
        item_deviations(post, all_levels, fit.spec.interactions, d, items, pick),
        pd.concat(settings, ignore_index=True), all_levels)
    cut = flat_draws(post, "cutpoints", d, pick)[:, threshold - 2]  # (S,)
    probs = _high_probabilities(eta - cut[:, None, None], flat_draws(post, "rater_sd", d, pick),
                                effects, profile.reshape(len(shown), len(cells)), weights,
                                n_nodes, chunk_size)
    item_ids = [str(j) for j in post.coords["item"].values[items]]
    return LevelProbabilities(factor, dimension, shown[0], shown, item_ids, threshold, probs)


def group_disagreement(fit: Fit | str | os.PathLike[str], factor: str, dimension: str,
                       levels: Sequence[str] | None = None, threshold: int | None = None,
                       ci: float = 0.95, draws: int | None = None, *,
                       prompts: Prompts | None = None, sort: str = "difference",
                       reference: str | None = None, n_nodes: int = 20) -> pd.DataFrame:
    """Where the levels of ``factor`` rate the items of ``dimension`` differently.

    Parameters
    ----------
    fit, factor, dimension, levels, threshold, draws, reference, n_nodes
        As in :func:`level_probabilities`.
    ci : float
        Probability mass of the equal-tailed intervals.
    prompts : RatingTable, mapping or DataFrame, optional
        The items' prompts (see :func:`prompts_of`); without them ``prompt_id`` and
        ``p_order_differs_max`` are NaN.
    sort : {"difference", "order"}
        Rank the items by ``max_abs_diff_pp`` or by ``p_order_differs_max`` (needs
        ``prompts``; ties by ``max_abs_diff_pp``); see the module docstring.

    Returns
    -------
    DataFrame
        Columns :data:`COLUMNS`, one row per item and level, ``rank`` 1 first and an item's
        levels in the order of ``levels`` (reference first). ``p_high*`` are probabilities,
        ``diff_pp*`` and ``max_abs_diff_pp`` percentage points; ``attrs`` holds
        ``threshold``, ``ci`` and ``sort``.
    """
    return level_probabilities(fit, factor, dimension, levels, threshold, draws,
                               reference=reference, n_nodes=n_nodes).item_table(ci, prompts, sort)


def pair_disagreement(fit: Fit | str | os.PathLike[str], factor: str, dimension: str,
                      prompts: Prompts, levels: Sequence[str] | None = None,
                      threshold: int | None = None, draws: int | None = None, *,
                      reference: str | None = None, n_nodes: int = 20) -> pd.DataFrame:
    """Pairs of responses to one prompt that a level and the reference order differently.

    Arguments as in :func:`group_disagreement`. Returns a DataFrame with columns
    :data:`PAIR_COLUMNS`, one row per pair (``item_a`` before ``item_b`` in the fit's order)
    and non-reference level, sorted by ``p_order_differs``, largest first.
    """
    return level_probabilities(fit, factor, dimension, levels, threshold, draws,
                               reference=reference, n_nodes=n_nodes).pair_table(prompts)


def prompts_of(table: RatingTable) -> pd.Series:
    """Return the ``prompt_id`` of every item of ``table``, indexed by ``item_id``."""
    if "prompt_id" not in table.items.columns:
        raise ModelError(f"{table.source}: items have no prompt_id attribute; item attributes "
                         f"are {', '.join(map(str, table.items.columns)) or '(none)'}")
    return table.items["prompt_id"].astype(str)


def plot_disagreement(table: pd.DataFrame, top: int = 20) -> Figure:
    """Each level's P(high rating) with its interval on the ``top`` items of the ranking.

    ``table`` is from :func:`group_disagreement` (or its file read back). Items are on the y
    axis (rank 1 at the top), with one dot (posterior mean) and line (interval) per level,
    the reference in black. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    missing = [c for c in ("rank", "item_id", "factor", "level", "reference", "p_high",
                           "p_high_lower", "p_high_upper") if c not in table.columns]
    if missing:
        raise ModelError(f"not a disagreement table: missing column(s) {', '.join(missing)}")
    if not isinstance(top, int | np.integer) or top < 1:
        raise ModelError(f"top={top!r}: expected a positive integer")
    ranks = np.sort(table["rank"].unique())[:top]
    sub = table[table["rank"].isin(ranks)]
    levels, reference = list(pd.unique(sub["level"])), str(sub["reference"].iloc[0])
    y_of = {r: len(ranks) - 1 - i for i, r in enumerate(ranks)}
    offsets = np.linspace(0.25, -0.25, len(levels)) if len(levels) > 1 else np.zeros(1)
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(ranks) + 1.6))
    for i in range(len(ranks) % 2, len(ranks), 2):
        ax.axhspan(i - 0.5, i + 0.5, color="#f0f0f0", zorder=0)
    colors = iter(plt.get_cmap("tab10").colors)
    for k, level in enumerate(levels):
        rows = sub[sub["level"] == level]
        y = rows["rank"].map(y_of).to_numpy() + offsets[k]
        color = "black" if str(level) == reference else next(colors)
        ax.hlines(y, rows["p_high_lower"], rows["p_high_upper"], color=color, lw=1.6)
        ax.scatter(rows["p_high"], y, color=color, s=20, zorder=3,
                   label=f"{level} (reference)" if str(level) == reference else str(level))
    names = sub.drop_duplicates("rank").set_index("rank")["item_id"]
    ax.set_yticks([y_of[r] for r in ranks], [str(names[r]) for r in ranks], fontsize=8)
    ax.set(ylim=(-0.6, len(ranks) - 0.4), xlim=(0, 1))
    t, ci = table.attrs.get("threshold"), table.attrs.get("ci", 0.95)
    ax.set_xlabel(f"P(rating >= {t})" if t else "P(high rating)")
    ax.grid(axis="x", alpha=0.3)
    factor = str(sub["factor"].iloc[0])
    ax.legend(title=factor, fontsize=8, title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False)
    dim = str(sub["dimension"].iloc[0]).replace("_", " ") + ": " if "dimension" in sub else ""
    ax.set_title(f"{dim}the {len(ranks)} items where {factor} levels differ most\n"
                 f"posterior mean and {ci:.0%} interval", fontsize=10)
    fig.tight_layout()
    return fig


def _high_probabilities(a: np.ndarray, sigma: np.ndarray, effects: np.ndarray,
                        profiles: np.ndarray, weights: np.ndarray, n_nodes: int,
                        chunk_size: int, method: str = "auto") -> np.ndarray:
    """``sum_c w_c E_u[logistic(a_c + u + v_{q(c), j})]`` per draw, setting and item (S, L, J).

    ``a`` (S, L, C) is each cell's ``x_c . beta - c_{t-1}`` per setting, ``sigma`` (S,) the sd
    of ``u``, ``effects`` (S, Q, J) the item effects of each profile, ``profiles`` (L, C) each
    cell's profile and ``weights`` (C,) the cells' weights. ``u`` is integrated on one
    uniform grid of ``t = a + u`` per draw (``method="grid"``; step ``h = min(0.5, sigma / 2)``,
    8 sd beyond the extreme cells) shared by the cells, each cell's normal density sampled on
    it and normalised: the trapezoid rule on the real line, exact to rounding (its error is
    about ``exp(-2 pi^2 / h)``, from the logistic's poles). Draws whose sd is so small that
    the grid would need over 200 points and more logistics than the nodes use ``n_nodes``
    Gauss-Hermite nodes per cell instead (``"nodes"``, accurate for small sds).
    """
    n_draws, n_set, n_cells = a.shape
    n_prof, n_items = effects.shape[1:]
    w = np.asarray(weights, float) / np.sum(weights)
    step = np.minimum(0.5, sigma / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        span = np.ptp(a.reshape(n_draws, -1), axis=1) + 16 * sigma
        n_grid = np.where(sigma > 1e-6, np.ceil(span / step) + 1, np.inf)
    grid = (n_grid <= 200) | (n_grid * (n_prof * n_items + n_set * n_cells)
                              < n_set * n_cells * n_nodes * n_items)
    grid = grid if method == "auto" else np.full(n_draws, method == "grid")
    out = np.empty((n_draws, n_set, n_items))
    idx = np.flatnonzero(~grid)
    if len(idx):
        out[idx] = _by_nodes(a[idx], sigma[idx], effects[idx], profiles, w, n_nodes, chunk_size)
    idx = np.flatnonzero(grid)
    per_draw = max(n_prof * n_items, n_set * n_cells) * n_grid[idx].max(initial=1)
    onehot = (profiles[..., None] == np.arange(n_prof)) * w[:, None]  # (L, C, Q)
    n_blocks = int(min(len(idx), np.ceil(len(idx) * per_draw / chunk_size)))
    for block in np.array_split(idx, n_blocks) if n_blocks else []:
        n = int(n_grid[block].max())
        t = (a[block].min(axis=(1, 2)) - 8 * sigma[block])[:, None] + \
            step[block, None] * np.arange(n)  # (s, G)
        dens = np.exp(-0.5 * ((t[:, None, None] - a[block, :, :, None])
                              / sigma[block, None, None, None]) ** 2)  # (s, L, C, G)
        dens /= dens.sum(axis=-1, keepdims=True)
        w_grid = np.einsum("slcg,lcq->slqg", dens, onehot).reshape(len(block), n_set, -1)
        z = expit(t[:, None, :, None] + effects[block][:, :, None, :])  # (s, Q, G, J)
        out[block] = w_grid @ z.reshape(len(block), -1, n_items)
    return out


def _by_nodes(a: np.ndarray, sigma: np.ndarray, effects: np.ndarray, profiles: np.ndarray,
              w: np.ndarray, n_nodes: int, chunk_size: int) -> np.ndarray:
    """:func:`_high_probabilities` by ``n_nodes`` Gauss-Hermite nodes per cell."""
    nodes, gh = gauss_hermite(n_nodes)
    wg = (w[:, None] * gh).ravel()  # (C * N,) in the order of a (C, N) reshape
    n_draws, n_set, n_cells = a.shape
    n_items = effects.shape[-1]
    per_item = n_set * n_cells * n_nodes
    j_step = int(np.clip(chunk_size // per_item, 1, n_items))
    s_step = int(np.clip(chunk_size // (per_item * j_step), 1, n_draws))
    out = np.empty((n_draws, n_set, n_items))
    for s0 in range(0, n_draws, s_step):
        ss = slice(s0, s0 + s_step)
        base = a[ss, ..., None] + sigma[ss, None, None, None] * nodes  # (s, L, C, N)
        for j0 in range(0, n_items, j_step):
            js = slice(j0, j0 + j_step)
            z = base[..., None] + effects[ss][:, profiles, None, js]  # (s, L, C, N, j)
            expit(z, out=z)
            out[ss, :, js] = wg @ z.reshape(*z.shape[:2], -1, z.shape[-1])
    return out


def _levels(valid: Sequence[str], factor: str, levels: Sequence[str] | None,
            reference: str | None) -> list[str]:
    """Return the levels to show, reference first; errors name the bad level and the valid ones."""
    valid = [str(v) for v in valid]
    reference = valid[0] if reference is None else str(reference)
    wanted = valid if levels is None else \
        [levels] if isinstance(levels, str) else [str(v) for v in levels]
    for lv in [reference, *wanted]:
        if lv not in valid:
            raise ModelError(f"level {lv!r} is not a level of {factor!r}; levels are "
                             f"{', '.join(valid)}")
    shown = [reference] + [lv for lv in dict.fromkeys(wanted) if lv != reference]
    if len(shown) < 2:
        raise ModelError(f"levels={list(wanted)!r}: give at least one level of {factor!r} "
                         f"besides the reference {reference!r}; levels are {', '.join(valid)}")
    return shown


def _quantiles(ci: float) -> tuple[float, float]:
    """Lower and upper quantiles of an equal-tailed ``ci`` interval."""
    if isinstance(ci, bool) or not isinstance(ci, float | int) or not 0 < ci < 1:
        raise ModelError(f"ci={ci!r}: expected a probability strictly between 0 and 1")
    return (1 - ci) / 2, 1 - (1 - ci) / 2


def _prompt_ids(prompts: Prompts, item_ids: Sequence[str]) -> np.ndarray:
    """Return the prompt of every item in ``item_ids``; errors name the missing items."""
    if isinstance(prompts, RatingTable):
        prompts = prompts_of(prompts)
    elif isinstance(prompts, pd.DataFrame) and "prompt_id" in prompts.columns:
        prompts = (prompts.set_index("item_id") if "item_id" in prompts.columns
                   else prompts)["prompt_id"]
    elif not isinstance(prompts, Mapping | pd.Series):
        raise ModelError(f"prompts: expected a RatingTable, a mapping item_id -> prompt_id or "
                         f"a DataFrame with a prompt_id column; got {type(prompts).__name__}")
    lookup = {str(k): v for k, v in dict(prompts).items() if not pd.isna(v)}
    missing = [j for j in item_ids if j not in lookup]
    if missing:
        raise ModelError(f"prompts: no prompt_id for {len(missing)} item(s) of the fit, e.g. "
                         f"{', '.join(map(repr, missing[:3]))}")
    return np.asarray([str(lookup[j]) for j in item_ids], dtype=object)


def _pairs(prompt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(a, b)``, ``a < b``, of every pair of items with the same prompt."""
    parts = [np.empty((0, 2), dtype=int)]
    for group in pd.Series(prompt).groupby(prompt, sort=False).indices.values():
        a, b = np.triu_indices(len(group), k=1)
        parts.append(np.column_stack([group[a], group[b]]))
    out = np.concatenate(parts)
    return out[:, 0], out[:, 1]


def _order_differs(p: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Share of draws where each level and the reference order ``(a, b)`` oppositely.

    ``p`` is (S, L, J), the reference first; returns (L - 1, n_pairs).
    """
    gap = p[:, :, ia] - p[:, :, ib]
    return (gap[:, 1:] * gap[:, :1] < 0).mean(axis=0)
