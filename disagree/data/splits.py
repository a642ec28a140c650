"""The one prompt split of the toolkit: train / validation / test by prompt.

Every stage that holds data out (the preference pairs, the rating-panel scorer, the
evaluation) cuts the prompts with :func:`split_prompts`, so that with the same fractions and
seed the same prompts are held out everywhere, and no prompt's responses straddle two splits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from disagree.errors import DataError

SPLITS = ("train", "validation", "test")
#: Default fractions of prompts in train, validation and test.
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def check_fractions(split: Sequence[float] | None) -> tuple[float, float, float]:
    """Return three non-negative fractions summing to 1 (default :data:`DEFAULT_FRACTIONS`).

    Raises
    ------
    DataError
        For anything but three finite numbers >= 0 that sum to 1 (within 1e-6).
    """
    if split is None:
        return DEFAULT_FRACTIONS
    try:
        values = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        raise DataError(f"split={split!r}: expected three fractions (train, validation, "
                        "test) that sum to 1") from None
    if (len(values) != 3 or not all(np.isfinite(values)) or min(values) < 0
            or abs(sum(values) - 1) > 1e-6):
        raise DataError(f"split={split!r}: expected three fractions (train, validation, "
                        "test) that sum to 1")
    return values  # type: ignore[return-value]


def split_prompts(prompt_ids: Iterable[object], fractions: Sequence[float] | None = None,
                  seed: int = 0) -> dict[str, str]:
    """Assign every prompt to ``train``, ``validation`` or ``test``.

    The sorted unique prompt ids (as strings) are shuffled with ``seed`` and cut at the
    cumulative fractions, rounded to whole prompts; the last split takes the remainder.

    Parameters
    ----------
    prompt_ids : iterable
        Prompt ids, repeats allowed (e.g. one per response).
    fractions : sequence of 3 floats, optional
        Train, validation and test shares of the prompts (default 0.8, 0.1, 0.1).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    dict
        Prompt id (str) -> split name.
    """
    fractions = check_fractions(fractions)
    ids = np.array(sorted({str(p) for p in prompt_ids}), dtype=object)
    shuffled = ids[np.random.default_rng(seed).permutation(len(ids))]
    bounds = np.round(np.cumsum(fractions) * len(ids)).astype(int)
    bounds[-1] = len(ids)
    names = np.repeat(np.array(SPLITS, dtype=object), np.diff(np.r_[0, bounds]))
    return dict(zip(shuffled, names, strict=True))
