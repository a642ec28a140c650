"""Held-out metrics, soft-label calibration and item splits of RatingPanelScorer; numpy, pandas."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from disagree.data.ratings import RatingTable
from disagree.errors import TrainError
from disagree.train._scorer_data import (
    check_attributes,
    item_texts,
    join_columns,
    rater_attributes,
    select_items,
)

if TYPE_CHECKING:
    from disagree.train.scorer import RatingPanelScorer


def split_items(table: RatingTable, test_fraction: float = 0.2, seed: int = 0,
                by: str | None = "prompt_id") -> tuple[list[str], list[str]]:
    """Split the item ids into training and test sets, keeping groups together.

    Parameters
    ----------
    table : RatingTable
        The items to split.
    test_fraction : float
        Share of the groups (prompts) held out, rounded, at least 1 and at most all but one.
    seed : int
        Seed of the random choice of held-out groups.
    by : str or None
        Item column whose groups stay on one side (responses to one prompt must not leak
        across the split). With the default ``"prompt_id"`` and items that have no such
        column, or with ``None``, items are split one by one.

    Returns
    -------
    (list of str, list of str)
        Training and test item ids, each in the table's item order.

    Raises
    ------
    TrainError
        For a fraction outside (0, 1), fewer than two groups, or an unknown ``by`` column.
    """
    if not 0 < test_fraction < 1:
        raise TrainError(f"test_fraction={test_fraction!r}: expected a number in (0, 1)")
    items = table.items
    if by is not None and by not in items.columns:
        if by != "prompt_id":
            raise TrainError(f"unknown item column {by!r} for the split; item columns are: "
                             f"{', '.join(map(str, items.columns)) or '(none)'}")
        by = None
    groups = items.index.to_numpy() if by is None else items[by].astype(str).to_numpy()
    unique = np.array(sorted(pd.unique(groups)))
    if len(unique) < 2:
        raise TrainError(f"cannot split {len(unique)} group(s) of items into train and test")
    n_test = min(max(1, round(test_fraction * len(unique))), len(unique) - 1)
    test_groups = set(np.random.default_rng(seed).permutation(unique)[:n_test])
    is_test = np.array([g in test_groups for g in groups])
    ids = [str(i) for i in items.index]
    return ([i for i, t in zip(ids, is_test, strict=True) if not t],
            [i for i, t in zip(ids, is_test, strict=True) if t])


def evaluate_rows(scorer: RatingPanelScorer, features: np.ndarray, design: np.ndarray,
                  rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                  ) -> dict[str, Any]:
    """Accuracy, chance accuracy, log loss and MAE of rows (item, rater, 0-based rating).

    Parameters
    ----------
    scorer : RatingPanelScorer
        A scorer with parameters (``fit`` calls this for its training metrics).
    features : numpy.ndarray
        Encoded item texts, the scorer's active columns, one row per item.
    design : numpy.ndarray
        One-hot rater attribute rows (as from the scorer's ``_design``), one row per rater.
    rows : dict of str to (array, array, array)
        Per dimension: row in ``features``, row in ``design`` and rating minus 1 of each
        rating.

    Returns
    -------
    dict
        As :func:`evaluate_scorer`.
    """
    per_dim, sums = {}, np.zeros(5)
    for d, (item, rater, y) in rows.items():
        p = scorer.params_[d]
        probs = scorer._category_probs((features @ p["w"])[item] + (design @ p["a"])[rater], d)
        k = np.arange(1, probs.shape[1] + 1)
        ll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-300, None))
        stats = np.array([len(y), np.sum(probs.argmax(axis=1) == y),
                          np.sum(y + 1 == scorer.majority_[d]), ll.sum(),
                          np.abs(probs @ k - (y + 1)).sum()])
        sums += stats
        per_dim[d] = _metric_dict(stats)
    return {**_metric_dict(sums), "dimensions": per_dim}


def evaluate_scorer(scorer: RatingPanelScorer, table: RatingTable,
                    items: Iterable[str]) -> dict[str, Any]:
    """Held-out metrics on the ratings of ``items``, per dimension and overall.

    Each rating is predicted for the rater's own attribute cell (levels the scorer never
    saw count as the reference level).

    Parameters
    ----------
    scorer : RatingPanelScorer
        A fitted scorer.
    table : RatingTable
        Ratings, raters and items (the texts).
    items : iterable of str
        Item ids to evaluate on, e.g. the second value of :func:`split_items`.

    Returns
    -------
    dict
        ``n_ratings``, ``accuracy`` (modal predicted category equals the rating),
        ``chance_accuracy`` (always predicting the dimension's most frequent training
        category), ``log_loss`` (mean negative log-probability of the rating) and
        ``mean_abs_error`` (mean ``|E[Y] - rating|``), pooled over the dimensions; and
        ``dimensions``: the same per dimension. Ratings on dimensions the scorer does not
        know are ignored.

    Raises
    ------
    TrainError
        For unknown items, a table without the scorer's attributes or text columns, or no
        rating on the scorer's dimensions.
    """
    scorer._check_fitted()
    ratings = select_items(table, items)
    ratings = ratings[ratings["dimension"].isin(scorer.dimensions_)]
    if ratings.empty:
        raise TrainError("no ratings of the given items on the scorer's dimensions "
                         f"({', '.join(scorer.dimensions_)})")
    check_attributes(scorer.attributes_, table)
    raters = rater_attributes(table, ratings["rater_id"].unique(), scorer.attributes_)
    item_ids = list(pd.unique(ratings["item_id"]))
    features = scorer._features(item_texts(table, item_ids, scorer.text_columns_))
    item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
    rater_pos = pd.Series(np.arange(len(raters)), index=raters.index)
    rows = {}
    for d in scorer.dimensions_:
        sub = ratings[ratings["dimension"] == d]
        if len(sub):
            rows[d] = (item_pos[sub["item_id"]].to_numpy(),
                       rater_pos[sub["rater_id"]].to_numpy(),
                       sub["rating"].to_numpy().astype(np.int64) - 1)
    return evaluate_rows(scorer, features, scorer._design(raters), rows)


def calibrate_scorer(scorer: RatingPanelScorer, soft_labels_frame: pd.DataFrame,
                     table: RatingTable | None = None) -> pd.DataFrame:
    """Compare the scorer with Bayesian soft labels of the same units on the same items.

    Parameters
    ----------
    scorer : RatingPanelScorer
        A fitted scorer.
    soft_labels_frame : DataFrame
        From :func:`disagree.labels.soft_labels` at ``level="population"`` (rows with
        ``population == "sample"``, compared with ``unit=None``) or ``level="group"``
        (compared with the unit ``{column: value}`` of its group columns).
    table : RatingTable, optional
        Source of the items' texts. Without it the frame itself must carry the text
        columns.

    Returns
    -------
    DataFrame
        One row per dimension and unit, in order of first appearance:

        ``dimension`` and the frame's unit columns (``population`` or the group columns)
            The unit.
        ``unit``
            The unit as text (``"population"`` or ``"politics=conservative"``).
        ``n_items``
            Number of items compared.
        ``tv_distance``
            Mean over items of the total-variation distance ``0.5 * sum_k |p_k - q_k|``
            between the scorer's ``p`` and the soft label's ``q`` (0: identical, 1:
            disjoint).
        ``mean_abs_diff``
            Mean over items of ``|E_scorer[Y] - mean|`` (rating points).
        ``corr``
            Pearson correlation across items of the two expected ratings (NaN with fewer
            than 2 items or a constant side).
        ``scorer_mean``, ``label_mean``
            Average expected rating over the items, scorer and soft label.

    Raises
    ------
    TrainError
        For rater-level or target-population labels, unknown dimensions, attributes or
        levels, a scale that differs from the scorer's, or items without texts.
    """
    scorer._check_fitted()
    frame = soft_labels_frame
    missing = [c for c in ("item_id", "dimension", "mean") if c not in frame.columns]
    if missing:
        raise TrainError(f"not a soft-label frame: missing column(s) {', '.join(missing)}")
    prob_cols = [c for c in frame.columns if c.startswith("p_") and c[2:].isdigit()]
    text_cols = [c for c in scorer.text_columns_ if c in frame.columns]
    unit_cols = [c for c in frame.columns if c not in
                 {"item_id", "dimension", "mean", "sd", *prob_cols, *text_cols}]
    if "rater_id" in unit_cols:
        raise TrainError("rater-level soft labels cannot be compared: the scorer has no "
                         "rater effects; use level='population' or level='group'")
    if "population" in unit_cols:
        other = sorted(set(frame["population"].astype(str)) - {"sample"})
        if other:
            raise TrainError(f"population {other[0]!r} cannot be compared: the scorer "
                             "predicts the training sample's mix ('sample') only")
    item_ids = list(pd.unique(frame["item_id"].astype(str)))
    if table is not None:
        texts = item_texts(table, item_ids, scorer.text_columns_)
    elif len(text_cols) == len(scorer.text_columns_):
        first = frame.assign(item_id=frame["item_id"].astype(str)) \
            .drop_duplicates("item_id").set_index("item_id")
        texts = join_columns(first.loc[item_ids], scorer.text_columns_)
    else:
        raise TrainError("calibration needs the items' texts: pass the table, or a frame "
                         f"with the text column(s) {', '.join(scorer.text_columns_)}")
    features = scorer._features(texts)
    item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
    out = []
    for key, grp in frame.groupby(["dimension", *unit_cols], sort=False, dropna=False):
        dim, values = key[0], dict(zip(unit_cols, key[1:], strict=True))
        scorer._check_dimension(dim)
        k = scorer.scales_[dim]
        if len(prob_cols) != k:
            raise TrainError(f"dimension {dim!r}: the frame has {len(prob_cols)} "
                             f"categories (p_1..p_{len(prob_cols)}), the scorer {k}")
        unit = None if "population" in values else {a: str(v) for a, v in values.items()}
        pos = item_pos[grp["item_id"].astype(str)].to_numpy()
        pred = scorer._predict(features[pos], dim, unit)
        label = grp[[f"p_{j}" for j in range(1, k + 1)]].to_numpy(dtype=np.float64)
        e_pred, e_label = pred @ np.arange(1, k + 1), grp["mean"].to_numpy(dtype=np.float64)
        corr = np.nan
        if len(pos) > 1 and np.std(e_pred) > 0 and np.std(e_label) > 0:
            corr = float(np.corrcoef(e_pred, e_label)[0, 1])
        name = "population" if unit is None else \
            ", ".join(f"{a}={v}" for a, v in unit.items())
        out.append({"dimension": dim, **values, "unit": name, "n_items": len(pos),
                    "tv_distance": float(np.mean(0.5 * np.abs(pred - label).sum(axis=1))),
                    "mean_abs_diff": float(np.mean(np.abs(e_pred - e_label))),
                    "corr": corr, "scorer_mean": float(e_pred.mean()),
                    "label_mean": float(e_label.mean())})
    return pd.DataFrame(out)


def _metric_dict(stats: np.ndarray) -> dict[str, Any]:
    """Metrics from summed (n, correct, chance-correct, log loss, abs error)."""
    n = stats[0]
    return {"n_ratings": int(n), "accuracy": float(stats[1] / n),
            "chance_accuracy": float(stats[2] / n), "log_loss": float(stats[3] / n),
            "mean_abs_error": float(stats[4] / n)}


__all__ = ["calibrate_scorer", "evaluate_rows", "evaluate_scorer", "split_items"]
