"""What the panel reads from a RatingTable: factors, texts, rating rows and the item split.

The rating rows (:class:`RatingRows`: each rating's item row, rater row and category) are built
here once, by :func:`rating_rows`, for fitting and for evaluation alike. The held-out items
come from the toolkit's one prompt split, :func:`disagree.data.splits.split_prompts`, so that
with the same fractions and seed the panel holds out exactly the prompts the pairs put in
``test``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.data.splits import SPLITS, check_fractions, split_prompts
from disagree.errors import DataError, PanelError

#: The level that stands for a missing factor value.
MISSING_LEVEL = "(missing)"


def check_factors(factors: Sequence[str] | None, table: RatingTable) -> list[str]:
    """Return the factors to use (default: every rater attribute), checked against the table.

    Raises
    ------
    PanelError
        For a name that is not a rater attribute of the table.
    """
    valid = [str(c) for c in table.raters.columns]
    if factors is None:
        return valid
    for f in factors:
        if f not in valid:
            raise PanelError(f"unknown factor {f!r}; rater attributes are: "
                             f"{', '.join(valid) or '(none)'}")
    return list(factors)


def resolve_text_columns(text_columns: Sequence[str] | None,
                         table: RatingTable) -> tuple[str, ...]:
    """Return the item columns that make the text (default prompt+response, text, response)."""
    cols = [str(c) for c in table.items.columns]
    if text_columns is None:
        for candidate in (("prompt", "response"), ("text",), ("response",)):
            if all(c in cols for c in candidate):
                return candidate
        raise PanelError("cannot find the item texts: the items have none of the columns "
                         "prompt+response, text or response; pass text_columns= (item "
                         f"columns are: {', '.join(cols) or '(none)'})")
    if not text_columns:
        raise PanelError("text_columns is empty; give at least one item column")
    for c in text_columns:
        if c not in cols:
            raise PanelError(f"unknown text column {c!r}; item columns are: "
                             f"{', '.join(cols) or '(none)'}")
    return tuple(text_columns)


def select_items(table: RatingTable, items: Iterable[str] | None) -> pd.DataFrame:
    """Return the ratings of ``items`` (all when None), checking the ids."""
    ratings = table.ratings
    if items is not None:
        wanted = pd.Index([str(i) for i in items]).unique()
        unknown = wanted.difference(table.items.index.astype(str))
        if len(unknown):
            shown = ", ".join(map(repr, unknown[:5])) + (" ..." if len(unknown) > 5 else "")
            raise PanelError(f"unknown item id(s) {shown}; the table has {len(table.items)} "
                             f"items, e.g. {', '.join(map(str, table.items.index[:3]))}")
        ratings = ratings[ratings["item_id"].isin(wanted)]
    if ratings.empty:
        raise PanelError("no ratings for the given items")
    return ratings


def rater_factors(table: RatingTable, rater_ids: Iterable[str],
                  factors: Sequence[str]) -> pd.DataFrame:
    """Factor values (as str, missing as :data:`MISSING_LEVEL`) of the raters, in table order."""
    raters = table.raters.loc[table.raters.index.isin(list(rater_ids)), list(factors)]
    return raters.apply(lambda col: col.astype(object).where(col.notna(), MISSING_LEVEL)
                        .astype(str)).astype(object)


def factor_levels(table: RatingTable, raters: pd.DataFrame,
                  factors: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Levels of each factor among ``raters`` (from :func:`rater_factors`), reference first.

    The ordering is :meth:`RatingTable.factor_levels`' (the most frequent level is the
    reference, ties broken alphabetically, the others sorted), computed over these raters
    only; a missing value is its own level, :data:`MISSING_LEVEL`.
    """
    own = dataclasses.replace(table, raters=raters)
    return {f: tuple(levels) for f, levels in own.factor_levels(list(factors)).items()}


def item_texts(table: RatingTable, item_ids: Sequence[str],
               text_columns: Sequence[str]) -> list[str]:
    """Return the text of each item: its text columns joined with a newline."""
    unknown = [i for i in item_ids if i not in table.items.index]
    if unknown:
        raise PanelError(f"item(s) {', '.join(map(repr, unknown[:5]))} are not in the table")
    missing = [c for c in text_columns if c not in table.items.columns]
    if missing:
        raise PanelError(f"the table's items have no column(s) {', '.join(missing)}; item "
                         f"columns are: {', '.join(map(str, table.items.columns))}")
    return join_columns(table.items.loc[list(item_ids)], text_columns)


def join_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Return each row's ``columns`` joined with a newline (missing values as empty text)."""
    parts = [frame[c].astype(object).where(frame[c].notna(), "").astype(str).tolist()
             for c in columns]
    return ["\n".join(row) for row in zip(*parts, strict=True)]


def join_texts(texts: Sequence[str | Sequence[str]] | str) -> list[str]:
    """Return the texts as a list of str, joining a sequence element (prompt, response)."""
    if isinstance(texts, str):
        return [texts]
    out = []
    for t in texts:
        if isinstance(t, str):
            out.append(t)
        elif isinstance(t, Sequence) and all(isinstance(s, str) for s in t):
            out.append("\n".join(t))
        else:
            raise PanelError(f"each text must be a str or a sequence of str (e.g. (prompt, "
                             f"response)); got {type(t).__name__}: {t!r:.60}")
    return out


@dataclasses.dataclass(frozen=True)
class RatingRows:
    """Ratings as rows into item texts and rater factors.

    Attributes
    ----------
    item_ids : list of str
        The rated items, in table order (row ``i`` of the encoded texts is ``item_ids[i]``).
    raters : DataFrame
        Factor values (str) of the raters, indexed by ``rater_id``, in table order.
    rows : dict of str to (array, array, array)
        Per dimension with ratings: the item row, the rater row and the rating minus 1
        (int64) of each rating, in the order of ``table.ratings``.
    """

    item_ids: list[str]
    raters: pd.DataFrame
    rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    @property
    def n_ratings(self) -> int:
        """Number of ratings over all dimensions."""
        return int(sum(len(y) for _, _, y in self.rows.values()))


def rating_rows(table: RatingTable, ratings: pd.DataFrame, factors: Sequence[str],
                dimensions: Sequence[str]) -> RatingRows:
    """Index ``ratings`` (rows of ``table.ratings``) by item, rater and dimension.

    Parameters
    ----------
    table : RatingTable
        The items and raters.
    ratings : DataFrame
        Ratings to index, e.g. from :func:`select_items`.
    factors : sequence of str
        Rater factors to keep (as from :func:`check_factors`).
    dimensions : sequence of str
        Dimensions to keep, in this order; those without a rating are left out.

    Returns
    -------
    RatingRows
    """
    ratings = ratings[ratings["dimension"].isin(list(dimensions))]
    raters = rater_factors(table, ratings["rater_id"].unique(), factors)
    rated = set(ratings["item_id"])
    item_ids = [str(i) for i in table.items.index if i in rated]
    item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
    rater_pos = pd.Series(np.arange(len(raters)), index=raters.index)
    rows = {}
    for d in dimensions:
        sub = ratings[ratings["dimension"] == d]
        if len(sub):
            rows[d] = (item_pos[sub["item_id"]].to_numpy(),
                       rater_pos[sub["rater_id"]].to_numpy(),
                       sub["rating"].to_numpy().astype(np.int64) - 1)
    return RatingRows(item_ids, raters, rows)


# --- the item split ----------------------------------------------------------------------

def item_splits(table: RatingTable, fractions: Sequence[float] | None = None, seed: int = 0,
                by: str | None = "prompt_id") -> pd.Series:
    """Return the split (``train``, ``validation`` or ``test``) of every item.

    The groups of items (their prompts) are assigned by
    :func:`disagree.data.splits.split_prompts` with the same ``fractions`` and ``seed``, the
    function :func:`disagree.pairs.make_pairs` splits its pairs with: the same prompts land
    in the same split in both.

    Parameters
    ----------
    table : RatingTable
        The items to split.
    fractions : sequence of 3 floats, optional
        Train, validation and test shares of the prompts (default 0.8, 0.1, 0.1).
    seed : int
        Seed of the split.
    by : str or None
        Item column whose groups stay on one side (responses to one prompt must not leak
        across the split). With the default ``"prompt_id"`` and items that have no such
        column, or with ``None``, every item is its own group.

    Returns
    -------
    Series
        Split name per item id (str), in the table's item order.

    Raises
    ------
    PanelError
        For bad fractions or an unknown ``by`` column.
    """
    try:
        fractions = check_fractions(fractions)
    except DataError as err:
        raise PanelError(str(err).replace("split=", "fractions=", 1)) from None
    items = table.items
    if by is not None and by not in items.columns:
        if by != "prompt_id":
            raise PanelError(f"unknown item column {by!r} for the split; item columns are: "
                             f"{', '.join(map(str, items.columns)) or '(none)'}")
        by = None
    groups = items.index.astype(str) if by is None else items[by].astype(str)
    assignment = split_prompts(groups, fractions, seed)
    return pd.Series([assignment[g] for g in groups], index=items.index.astype(str),
                     name="split", dtype=object)


def split_items(table: RatingTable, fractions: Sequence[float] | None = None, seed: int = 0,
                *, test_fraction: float | None = None,
                by: str | None = "prompt_id") -> tuple[list[str], list[str]]:
    """Split the item ids into training and test sets by prompt, as the pairs are split.

    The test items are exactly the items of the prompts that
    :func:`~disagree.data.splits.split_prompts` puts in ``test`` with the same fractions and
    seed (see :func:`item_splits`). The ``validation`` prompts are in *neither* list: they are
    the prompts the pairs keep for checking a run, and a panel trained on the first list has
    then seen no prompt that any later stage holds out; :func:`item_splits` gives them (e.g. to
    choose ``l2``).

    Parameters
    ----------
    table, fractions, seed, by
        As in :func:`item_splits`.
    test_fraction : float, optional
        Instead of ``fractions``: hold out this share of the prompts and train on the rest,
        i.e. ``fractions=(1 - test_fraction, 0, test_fraction)``.

    Returns
    -------
    (list of str, list of str)
        Training and test item ids, each in the table's item order.

    Raises
    ------
    PanelError
        For bad fractions, a ``test_fraction`` outside (0, 1) or given with ``fractions``,
        an unknown ``by`` column, or a split that leaves the training or the test set empty.
    """
    if test_fraction is not None:
        if fractions is not None:
            raise PanelError("give fractions or test_fraction, not both")
        if not 0 < test_fraction < 1:
            raise PanelError(f"test_fraction={test_fraction!r}: expected a number in (0, 1)")
        fractions = (1.0 - test_fraction, 0.0, float(test_fraction))
    split = item_splits(table, fractions, seed, by)
    train = split.index[split == SPLITS[0]].tolist()
    test = split.index[split == SPLITS[2]].tolist()
    if not train or not test:
        n = table.items[by].nunique() if by is not None and by in table.items else len(split)
        raise PanelError(f"cannot split {n} group(s) of items into train and test with "
                         f"fractions {tuple(check_fractions(fractions))}: "
                         f"{'the training' if not train else 'the test'} set is empty")
    return train, test


__all__ = ["MISSING_LEVEL", "RatingRows", "check_factors", "factor_levels", "item_splits",
           "item_texts", "join_columns", "join_texts", "rater_factors", "rating_rows",
           "resolve_text_columns", "select_items", "split_items"]
