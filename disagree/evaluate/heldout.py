"""The held-out prompts of an evaluation: their candidate responses and response pairs.

The prompts are cut with the toolkit's one prompt split
(:func:`disagree.data.splits.split_prompts`), the same fractions and seed as the pairs a model
was trained on, so no evaluated prompt was trained on. By default the evaluation uses the
``validation`` and ``test`` prompts together: training in disagree does not select
checkpoints on the validation pairs (it only logs their metrics), and the study-sized survey
has 60 prompts, so ``test`` alone would be six.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import pandas as pd

from disagree.data import RatingTable, load_ratings, save_ratings
from disagree.data.simulate import load_default_survey
from disagree.data.splits import SPLITS, split_prompts
from disagree.errors import DataError, EvaluateError

#: Splits evaluated by default.
HELD_OUT = ("validation", "test")
#: Columns of :func:`held_out_items`.
ITEM_COLUMNS = ["item_id", "prompt_id", "prompt", "response"]


def held_out_items(table: RatingTable, split: Sequence[float] | None = (0.8, 0.1, 0.1),
                   seed: int = 0, splits: Sequence[str] = HELD_OUT) -> pd.DataFrame:
    """Return the candidate responses of the held-out prompts.

    Parameters
    ----------
    table : RatingTable
        Ratings whose items have ``prompt_id``, ``prompt`` and ``response``.
    split : (train, validation, test) fractions
        As given to :func:`disagree.pairs.make_pairs` for the trained models.
    seed : int
        Seed of the split (the pairs' seed).
    splits : sequence of str
        Which splits count as held out.

    Returns
    -------
    DataFrame
        ``item_id, prompt_id, prompt, response``, sorted by prompt then item.

    Raises
    ------
    DataError
        Items without the text columns, an unknown split name, or no held-out prompt.
    """
    missing = [c for c in ITEM_COLUMNS[1:] if c not in table.items.columns]
    if missing:
        raise DataError(f"evaluation needs the item attributes prompt_id, prompt and "
                        f"response; {table.source} lacks {', '.join(missing)}")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise DataError(f"splits: unknown {unknown}; expected some of {list(SPLITS)}")
    items = table.items.reset_index()[ITEM_COLUMNS].copy()
    items["prompt_id"] = items["prompt_id"].astype(str)
    assignment = split_prompts(items["prompt_id"], split, seed)
    keep = items["prompt_id"].map(assignment).isin(list(splits))
    if not keep.any():
        raise DataError(f"no prompt of {table.source} falls in {list(splits)} with split "
                        f"{split} and seed {seed}")
    return items[keep].sort_values(["prompt_id", "item_id"]).reset_index(drop=True)


def response_pairs(items: pd.DataFrame) -> pd.DataFrame:
    """Every unordered pair of responses to the same prompt (``item_a`` before ``item_b``).

    Parameters
    ----------
    items : DataFrame
        As returned by :func:`held_out_items`.

    Returns
    -------
    DataFrame
        ``prompt_id, item_a, item_b``, in the order of ``items``.
    """
    rows = [(prompt, a, b) for prompt, group in items.groupby("prompt_id", sort=False)
            for a, b in combinations(group["item_id"], 2)]
    return pd.DataFrame(rows, columns=["prompt_id", "item_a", "item_b"])


def ratings_of_fit(ratings: str, fit_dir: Path, out: Path) -> tuple[RatingTable, str]:
    """Load ``ratings`` (``default``: the bundled survey) as the fit saw them.

    A fit of some of the ratings' dimensions (``disagree fit --dimensions``) gets those
    dimensions' ratings, written once to ``OUT/inputs/ratings-<hash>.parquet``: soft pairs
    need the fit's own ratings.

    Returns
    -------
    table : RatingTable
    ratings : str
        ``ratings`` itself, or the path of the written subset.

    Raises
    ------
    EvaluateError
        When the fit was made from other ratings.
    """
    table = load_default_survey() if ratings == "default" else load_ratings(ratings)
    meta = json.loads((fit_dir / "model.json").read_text())
    made_from = meta.get("data_hash", table.data_hash)
    if made_from == table.data_hash:
        return table, ratings
    dims = [d for d in meta.get("spec", {}).get("dimensions", []) if d in table.dimensions]
    table = table.select(dims) if dims else table
    if made_from != table.data_hash:
        raise EvaluateError(f"fit: {fit_dir} was made from other ratings than {ratings} "
                            f"(data hash {str(made_from)[:12]})")
    path = out.absolute() / "inputs" / f"ratings-{made_from[:12]}.parquet"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_ratings(table, path)
    return table, str(path)
