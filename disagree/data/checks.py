"""Checks of a ratings frame against the long-format contract (used by ``ratings.py``).

Every check raises :class:`~disagree.errors.DataError` naming the source, the rows (numbered
from 1 after the header for files, by index label for DataFrames), the column, the bad value
and the expected form.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from disagree.errors import DataError, DisagreeWarning

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
ROW = "__row__"
_SHOW = 8  # how many offending rows a message lists before summarising


# --- long format ----------------------------------------------------------------------------

def to_long(frame: pd.DataFrame, dimensions: Sequence[str] | None, name: str,
            report: list[str]) -> pd.DataFrame:
    """Return the frame in long format (melting a wide file), keeping the asked dimensions."""
    has_long = {"dimension", "rating"} <= set(frame.columns)
    if not has_long and dimensions:
        missing = [d for d in dimensions if d not in frame.columns]
        if missing:
            raise DataError(f"{name}: wide format: no column for dimension(s) {names(missing)};"
                            f" columns are: {names(_visible(frame))}")
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
        dims = check_dimensions(dimensions, list(pd.unique(frame["dimension"])), name)
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
        f"{name}: missing required column {names(missing)} (expected {form}; found: "
        f"{names(_visible(frame))}). Map other names with columns={{'your_name': "
        f"'{missing[0]}'}}{hint}"
    )


def check_dimensions(asked: Sequence[str], present: Sequence[str], name: str) -> list[str]:
    """Return the asked dimensions, or raise naming the unknown ones and those present."""
    unknown = [d for d in asked if d not in present]
    if unknown:
        raise DataError(f"{name}: unknown dimension {names(unknown)}; the data has: "
                        f"{names(present)}")
    return list(asked)


# --- validation ----------------------------------------------------------------------------

def check_ids(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Require non-empty rater, item and dimension ids; return them as strings."""
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


def check_ratings(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Require whole-number ratings; return the frame with an integer rating column."""
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


def drop_exact_duplicates(frame: pd.DataFrame, name: str, report: list[str]) -> pd.DataFrame:
    """Drop rows repeated exactly, with a warning and a line in ``report``."""
    dup = frame.drop(columns=ROW).duplicated(keep="first")
    if dup.any():
        msg = f"dropped {int(dup.sum())} exact duplicate row(s): {_rows(frame, dup)}"
        report.append(msg)
        warnings.warn(f"{name}: {msg}", DisagreeWarning, stacklevel=3)
        frame = frame.loc[~dup].reset_index(drop=True)
    return frame


def check_conflicting(frame: pd.DataFrame, name: str) -> None:
    """Raise when one rater rated one item on one dimension twice differently."""
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


def check_scale(frame: pd.DataFrame, scale: int | Mapping[str, int] | None,
                name: str) -> dict[str, int]:
    """Return the number of categories per dimension, declared or inferred, checked."""
    dims = list(pd.unique(frame["dimension"]))
    if isinstance(scale, Mapping):
        unknown = [d for d in scale if d not in dims]
        if unknown:
            raise DataError(f"{name}: scale given for unknown dimension {names(unknown)}; the "
                            f"data has: {names(dims)}")
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


def split_attributes(frame: pd.DataFrame, declared_rater: set[str], declared_item: set[str],
                     name: str, report: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the other columns into rater and item attribute tables, checked."""
    both = declared_rater & declared_item
    if both:
        raise DataError(f"columns {names(sorted(both))} are declared both rater and item "
                        f"attributes")
    others = [c for c in frame.columns if c not in REQUIRED and c != ROW]
    unknown = (declared_rater | declared_item) - set(others)
    if unknown:
        raise DataError(f"{name}: declared attribute column {names(sorted(unknown))} is not in "
                        f"the data; columns are: {names(_visible(frame))}")
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
                      for v, r in zip(firsts[col], firsts[ROW], strict=True))
    return f"{key} {unit!r}: {cells}"


# --- message helpers -----------------------------------------------------------------------

def _py(value: object) -> object:
    """Turn numpy scalars into Python ones so that messages read ``3.5``, not ``np.float64``."""
    return value.item() if isinstance(value, np.generic) else value


def _visible(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in frame.columns if c != ROW]


def names(values: Iterable[object]) -> str:
    """Format names for a message: the first few, then a count of the rest."""
    values = [str(v) for v in values]
    shown = ", ".join(repr(v) if " " in v or v == "" else v for v in values[:_SHOW])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _SHOW else "")


def _rows(frame: pd.DataFrame, mask: pd.Series, values: pd.Series | None = None) -> str:
    """Describe the rows selected by ``mask``: 'row 3 ('x'), row 9 ('y'), ... (n rows)'."""
    idx = np.flatnonzero(mask.to_numpy())
    parts = []
    for i in idx[:_SHOW]:
        cell = f"row {frame[ROW].iloc[i]}"
        if values is not None:
            cell += f" ({_py(values.iloc[i])!r})"
        parts.append(cell)
    more = f", ... ({len(idx)} rows in all)" if len(idx) > _SHOW else ""
    return ", ".join(parts) + more
