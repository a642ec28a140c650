"""How good a rating panel is: held-out metrics and calibration against Bayesian soft labels.

Both work on a :class:`~disagree.panel.state.PanelState` through its public methods only; the
held-out items are best taken from :func:`disagree.panel.data.split_items` (the prompts the
pairs hold out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from disagree.data.groups import format_group
from disagree.data.ratings import RatingTable
from disagree.errors import ModelError, PanelError
from disagree.panel.data import check_factors, item_texts, join_columns, rating_rows, select_items
from disagree.panel.state import PanelState


def evaluate_rows(state: PanelState, features: np.ndarray, design: np.ndarray,
                  rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                  ) -> dict[str, Any]:
    """Accuracy, chance accuracy, log loss and MAE of rows (item, rater, 0-based rating).

    Parameters
    ----------
    state : PanelState
        A panel with parameters (fitting calls this for its training metrics).
    features : numpy.ndarray
        Encoded item texts, the panel's active columns, one row per item.
    design : numpy.ndarray
        Factor rows (from :meth:`PanelState.design`), one row per rater.
    rows : dict of str to (array, array, array)
        Per dimension: row in ``features``, row in ``design`` and rating minus 1 of each
        rating (as in :class:`~disagree.panel.data.RatingRows`).

    Returns
    -------
    dict
        As :func:`evaluate_panel`.
    """
    per_dim, sums = {}, np.zeros(5)
    for d, (item, rater, y) in rows.items():
        probs = state.probs(features, d, design, index=(item, rater))
        k = np.arange(1, probs.shape[1] + 1)
        ll = -np.log(np.clip(probs[np.arange(len(y)), y], 1e-300, None))
        stats = np.array([len(y), np.sum(probs.argmax(axis=1) == y),
                          np.sum(y + 1 == state.majority[d]), ll.sum(),
                          np.abs(probs @ k - (y + 1)).sum()])
        sums += stats
        per_dim[d] = _metric_dict(stats)
    return {**_metric_dict(sums), "dimensions": per_dim}


def evaluate_panel(state: PanelState, table: RatingTable,
                   items: Iterable[str]) -> dict[str, Any]:
    """Held-out metrics on the ratings of ``items``, per dimension and overall.

    Each rating is predicted for the rater's own factor cell (levels the panel never saw
    count as the reference level).

    Parameters
    ----------
    state : PanelState
        A fitted panel.
    table : RatingTable
        Ratings, raters and items (the texts).
    items : iterable of str
        Item ids to evaluate on, e.g. the second value of
        :func:`~disagree.panel.data.split_items`.

    Returns
    -------
    dict
        ``n_ratings``, ``accuracy`` (modal predicted category equals the rating),
        ``chance_accuracy`` (always predicting the dimension's most frequent training
        category), ``log_loss`` (mean negative log-probability of the rating) and
        ``mean_abs_error`` (mean ``|E[Y] - rating|``), pooled over the dimensions; and
        ``dimensions``: the same per dimension. Ratings on dimensions the panel does not
        know are ignored.

    Raises
    ------
    PanelError
        For unknown items, a table without the panel's factors or text columns, or no
        rating on the panel's dimensions.
    """
    ratings = select_items(table, items)
    ratings = ratings[ratings["dimension"].isin(state.dimensions)]
    if ratings.empty:
        raise PanelError("no ratings of the given items on the scorer's dimensions "
                         f"({', '.join(state.dimensions)})")
    check_factors(state.factors, table)
    data = rating_rows(table, ratings, state.factors, state.dimensions)
    features = state.features(item_texts(table, data.item_ids, state.text_columns))
    return evaluate_rows(state, features, state.design(data.raters), data.rows)


def calibrate_panel(state: PanelState, soft_labels_frame: pd.DataFrame,
                    table: RatingTable | None = None) -> pd.DataFrame:
    """Compare the panel with Bayesian soft labels of the same groups on the same items.

    Parameters
    ----------
    state : PanelState
        A fitted panel.
    soft_labels_frame : DataFrame
        From :func:`disagree.labels.soft_labels` with ``unit="population"`` (rows with
        ``population == "sample"``, compared with the whole training sample) or
        ``unit="group"`` (compared with the group ``{column: value}`` of its factor
        columns).
    table : RatingTable, optional
        Source of the items' texts. Without it the frame itself must carry the text
        columns.

    Returns
    -------
    DataFrame
        One row per dimension and group, in order of first appearance:

        ``dimension`` and the frame's unit columns (``population`` or the factor columns)
            The group.
        ``group``
            The group as text (``"population"`` or ``"politics=conservative"``, as from
            :func:`disagree.data.groups.format_group`).
        ``n_items``
            Number of items compared.
        ``tv_distance``
            Mean over items of the total-variation distance ``0.5 * sum_k |p_k - q_k|``
            between the panel's ``p`` and the soft label's ``q`` (0: identical, 1:
            disjoint).
        ``mean_abs_diff``
            Mean over items of ``|E_scorer[Y] - mean|`` (rating points).
        ``corr``
            Pearson correlation across items of the two expected ratings (NaN with fewer
            than 2 items or a constant side).
        ``scorer_mean``, ``label_mean``
            Average expected rating over the items, panel and soft label.

    Raises
    ------
    PanelError
        For rater or target-population labels, unknown dimensions, factors or levels, a
        scale that differs from the panel's, or items without texts.
    """
    from disagree.labels import KEY_COLUMNS, SUMMARY_COLUMNS, check_soft_labels, prob_columns

    frame = soft_labels_frame
    try:
        check_soft_labels(frame, "calibration")
    except ModelError as err:
        raise PanelError(str(err)) from None
    prob_cols = [c for c in frame.columns if c.startswith("p_") and c[2:].isdigit()]
    text_cols = [c for c in state.text_columns if c in frame.columns]
    unit_cols = [c for c in frame.columns if c not in
                 {*KEY_COLUMNS, *SUMMARY_COLUMNS, *prob_cols, *text_cols}]
    if "rater_id" in unit_cols:
        raise PanelError("rater-level soft labels cannot be compared: the scorer has no "
                         "rater effects; use unit='population' or unit='group'")
    if "population" in unit_cols:
        other = sorted(set(frame["population"].astype(str)) - {"sample"})
        if other:
            raise PanelError(f"population {other[0]!r} cannot be compared: the scorer "
                             "predicts the training sample's mix ('sample') only")
    item_ids = list(pd.unique(frame["item_id"].astype(str)))
    if table is not None:
        texts = item_texts(table, item_ids, state.text_columns)
    elif len(text_cols) == len(state.text_columns):
        first = frame.assign(item_id=frame["item_id"].astype(str)) \
            .drop_duplicates("item_id").set_index("item_id")
        texts = join_columns(first.loc[item_ids], state.text_columns)
    else:
        raise PanelError("calibration needs the items' texts: pass the table, or a frame "
                         f"with the text column(s) {', '.join(state.text_columns)}")
    features = state.features(texts)
    item_pos = pd.Series(np.arange(len(item_ids)), index=item_ids)
    out = []
    for key, grp in frame.groupby(["dimension", *unit_cols], sort=False, dropna=False):
        dim, values = key[0], dict(zip(unit_cols, key[1:], strict=True))
        state.check_dimension(dim)
        k = state.scales[dim]
        if len(prob_cols) != k:
            raise PanelError(f"dimension {dim!r}: the frame has {len(prob_cols)} "
                             f"categories (p_1..p_{len(prob_cols)}), the scorer {k}")
        group = None if "population" in values else {f: str(v) for f, v in values.items()}
        pos = item_pos[grp["item_id"].astype(str)].to_numpy()
        pred = state.predict(features[pos], dim, group)
        label = grp[prob_columns(k)].to_numpy(dtype=np.float64)
        e_pred, e_label = pred @ np.arange(1, k + 1), grp["mean"].to_numpy(dtype=np.float64)
        corr = np.nan
        if len(pos) > 1 and np.std(e_pred) > 0 and np.std(e_label) > 0:
            corr = float(np.corrcoef(e_pred, e_label)[0, 1])
        out.append({"dimension": dim, **values, "group": format_group(group),
                    "n_items": len(pos),
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


__all__ = ["calibrate_panel", "evaluate_panel", "evaluate_rows"]
