"""Rater-level soft labels streamed to a Parquet file, a row group per block of raters.

Depends on :mod:`disagree.model` (the fit), :mod:`disagree.labels.posterior`,
:mod:`disagree.labels.kernels` (the running moments) and :mod:`disagree.labels.soft` (the
columns). Every rater on every item is raters x items x dimensions rows (10,950 x 3,000 x 5 =
164 million at ten times the study's size), so :func:`write_rater_labels` never builds that
table: it computes the labels of a block of raters, writes them as one Parquet row group and
forgets them, and by default labels only the items each rater rated (``items="rated"``), or
every response to the prompts the rater saw (``items="prompts"``, what preference pairs of
that rater need when raters saw only some of a prompt's responses). The numbers equal those
of :func:`disagree.labels.soft_labels` with ``unit="rater"`` to rounding (tested).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import expit
from tqdm.auto import tqdm

from disagree._io import write_atomic
from disagree.data.ratings import RatingTable
from disagree.errors import ModelError
from disagree.labels.kernels import Moments
from disagree.labels.posterior import Posterior, as_list
from disagree.labels.soft import check_arguments, prob_columns
from disagree.model.fitting import Fit, as_fit
from disagree.model.sampling import require_rater_effects

#: Which items each rater gets labels on.
ITEM_SCOPES = ("rated", "prompts", "all")
#: float64 values in the largest temporary array of the streaming kernel (64 MB).
STREAM_CHUNK = 8_000_000


def write_rater_labels(fit: Fit | str | os.PathLike[str], path: str | os.PathLike[str],
                       items: str = "rated",
                       prompts: RatingTable | pd.Series | None = None,
                       dimensions: str | Sequence[str] | None = None,
                       draws: int | None = None, raters_per_group: int = 1024,
                       chunk_size: int = STREAM_CHUNK, progress: bool = False) -> Path:
    """Write rater-level soft labels to Parquet block by block, in bounded memory.

    Parameters
    ----------
    fit : Fit or path
        A fit with rater effects (not ``keep_rater_effects=False``), or its directory.
    path : path
        Output ``.parquet``/``.pq`` file, written atomically (a temporary file renamed at
        the end: an interrupted run leaves no file that looks complete).
    items : {"rated", "prompts", "all"}
        ``rated`` (default): the items the rater rated, on any dimension of the fit;
        ``prompts``: every item of the prompts of those items (needs ``prompts``);
        ``all``: every item of the fit (raters x items rows; large).
    prompts : RatingTable or Series, optional
        For ``items="prompts"``: the ratings (items with a ``prompt_id`` attribute), or a
        Series of prompt ids indexed by item id.
    dimensions : str or sequence of str, optional
        Default every dimension of the fit.
    draws : int, optional
        Use this many evenly spaced draws (as :func:`~disagree.labels.soft_labels`).
    raters_per_group : int
        Raters per Parquet row group (memory holds one group's rows at a time).
    chunk_size : int
        About how many float64 values the largest temporary array holds.
    progress : bool
        Show a progress bar over raters.

    Returns
    -------
    Path
        ``path``. Columns ``item_id, dimension, rater_id, p_1..p_K, mean, sd`` as
        :func:`~disagree.labels.soft_labels`; rows by rater (fit order), item (fit order),
        dimension (fit order).

    Raises
    ------
    ModelError
        A fit without rater effects, an unknown ``items`` scope or dimension, a suffix other
        than Parquet, ``items="prompts"`` without prompts (or an item without one), or a
        non-positive ``draws``, ``raters_per_group`` or ``chunk_size``.
    """
    if Path(path).suffix.lower() not in (".parquet", ".pq"):
        raise ModelError(f"cannot stream rater labels to {path}: use a .parquet file")
    if items not in ITEM_SCOPES:
        raise ModelError(f"items={items!r}; choose one of {', '.join(ITEM_SCOPES)}")
    check_arguments("rater", None, None, draws, 1, chunk_size)
    if not isinstance(raters_per_group, int | np.integer) or raters_per_group < 1:
        raise ModelError(f"raters_per_group={raters_per_group!r}: expected a positive integer")
    fit = as_fit(fit)
    require_rater_effects(fit.idata.posterior, "rater-level soft labels")
    post = Posterior.extract(fit, as_list(dimensions), None, draws)
    rows = rater_items(fit, items, prompts)
    schema = _schema(post.scale)

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema) as writer, \
                tqdm(total=len(post.rater_ids), disable=not progress,
                     desc="soft labels (rater)", unit="rater") as bar:
            for r0 in range(0, len(post.rater_ids), raters_per_group):
                block = rows[(rows[:, 0] >= r0) & (rows[:, 0] < r0 + raters_per_group)]
                frame = _block_frame(post, block, chunk_size)
                writer.write_table(pa.Table.from_pandas(frame, schema, preserve_index=False))
                bar.update(min(raters_per_group, len(post.rater_ids) - r0))

    return write_atomic(path, write)


def rater_items(fit: Fit, items: str, prompts: RatingTable | pd.Series | None = None,
                ) -> np.ndarray:
    """Return the (rater, item) positions to label, by rater then item, shape (N, 2).

    See :func:`write_rater_labels` for ``items`` and ``prompts``.
    """
    cd = fit.idata.constant_data
    n_raters = cd.sizes["rater"]
    item_ids = pd.Index([str(j) for j in fit.idata.posterior.coords["item"].values])
    if items == "all":
        return np.stack(np.meshgrid(np.arange(n_raters), np.arange(len(item_ids)),
                                    indexing="ij"), axis=-1).reshape(-1, 2)
    if "obs_rater" not in cd:
        raise ModelError("the fit records no observations (constant_data obs_rater/obs_item); "
                         "use items='all'")
    seen = np.unique(np.column_stack([cd["obs_rater"].values, cd["obs_item"].values]), axis=0)
    if items == "rated":
        return seen
    if prompts is None:
        raise ModelError("items='prompts' needs the prompts: pass the ratings "
                         "(prompts=table) or a Series of prompt ids indexed by item id")
    prompt = (prompts.items["prompt_id"] if isinstance(prompts, RatingTable) and
              "prompt_id" in prompts.items.columns else prompts)
    if not isinstance(prompt, pd.Series):
        raise ModelError("items='prompts': the ratings' items have no prompt_id attribute")
    prompt = prompt.set_axis(prompt.index.astype(str)).astype(str)
    missing = item_ids.difference(prompt.index)
    if len(missing):
        raise ModelError(f"items='prompts': no prompt_id for item(s) "
                         f"{', '.join(map(repr, missing[:5]))} of the fit")
    codes = pd.factorize(prompt.reindex(item_ids).to_numpy())[0]  # prompt of each item
    by_prompt = pd.DataFrame({"prompt": codes, "item": np.arange(len(item_ids))})
    wanted = pd.DataFrame({"rater": seen[:, 0], "prompt": codes[seen[:, 1]]}).drop_duplicates()
    pairs = wanted.merge(by_prompt, on="prompt")[["rater", "item"]].to_numpy()
    return np.unique(pairs, axis=0)


def row_moments(cutpoints: np.ndarray, eta: np.ndarray,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior moments of ordinal predictions given per-draw linear predictors.

    Parameters
    ----------
    cutpoints : array (S, K-1)
    eta : array (S, N)

    Returns
    -------
    probs : array (N, K)
    mean, sd : arrays (N,)
        As :meth:`disagree.labels.kernels.Moments.result`.
    """
    acc = Moments((eta.shape[1],), cutpoints.shape[1] + 1)
    acc.add(expit(cutpoints[:, :, None] - eta[:, None, :]))
    return acc.result()


def _block_frame(post: Posterior, block: np.ndarray, chunk_size: int) -> pd.DataFrame:
    """Labels of the (rater, item) rows of ``block`` on every dimension, as a frame."""
    n_dims, (n_draws, n_cuts) = len(post.dimensions), post.cutpoints.shape[1:]
    raters, item_pos = block[:, 0], block[:, 1]
    codes = {f: pd.Index(post.levels[f]).get_indexer(post.raters[f].astype(str))
             for f in post.deviations[0]}
    step = max(1, chunk_size // (n_draws * n_cuts))
    probs = np.empty((len(block), n_dims, n_cuts + 1))
    mean, sd = np.empty((len(block), n_dims)), np.empty((len(block), n_dims))
    for d in range(n_dims):
        for lo in range(0, len(block), step):
            r, j = raters[lo:lo + step], item_pos[lo:lo + step]
            eta = post.beta[d] @ post.design[r].T + post.rater_effects[d][:, r] \
                + post.item_effects[d][:, j]
            for f, dev in post.deviations[d].items():  # the rater's own levels' deviations
                eta += dev[:, j, codes[f][r]]
            probs[lo:lo + step, d], mean[lo:lo + step, d], sd[lo:lo + step, d] = \
                row_moments(post.cutpoints[d], eta)
    columns = {
        "item_id": np.repeat(np.asarray(post.item_ids, dtype=object)[item_pos], n_dims),
        "dimension": np.tile(np.asarray(post.dimensions, dtype=object), len(block)),
        "rater_id": np.repeat(np.asarray(post.rater_ids, dtype=object)[raters], n_dims),
    }
    flat = probs.reshape(-1, n_cuts + 1)
    columns |= {c: flat[:, k] for k, c in enumerate(prob_columns(n_cuts + 1))}
    return pd.DataFrame(columns | {"mean": mean.ravel(), "sd": sd.ravel()})


def _schema(scale: int) -> pa.Schema:
    names = ["item_id", "dimension", "rater_id", *prob_columns(scale), "mean", "sd"]
    return pa.schema([(n, pa.string() if n.endswith(("_id", "dimension")) else pa.float64())
                      for n in names])
