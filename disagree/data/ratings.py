"""Reading and validating long-format ratings into a :class:`RatingTable`.

The contract (DESIGN.md): one row per (rater, item, dimension) with the required columns
``rater_id, item_id, dimension, rating`` (rating an integer 1..K). Every other column is a rater
attribute (constant within a rater) or an item attribute (constant within an item). Wide files,
with one column per dimension, are melted first. Every problem is reported with the source, the
rows, the column, the bad value and what was expected; rows are never dropped silently.

Rows in messages are numbered from 1 after the header for files, and by index label for
DataFrames.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import pandas as pd

from disagree._io import read_table, write_table
from disagree.data.checks import (
    REQUIRED,
    ROW,
    check_conflicting,
    check_dimensions,
    check_ids,
    check_ratings,
    check_scale,
    drop_exact_duplicates,
    names,
    split_attributes,
    to_long,
)
from disagree.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RatingTable:
    """Validated ratings with their raters and items.

    Attributes
    ----------
    ratings : pandas.DataFrame
        One row per rating: ``rater_id``, ``item_id`` (strings), ``dimension`` (string) and
        ``rating`` (int64, 1..K of that dimension).
    raters : pandas.DataFrame
        One row per rater, indexed by ``rater_id``; columns are the rater attributes.
    items : pandas.DataFrame
        One row per item, indexed by ``item_id``; columns are the item attributes.
    scales : dict of str to int
        Number of rating categories K per dimension, in the dimension order of the table.
    source : str
        Where the data came from (a path, or ``"<DataFrame>"``).
    report : tuple of str
        What validation changed or noticed (dropped duplicates, conversions, ...).
    """

    ratings: pd.DataFrame
    raters: pd.DataFrame
    items: pd.DataFrame
    scales: dict[str, int]
    source: str = "<DataFrame>"
    report: tuple[str, ...] = field(default=())

    @property
    def dimensions(self) -> list[str]:
        """Dimension names in table order."""
        return list(self.scales)

    @property
    def rater_attributes(self) -> list[str]:
        """Names of the rater attribute columns."""
        return list(self.raters.columns)

    @property
    def item_attributes(self) -> list[str]:
        """Names of the item attribute columns."""
        return list(self.items.columns)

    def long(self) -> pd.DataFrame:
        """Return the ratings joined with every rater and item attribute (the file format)."""
        out = self.ratings.join(self.raters, on="rater_id").join(self.items, on="item_id")
        return out.reset_index(drop=True)

    @cached_property
    def data_hash(self) -> str:
        """SHA-256 of the canonical content (ratings, raters, items, scales), order-free."""
        h = hashlib.sha256()
        keys = ["dimension", "rater_id", "item_id"]
        h.update(self.ratings.sort_values(keys).to_csv(index=False).encode())
        h.update(self.raters.sort_index().to_csv().encode())
        h.update(self.items.sort_index().to_csv().encode())
        h.update(repr(sorted(self.scales.items())).encode())
        return h.hexdigest()

    def select(self, dimensions: Sequence[str] | None = None) -> RatingTable:
        """Return the table restricted to ``dimensions`` (in the order given)."""
        if dimensions is None:
            return self
        dims = check_dimensions(dimensions, self.dimensions, self.source)
        ratings = self.ratings[self.ratings["dimension"].isin(dims)].reset_index(drop=True)
        items = self.items.loc[self.items.index.isin(ratings["item_id"].unique())]
        raters = self.raters.loc[self.raters.index.isin(ratings["rater_id"].unique())]
        return replace(self, ratings=ratings, raters=raters, items=items,
                       scales={d: self.scales[d] for d in dims})

    def factor_levels(
        self, factors: Sequence[str], reference: Mapping[str, str] | None = None
    ) -> dict[str, list[str]]:
        """Check rater factors and return their levels, the reference level first.

        Parameters
        ----------
        factors : sequence of str
            Rater attributes to use as categorical factors.
        reference : mapping, optional
            Reference level per factor. Factors without one get their most frequent
            level among raters (ties broken alphabetically).

        Returns
        -------
        dict of str to list of str
            Levels per factor (as strings), reference first, the others sorted.

        Raises
        ------
        DataError
            For an unknown factor, an item attribute used as a factor, a reference for a
            factor that is not asked for, a reference level that does not exist, or raters
            with no value for a factor.
        """
        reference = dict(reference or {})
        for name in factors:
            if name in self.items.columns:
                raise DataError(
                    f"{self.source}: factor {name!r} is an item attribute, not a rater "
                    f"attribute; factors must be rater attributes: {names(self.raters.columns)}"
                )
            if name not in self.raters.columns:
                raise DataError(
                    f"{self.source}: unknown factor {name!r}; rater attributes are: "
                    f"{names(self.raters.columns)}"
                )
        extra = sorted(set(reference) - set(factors))
        if extra:
            raise DataError(
                f"reference given for {names(extra)}, which is not among the factors "
                f"{names(factors)}"
            )
        levels: dict[str, list[str]] = {}
        for name in factors:
            values = self.raters[name]
            missing = values.index[values.isna()]
            if len(missing):
                raise DataError(
                    f"{self.source}: {len(missing)} rater(s) have no value for factor "
                    f"{name!r}: {names(missing)}; drop them with "
                    f"drop_raters_missing(table, [{name!r}]) or give them a level such as 'unknown'"
                )
            counts = values.astype(str).value_counts()
            ordered = sorted(counts.index, key=lambda lv: (-counts[lv], lv))
            ref = reference.get(name, ordered[0])
            if str(ref) not in counts.index:
                raise DataError(
                    f"{self.source}: reference level {ref!r} for {name!r} does not exist; "
                    f"levels are: {names(sorted(counts.index))}"
                )
            levels[name] = [str(ref)] + sorted(lv for lv in counts.index if lv != str(ref))
        return levels

    def summary(self) -> str:
        """Return a human-readable summary: counts, rating distribution, attribute columns."""
        r = self.ratings
        lines = [
            f"source: {self.source}",
            f"ratings: {len(r):,}   raters: {len(self.raters):,}   items: {len(self.items):,}"
            f"   dimensions: {len(self.scales)}",
            f"rater attributes: {names(self.raters.columns) or '(none)'}",
            f"item attributes: {names(self.items.columns) or '(none)'}",
            "ratings per level:",
        ]
        counts = r.groupby(["dimension", "rating"]).size().unstack(fill_value=0)
        for dim, k in self.scales.items():
            row = counts.loc[dim] if dim in counts.index else pd.Series(dtype=int)
            cells = "  ".join(f"{lv}: {int(row.get(lv, 0)):,}" for lv in range(1, k + 1))
            lines.append(f"  {dim} (1..{k}): {cells}")
        lines += [f"note: {msg}" for msg in self.report]
        return "\n".join(lines)


def load_ratings(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    dimensions: Sequence[str] | None = None,
    scale: int | Mapping[str, int] | None = None,
    rater_attributes: Iterable[str] | None = None,
    item_attributes: Iterable[str] | None = None,
    ignore_columns: Iterable[str] | None = None,
    encoding: str = "utf-8",
) -> RatingTable:
    """Read ratings from a file or DataFrame and validate them.

    Parameters
    ----------
    source : path or DataFrame
        A CSV, TSV or Parquet file (by suffix; ``.csv.gz`` and ``.tsv.gz`` work too) or a
        DataFrame, in long format, or in wide format with one column per dimension.
    columns : mapping, optional
        Renames applied first, ``{"your name": "contract name"}``, e.g.
        ``{"user_id": "rater_id", "instance_id": "item_id"}``.
    dimensions : sequence of str, optional
        Long format: keep only these dimensions (each must exist). Wide format (no
        ``dimension``/``rating`` columns): the columns holding one dimension each; empty cells
        there are "not rated" and are dropped with a note in ``report``.
    scale : int or mapping, optional
        Number of categories K, for all dimensions or per dimension. When omitted, K is the
        largest rating observed per dimension.
    rater_attributes, item_attributes : iterable of str, optional
        Columns declared as rater or item attributes. Undeclared columns with a known name (see
        ``KNOWN_RATER_ATTRIBUTES`` / ``KNOWN_ITEM_ATTRIBUTES``) are taken as such; others are
        classified by which they are constant within.
    ignore_columns : iterable of str, optional
        Columns to leave out (reported).
    encoding : str, default "utf-8"
        Text encoding of CSV/TSV files.

    Returns
    -------
    RatingTable

    Raises
    ------
    DataError
        When the input breaks the contract; the message names the source, rows, column and
        the expected form.
    """
    name = str(source) if not isinstance(source, pd.DataFrame) else "<DataFrame>"
    frame = (source.copy() if isinstance(source, pd.DataFrame)
             else read_table(source, encoding=encoding, error=DataError, what="ratings"))
    if isinstance(source, pd.DataFrame):
        frame[ROW] = [str(i) for i in frame.index]
    else:
        frame[ROW] = [str(i + 1) for i in range(len(frame))]
    frame = frame.reset_index(drop=True)
    if columns:
        frame = frame.rename(columns=dict(columns))
    report: list[str] = []
    ignore = [c for c in (ignore_columns or []) if c in frame.columns]
    if ignore:
        frame = frame.drop(columns=ignore)
        report.append(f"ignored columns: {names(ignore)}")
    if len(frame) == 0:
        raise DataError(f"{name}: has a header but no data rows (expected at least one rating)")
    frame = to_long(frame, dimensions, name, report)
    frame = check_ids(frame, name)
    frame = check_ratings(frame, name)
    frame = drop_exact_duplicates(frame, name, report)
    check_conflicting(frame, name)
    scales = check_scale(frame, scale, name)
    raters, items = split_attributes(
        frame, set(rater_attributes or ()), set(item_attributes or ()), name, report
    )
    ratings = frame[list(REQUIRED)].reset_index(drop=True)
    for note in report:
        log.info("%s: %s", name, note)
    return RatingTable(ratings, raters, items, scales, name, tuple(report))


def drop_raters_missing(table: RatingTable, factors: Sequence[str]) -> RatingTable:
    """Return ``table`` without the raters that lack a value for any of ``factors``.

    The removed raters and ratings are recorded in the table's ``report``.
    """
    missing = table.raters[list(factors)].isna().any(axis=1)
    gone = table.raters.index[missing]
    if not len(gone):
        return table
    ratings = table.ratings[~table.ratings["rater_id"].isin(gone)].reset_index(drop=True)
    note = (f"dropped {len(gone)} rater(s) with no value for {names(factors)} "
            f"and their {len(table.ratings) - len(ratings)} rating(s): {names(gone)}")
    return replace(table, ratings=ratings, raters=table.raters.loc[~missing],
                   items=table.items.loc[table.items.index.isin(ratings["item_id"])],
                   report=table.report + (note,))


def save_ratings(table: RatingTable, path: str | os.PathLike[str]) -> Path:
    """Write the table in long format (CSV, TSV or Parquet by suffix), atomically."""
    return write_table(path, table.long())
