"""GRPO's reward from the rating panel, and its prompts.

:class:`PanelReward` is a TRL reward function (``reward(prompts, completions, **kwargs)`` returning
one float per completion): the weighted sum, over dimensions, of the expected rating that a group
of raters (the whole sample, or a group such as ``{"politics": "conservative"}``) would give the
prompt followed by the completion, from a :class:`disagree.panel.RatingPanelScorer`.
``{"toxicity": -1.0}`` is minus the expected toxicity. A scorer fitted with group-by-text
weights (the default) ranks completions the way the group does, not only the population's way
shifted; its reward guard (on by default) keeps an empty or boilerplate completion from
earning more than a poor rated response (see :mod:`disagree.panel.guard`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from disagree.data.groups import parse_group
from disagree.data.ratings import RatingTable
from disagree.errors import TrainError, renamed


class PanelReward:
    """Reward = ``sum_d weights[d] * E[rating on d]`` for a group, from a rating-panel scorer.

    Parameters
    ----------
    scorer : RatingPanelScorer
        A fitted :class:`disagree.panel.RatingPanelScorer`.
    weights : mapping of str to float
        Weight of each dimension's expected rating (negative where lower is better).
    group : mapping of str to str, or str, optional
        Whose ratings: None or ``"population"`` for the whole sample, or a group of rater
        factors such as ``{"politics": "conservative"}`` (or ``"politics=conservative"``).
    guard : bool
        Apply the scorer's reward guard (passed to ``scorer.score``); each completion is
        scored as ``(prompt, completion)`` so that the guard measures the completion.
    unit : optional
        Deprecated name of ``group``.
    """

    __name__ = "panel"  # TRL logs rewards/panel/mean and rewards/panel/std

    def __init__(self, scorer: Any, weights: Mapping[str, float],
                 group: str | Mapping[str, str] | None = None, *, guard: bool = True,
                 unit: str | Mapping[str, str] | None = None) -> None:
        group = renamed(group, unit, "unit", "group")  # type: ignore[assignment]
        self.scorer = scorer
        self.weights = dict(weights)
        self.group = parse_group(group) or None
        self.guard = bool(guard)
        # Fail now, not at the first generation: unknown dimensions or group levels.
        scorer.score(["check"], self.weights, group=self.group, guard=self.guard)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 **kwargs: Any) -> list[float]:
        """Score each prompt + completion (plain strings or chat messages).

        The scorer reads the prompt and the completion joined by a newline, as the training
        items' prompt and response were; the guard measures the completion.
        """
        texts = [(_text(p), _text(c)) for p, c in zip(prompts, completions, strict=True)]
        return [float(x) for x in self.scorer.score(texts, self.weights, group=self.group,
                                                    guard=self.guard)]


def prompts_frame(table: RatingTable) -> pd.DataFrame:
    """Return the distinct prompts of a ratings table, one row each, in a column ``prompt``.

    Parameters
    ----------
    table : RatingTable
        Ratings whose items have a ``prompt`` attribute.

    Returns
    -------
    pandas.DataFrame
        Column ``prompt`` (and ``prompt_id`` when the items have it), in first-seen order.
    """
    if "prompt" not in table.items.columns:
        raise TrainError(f"prompts: the ratings in {table.source} have no 'prompt' item "
                         f"attribute (item attributes: {table.item_attributes})")
    cols = [c for c in ("prompt_id", "prompt") if c in table.items.columns]
    return table.items[cols].drop_duplicates("prompt").reset_index(drop=True)


def _text(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, list):  # conversational: a list of {"role", "content"} messages
        return "\n".join(str(m.get("content", "")) for m in x)
    return str(x)
