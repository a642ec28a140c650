"""Converting ratings between scales (5-point to 3-point or binary) and the "high" threshold.

Cut points are the upper bounds of every new category but the last: on a 5-point scale, cuts
``(3,)`` give the binary scale {1,2,3}->1, {4,5}->2 and cuts ``(2, 3)`` the 3-point scale
{1,2}->1, {3}->2, {4,5}->3.

Defaults. Binary: the lower half including the midpoint maps to 1, so on 5 points a rating
counts as positive ("toxic", "emotionally aware") only at 4 or 5. The neutral midpoint is not an
endorsement of the attribute, which is also how the paper's headline contrasts and Figure 1
define a "high" rating; the default is the same for harmful dimensions (toxicity, bias) and for
desirable ones, so "2" always means "the attribute is present". 3-point: the bottom and top
``(K - 1) // 2`` categories become low and high and the rest the middle ({1,2},{3},{4,5} on 5
points; {1,2,3},{4},{5,6,7} on 7). Any other mapping is one ``cuts=`` argument away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from disagree.data.ratings import RatingTable
from disagree.errors import DataError


def default_cuts(k_from: int, k_to: int) -> tuple[int, ...]:
    """Return the default cut points mapping a ``k_from``-point scale to ``k_to`` points."""
    if not 2 <= k_to <= k_from:
        raise DataError(f"cannot convert a {k_from}-point scale to {k_to} points; the new scale "
                        f"must have between 2 and {k_from} categories")
    if k_to == k_from:
        return tuple(range(1, k_from))
    if k_to == 2:
        return ((k_from + 1) // 2,)
    if k_to == 3:
        side = (k_from - 1) // 2
        return (side, k_from - side)
    # general case: equal-width bins
    edges = np.linspace(0, k_from, k_to + 1)[1:-1]
    return tuple(int(round(e)) for e in edges)


def high_threshold(k: int) -> int:
    """Return the lowest rating counted as "high" on a ``k``-point scale (4 on 5 points)."""
    return default_cuts(k, 2)[0] + 1


def scale_mapping(k_from: int, k_to: int, cuts: Sequence[int] | None = None) -> dict[int, int]:
    """Return the mapping ``{old rating: new rating}`` for the given or default cut points."""
    cuts = tuple(default_cuts(k_from, k_to) if cuts is None else cuts)
    if len(cuts) != k_to - 1 or list(cuts) != sorted(set(cuts)) or not all(
            1 <= c < k_from for c in cuts):
        raise DataError(f"cut points {list(cuts)} for {k_from} -> {k_to} points must be "
                        f"{k_to - 1} strictly increasing integers in 1..{k_from - 1}")
    return {r: 1 + int(np.searchsorted(cuts, r, side="left")) for r in range(1, k_from + 1)}


def to_scale(table: RatingTable, k: int,
             cuts: Sequence[int] | Mapping[str, Sequence[int]] | None = None) -> RatingTable:
    """Return ``table`` with every dimension's ratings mapped onto a ``k``-point scale.

    Parameters
    ----------
    table : RatingTable
        Ratings to convert.
    k : int
        Number of categories of the new scale (2 for binary, 3, ...).
    cuts : sequence of int, or mapping of dimension to sequence, optional
        Upper bounds of the new categories but the last (see the module docstring); one set
        for all dimensions or one per dimension. Defaults to :func:`default_cuts`.

    Returns
    -------
    RatingTable
        A new table; its ``report`` records the mapping used per dimension.
    """
    ratings = table.ratings.copy()
    scales, notes = {}, []
    for dim, k_from in table.scales.items():
        dim_cuts = cuts.get(dim) if isinstance(cuts, Mapping) else cuts
        mapping = scale_mapping(k_from, k, dim_cuts)
        rows = ratings["dimension"] == dim
        ratings.loc[rows, "rating"] = ratings.loc[rows, "rating"].map(mapping)
        scales[dim] = k
        groups: dict[int, list[int]] = {}
        for old, new in mapping.items():
            groups.setdefault(new, []).append(old)
        notes.append(f"{dim}: {k_from} -> {k} points " + ", ".join(
            f"{{{','.join(map(str, olds))}}}->{new}" for new, olds in groups.items()))
    ratings["rating"] = ratings["rating"].astype("int64")
    return replace(table, ratings=ratings, scales=scales,
                   report=table.report + ("scale conversion: " + "; ".join(notes),))
