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
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from disagree._io import write_table
from disagree.errors import DataError, DisagreeWarning

log = logging.getLogger(__name__)

REQUIRED = ("rater_id", "item_id", "dimension", "rating")
#: Column names taken to be rater attributes unless declared otherwise.
KNOWN_RATER_ATTRIBUTES = frozenset(
    "gender sex politics political_leaning ethnicity race country locale age age_band "
    "education occupation language religion".split()
)
#: Column names taken to be item attributes unless declared otherwise.
KNOWN_ITEM_ATTRIBUTES = frozenset(
    "prompt_id prompt response response_id text context model source".split()
)
_ROW = "__row__"
_SHOW = 8  # how many offending rows a message lists before summarising


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
        dims = _check_dimensions(dimensions, self.dimensions, self.source)
        ratings = self.ratings[self.ratings["dimension"].isin(dims)].reset_index(drop=True)
        items = self.items.loc[self.items.index.isin(ratings["item_id"].unique())]
        raters = self.raters.loc[self.raters.index.isin(ratings["rater_id"].unique())]
        return replace(self, ratings=ratings, raters=raters, items=items,
                       scales={d: self.scales[d] for d in dims})

    def covariate_levels(
        self, covariates: Sequence[str], reference: Mapping[str, str] | None = None
    ) -> dict[str, list[str]]:
        """Check rater covariates and return their levels, the reference level first.

        Parameters
        ----------
        covariates : sequence of str
            Rater attribute names to use as categorical covariates.
        reference : mapping, optional
            Reference level per covariate. Covariates without one get their most frequent
            level among raters (ties broken alphabetically).

        Returns
        -------
        dict of str to list of str
            Levels per covariate (as strings), reference first, the others sorted.

        Raises
        ------
        DataError
            For an unknown covariate, an item attribute used as a covariate, a reference for a
            factor that is not a covariate, a reference level that does not exist, or raters
            with no value for a covariate.
        """
        reference = dict(reference or {})
        for name in covariates:
            if name in self.items.columns:
                raise DataError(
                    f"{self.source}: covariate {name!r} is an item attribute, not a rater "
                    f"attribute; covariates must be rater attributes: {_names(self.raters.columns)}"
                )
            if name not in self.raters.columns:
                raise DataError(
                    f"{self.source}: unknown covariate {name!r}; rater attributes are: "
                    f"{_names(self.raters.columns)}"
                )
        extra = sorted(set(reference) - set(covariates))
        if extra:
            raise DataError(
                f"reference given for {_names(extra)}, which is not among the covariates "
                f"{_names(covariates)}"
            )
        levels: dict[str, list[str]] = {}
        for name in covariates:
            values = self.raters[name]
            missing = values.index[values.isna()]
            if len(missing):
                raise DataError(
                    f"{self.source}: {len(missing)} rater(s) have no value for covariate "
                    f"{name!r}: {_names(missing)}; drop them with "
                    f"drop_raters_missing(table, [{name!r}]) or give them a level such as 'unknown'"
                )
            counts = values.astype(str).value_counts()
            ordered = sorted(counts.index, key=lambda lv: (-counts[lv], lv))
            ref = reference.get(name, ordered[0])
            if str(ref) not in counts.index:
                raise DataError(
                    f"{self.source}: reference level {ref!r} for {name!r} does not exist; "
                    f"levels are: {_names(sorted(counts.index))}"
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
            f"rater attributes: {_names(self.raters.columns) or '(none)'}",
            f"item attributes: {_names(self.items.columns) or '(none)'}",
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
    frame = _read(source, encoding) if not isinstance(source, pd.DataFrame) else source.copy()
    if isinstance(source, pd.DataFrame):
        frame[_ROW] = [str(i) for i in frame.index]
    else:
        frame[_ROW] = [str(i + 1) for i in range(len(frame))]
    frame = frame.reset_index(drop=True)
    if columns:
        frame = frame.rename(columns=dict(columns))
    report: list[str] = []
    ignore = [c for c in (ignore_columns or []) if c in frame.columns]
    if ignore:
        frame = frame.drop(columns=ignore)
        report.append(f"ignored columns: {_names(ignore)}")
    if len(frame) == 0:
        raise DataError(f"{name}: has a header but no data rows (expected at least one rating)")
    frame = _to_long(frame, dimensions, name, report)
    frame = _check_ids(frame, name)
    frame = _check_ratings(frame, name)
    frame = _drop_exact_duplicates(frame, name, report)
    _check_conflicting(frame, name)
    scales = _check_scale(frame, scale, name)
    raters, items = _split_attributes(
        frame, set(rater_attributes or ()), set(item_attributes or ()), name, report
    )
    ratings = frame[list(REQUIRED)].reset_index(drop=True)
    for note in report:
        log.info("%s: %s", name, note)
    return RatingTable(ratings, raters, items, scales, name, tuple(report))


def drop_raters_missing(table: RatingTable, covariates: Sequence[str]) -> RatingTable:
    """Return ``table`` without the raters that lack a value for any of ``covariates``.

    The removed raters and ratings are recorded in the table's ``report``.
    """
    missing = table.raters[list(covariates)].isna().any(axis=1)
    gone = table.raters.index[missing]
    if not len(gone):
        return table
    ratings = table.ratings[~table.ratings["rater_id"].isin(gone)].reset_index(drop=True)
    note = (f"dropped {len(gone)} rater(s) with no value for {_names(covariates)} "
            f"and their {len(table.ratings) - len(ratings)} rating(s): {_names(gone)}")
    return replace(table, ratings=ratings, raters=table.raters.loc[~missing],
                   items=table.items.loc[table.items.index.isin(ratings["item_id"])],
                   report=table.report + (note,))


def save_ratings(table: RatingTable, path: str | os.PathLike[str]) -> Path:
    """Write the table in long format (CSV, TSV or Parquet by suffix), atomically."""
    return write_table(path, table.long())


# --- reading -------------------------------------------------------------------------------

def _read(path: str | os.PathLike[str], encoding: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if p.is_dir():
        raise DataError(f"{p}: is a directory, expected a CSV, TSV or Parquet file")
    suffixes = "".join(p.suffixes[-2:]).lower()
    kind = next((k for k in ("parquet", "pq", "tsv", "csv") if f".{k}" in suffixes), None)
    if kind is None:
        raise DataError(
            f"{p}: unsupported file type {p.suffix!r}; expected .csv, .tsv or .parquet"
        )
    if kind in ("parquet", "pq"):
        try:
            return pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several types for non-Parquet input
            raise DataError(f"{p}: is not a readable Parquet file ({exc})") from None
    with open(p, "rb") as fh:
        head = fh.read(8192)
    if not suffixes.endswith(".gz") and b"\x00" in head:
        raise DataError(f"{p}: is not a text table (it contains binary data); "
                        f"expected a {kind.upper()} file with a header row")
    try:
        with warnings.catch_warnings():  # rows longer than the header would lose data
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(p, sep="\t" if kind == "tsv" else ",", encoding=encoding,
                               index_col=False)
    except pd.errors.ParserWarning:
        raise DataError(f"{p}: is not a well-formed {kind.upper()} table: some rows have more "
                        f"fields than the header") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{p}: cannot be decoded as {encoding} (byte {exc.object[exc.start:exc.start + 1]!r}"
            f" at position {exc.start}); pass the file's encoding, e.g. encoding='latin-1' "
            f"(CLI: --encoding latin-1)"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{p}: is empty (expected a header row and ratings)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{p}: is not a well-formed {kind.upper()} table: {exc}") from None


def _to_long(frame: pd.DataFrame, dimensions: Sequence[str] | None, name: str,
             report: list[str]) -> pd.DataFrame:
    has_long = {"dimension", "rating"} <= set(frame.columns)
    if not has_long and dimensions:
        missing = [d for d in dimensions if d not in frame.columns]
        if missing:
            raise DataError(f"{name}: wide format: no column for dimension(s) {_names(missing)};"
                            f" columns are: {_names(_visible(frame))}")
        _require(frame, ("rater_id", "item_id"), name, wide=True)
        keep = [c for c in frame.columns if c not in dimensions]
        long = frame.melt(id_vars=keep, value_vars=list(dimensions), var_name="dimension",
                          value_name="rating")
        empty = long["rating"].isna()
        if empty.any():
            per_dim = long.loc[empty, "dimension"].value_counts().sort_index()
            report.append("wide format: dropped empty (not rated) cells: " + ", ".join(
                f"{d}: {n}" for d, n in per_dim.items()))
        return long.loc[~empty].reset_index(drop=True)
    _require(frame, REQUIRED, name, wide=False)
    frame["dimension"] = frame["dimension"].astype(str)
    if dimensions is not None:
        dims = _check_dimensions(dimensions, list(pd.unique(frame["dimension"])), name)
        frame = frame[frame["dimension"].isin(dims)].reset_index(drop=True)
    return frame


def _require(frame: pd.DataFrame, needed: Sequence[str], name: str, wide: bool) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if not missing:
        return
    form = ("wide format: rater_id, item_id and one column per dimension" if wide else
            "long format with columns rater_id, item_id, dimension, rating")
    hint = "" if wide else ", or pass dimensions=[...] for a wide file"
    raise DataError(
        f"{name}: missing required column {_names(missing)} (expected {form}; found: "
        f"{_names(_visible(frame))}). Map other names with columns={{'your_name': "
        f"'{missing[0]}'}}{hint}"
    )


def _check_dimensions(asked: Sequence[str], present: Sequence[str], name: str) -> list[str]:
    unknown = [d for d in asked if d not in present]
    if unknown:
        raise DataError(f"{name}: unknown dimension {_names(unknown)}; the data has: "
                        f"{_names(present)}")
    return list(asked)


# --- validation ----------------------------------------------------------------------------

def _check_ids(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    for col in ("rater_id", "item_id", "dimension"):
        bad = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        if col == "dimension":
            bad |= frame[col].isin(["nan", "None", "<NA>"])
        if bad.any():
            raise DataError(f"{name}: missing {col} (empty or NaN) in {_rows(frame, bad)}; "
                            f"every rating needs a {col}")
        frame[col] = _as_id(frame[col])
    return frame


def _as_id(col: pd.Series) -> pd.Series:
    """Turn an id column into strings, writing integral floats (3.0) as integers (3)."""
    if pd.api.types.is_float_dtype(col) and (col % 1 == 0).all():
        col = col.astype("int64")
    return col.astype(str)


def _check_ratings(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    raw = frame["rating"]
    missing = raw.isna()
    if missing.any():
        raise DataError(f"{name}: column 'rating' is empty in {_rows(frame, missing)}; "
                        f"expected an integer 1..K (leave unrated cells out of a long file)")
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna()
    if bad.any():
        raise DataError(f"{name}: column 'rating' is not numeric in {_rows(frame, bad, raw)}; "
                        f"expected an integer 1..K")
    frac = (numeric % 1) != 0
    if frac.any():
        raise DataError(f"{name}: column 'rating' is not a whole number in "
                        f"{_rows(frame, frac, raw)}; expected an integer 1..K")
    frame["rating"] = numeric.astype("int64")
    return frame


def _drop_exact_duplicates(frame: pd.DataFrame, name: str, report: list[str]) -> pd.DataFrame:
    dup = frame.drop(columns=_ROW).duplicated(keep="first")
    if dup.any():
        msg = f"dropped {int(dup.sum())} exact duplicate row(s): {_rows(frame, dup)}"
        report.append(msg)
        warnings.warn(f"{name}: {msg}", DisagreeWarning, stacklevel=3)
        frame = frame.loc[~dup].reset_index(drop=True)
    return frame


def _check_conflicting(frame: pd.DataFrame, name: str) -> None:
    key = ["rater_id", "item_id", "dimension"]
    clash = frame.duplicated(key, keep=False)
    if clash.any():
        first = frame.loc[clash].sort_values(key).iloc[0]
        same = clash & (frame[key] == first[key]).all(axis=1)
        raise DataError(
            f"{name}: the same (rater_id, item_id, dimension) is rated more than once with "
            f"different values or attributes, e.g. ({first['rater_id']}, {first['item_id']}, "
            f"{first['dimension']}) in {_rows(frame, same, frame['rating'])}; "
            f"{int(clash.sum())} rows are involved in all. Expected one rating per rater, "
            "item and dimension"
        )


def _check_scale(frame: pd.DataFrame, scale: int | Mapping[str, int] | None,
                 name: str) -> dict[str, int]:
    dims = list(pd.unique(frame["dimension"]))
    if isinstance(scale, Mapping):
        unknown = [d for d in scale if d not in dims]
        if unknown:
            raise DataError(f"{name}: scale given for unknown dimension {_names(unknown)}; the "
                            f"data has: {_names(dims)}")
    scales: dict[str, int] = {}
    for dim in dims:
        rows = frame["dimension"] == dim
        values = frame.loc[rows, "rating"]
        declared = scale.get(dim) if isinstance(scale, Mapping) else scale
        k = int(declared) if declared is not None else int(values.max())
        what = "declared" if declared is not None else "inferred"
        bad = rows & ((frame["rating"] < 1) | (frame["rating"] > k))
        if bad.any():
            raise DataError(
                f"{name}: column 'rating' is outside the {what} scale 1..{k} of dimension "
                f"{dim!r} in {_rows(frame, bad, frame['rating'])}"
                + ("; ratings must start at 1 (shift 0-based scales by +1)" if declared is None
                   else "")
            )
        if k < 2:
            raise DataError(f"{name}: dimension {dim!r} has only rating 1, so its scale cannot "
                            f"be inferred; declare it with scale=K")
        if values.nunique() == 1:
            warnings.warn(f"{name}: dimension {dim!r} has a single rating category observed "
                          f"({values.iloc[0]}) although its scale is 1..{k}", DisagreeWarning,
                          stacklevel=3)
        scales[dim] = k
    return scales


def _split_attributes(frame: pd.DataFrame, declared_rater: set[str], declared_item: set[str],
                      name: str, report: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    both = declared_rater & declared_item
    if both:
        raise DataError(f"columns {_names(sorted(both))} are declared both rater and item "
                        f"attributes")
    others = [c for c in frame.columns if c not in REQUIRED and c != _ROW]
    unknown = (declared_rater | declared_item) - set(others)
    if unknown:
        raise DataError(f"{name}: declared attribute column {_names(sorted(unknown))} is not in "
                        f"the data; columns are: {_names(_visible(frame))}")
    rater_cols, item_cols = [], []
    for col in others:
        varies_r = _varying(frame, "rater_id", col)
        varies_i = _varying(frame, "item_id", col)
        kind = ("rater" if col in declared_rater else "item" if col in declared_item else
                "rater" if col in KNOWN_RATER_ATTRIBUTES else
                "item" if col in KNOWN_ITEM_ATTRIBUTES else None)
        if kind is None:
            if varies_r is not None and varies_i is not None:
                raise DataError(
                    f"{name}: column {col!r} is neither a rater attribute (it varies within "
                    f"{_describe_varying(frame, 'rater_id', col, varies_r)}) nor an item "
                    f"attribute (it varies within "
                    f"{_describe_varying(frame, 'item_id', col, varies_i)}); declare it with "
                    f"rater_attributes=/item_attributes= or leave it out with ignore_columns="
                )
            kind = "rater" if varies_r is None else "item"
            if varies_r is None and varies_i is None:
                report.append(f"column {col!r} is constant within raters and within items; "
                              f"taken as a rater attribute")
        key, bad = ("rater_id", varies_r) if kind == "rater" else ("item_id", varies_i)
        if bad is not None:
            raise DataError(
                f"{name}: {kind} attribute {col!r} varies within one {kind}: "
                f"{_describe_varying(frame, key, col, bad)}; expected one value per {kind}"
            )
        (rater_cols if kind == "rater" else item_cols).append(col)
    raters = frame.groupby("rater_id", sort=True)[rater_cols].first() if rater_cols else \
        pd.DataFrame(index=pd.Index(sorted(frame["rater_id"].unique()), name="rater_id"))
    items = frame.groupby("item_id", sort=True)[item_cols].first() if item_cols else \
        pd.DataFrame(index=pd.Index(sorted(frame["item_id"].unique()), name="item_id"))
    return raters, items


def _varying(frame: pd.DataFrame, key: str, col: str) -> str | None:
    """Return the first ``key`` value within which ``col`` takes several values, else None."""
    n = frame.groupby(key, sort=True)[col].nunique(dropna=False)
    bad = n.index[n > 1]
    return str(bad[0]) if len(bad) else None


def _describe_varying(frame: pd.DataFrame, key: str, col: str, unit: str) -> str:
    rows = frame[frame[key] == unit]
    firsts = rows.drop_duplicates(col)
    cells = ", ".join(f"{_py(v)!r} (row {r})"
                      for v, r in zip(firsts[col], firsts[_ROW], strict=True))
    return f"{key} {unit!r}: {cells}"


# --- message helpers -----------------------------------------------------------------------

def _py(value: object) -> object:
    """Turn numpy scalars into Python ones so that messages read ``3.5``, not ``np.float64``."""
    return value.item() if isinstance(value, np.generic) else value


def _visible(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if c != _ROW]


def _names(values: Iterable[object]) -> str:
    values = [str(v) for v in values]
    shown = ", ".join(repr(v) if " " in v or v == "" else v for v in values[:_SHOW])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _SHOW else "")


def _rows(frame: pd.DataFrame, mask: pd.Series, values: pd.Series | None = None) -> str:
    """Describe the rows selected by ``mask``: 'row 3 ('x'), row 9 ('y'), ... (n rows)'."""
    idx = np.flatnonzero(mask.to_numpy())
    parts = []
    for i in idx[:_SHOW]:
        cell = f"row {frame[_ROW].iloc[i]}"
        if values is not None:
            cell += f" ({_py(values.iloc[i])!r})"
        parts.append(cell)
    more = f", ... ({len(idx)} rows in all)" if len(idx) > _SHOW else ""
    return ", ".join(parts) + more
