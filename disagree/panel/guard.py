"""The reward guard: no cheap wins for completions shorter than every rated response.

A rating panel is fitted on rated responses, each of which says something. Asked about an
empty completion or a one-line pleasantry it extrapolates: on the default survey, with n-gram
features, an empty completion beat about half of the rated responses as a toxicity reward and
the boilerplate "It makes sense that this is weighing on you. Wishing you the best with it."
98% (the rated responses with that opener and closer are among the least toxic, but each of
them also has a body), so a GRPO policy is paid to say nothing. What sets such completions
apart is that they are shorter than the rated responses: in words (the empty one) or in
sentences (every rated response of the survey has an opener, a body and a closer, at least
three sentences; the boilerplate has two). Alternatives measured on the default survey did not
work: the cosine similarity to the nearest rated text and a Mahalanobis distance in the texts'
leading directions put both inside the rated texts' range; pulling the shortest quarter of the
rated responses towards the floor lowered the toxicity reward's agreement with the true order
of held-out response pairs from 0.87 to 0.78; a rule on verbatim parts of rated responses
caught only 21% of the opener + closer pairs.

:meth:`~disagree.panel.scorer.RatingPanelScorer.score` pulls the reward of a completion
outside the rated responses' length support towards a pessimistic *floor*. For each measure
(word tokens, sentences) with ``L`` its :data:`SUPPORT_PERCENTILE` percentile over the rated
responses (so about 1% of them are below it), the support of a completion of length ``n`` is::

    s_m = clip((n - START * L) / ((1 - START) * L), 0, 1)    (1 where L is 0)

which is 1 from ``L`` on and 0 at half of it (:data:`START`); with ``s = min(s_words,
s_sentences)`` the guarded reward is::

    reward = s * r + (1 - s) * min(r, floor)

so a completion as long as the rated responses keeps its reward, an empty one gets at most the
floor, and the guard never raises a reward. The floor is the :data:`FLOOR_QUANTILE` quantile of
the same reward (weights and group) over the reference texts: what a poor rated response earns.
The reference texts are the training texts (a seeded sample of :data:`MAX_REFERENCE` when there
are more); :class:`SupportGuard` keeps their linear predictors, not their texts, so a saved
scorer needs no encoder call for its floor.

A text given as ``(prompt, completion)`` is measured by its completion; a plain string is
measured whole (a prompt in it counts as part of the completion, which weakens the guard).
It does not catch everything: rated-length strings of pleasant phrases, or of words the
panel has never seen, keep the panel's reward (``benchmarks/scorer_eval.py`` reports both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from disagree.errors import PanelError
from disagree.panel.state import Group, PanelState

#: Percentiles of the rated responses' lengths that the guard keeps.
PERCENTILES = np.arange(101)
#: The length (words and sentences) below which a completion loses support: this percentile
#: of the rated responses' lengths.
SUPPORT_PERCENTILE = 1.0
#: Support falls linearly from 1 at that length to 0 at this share of it.
START = 0.5
#: The floor is this quantile of the reward over the reference texts (the pessimistic side).
FLOOR_QUANTILE = 0.1
#: At most this many training texts are references for the floor (a seeded sample of them).
MAX_REFERENCE = 2000
#: The guard's settings as saved with a scorer.
DEFAULT_SETTINGS = {"support_percentile": SUPPORT_PERCENTILE, "start": START,
                    "floor": FLOOR_QUANTILE}

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)|\n+")

Terms = tuple[np.ndarray, np.ndarray | None]


def count_words(texts: Sequence[str]) -> np.ndarray:
    r"""Count the word tokens (``\w+``, as the hashing encoder splits) of each text, int64."""
    return np.array([len(_WORD.findall(t)) for t in texts], dtype=np.int64)


def count_sentences(texts: Sequence[str]) -> np.ndarray:
    """Count the sentences of each text, int64.

    A sentence ends at ``.``, ``!`` or ``?`` followed by white space or the end, or at a line
    break; pieces without a word character do not count.
    """
    return np.array([sum(1 for piece in _SENTENCE_END.split(t) if _WORD.search(piece))
                     for t in texts], dtype=np.int64)


def completions(texts: Sequence[str | Sequence[str]] | str) -> list[str]:
    """Return the part of each text the guard measures: a sequence's last element, or all."""
    if isinstance(texts, str):
        return [texts]
    return [t if isinstance(t, str) else (str(t[-1]) if len(t) else "") for t in texts]


@dataclass(frozen=True, eq=False)
class SupportGuard:
    """What the reward guard needs, fitted with the panel (see the module docstring).

    Attributes
    ----------
    words, sentences : numpy.ndarray
        Word and sentence counts of the training texts' responses (their last text column)
        at the percentiles 0..100, float64 (101,).
    reference : dict of str to (numpy.ndarray, numpy.ndarray or None)
        Per dimension, :meth:`PanelState.terms` of the reference texts (for the floor).
    settings : dict of str to float
        ``support_percentile``, ``start`` and ``floor``: this module's constants when fitted
        (saved with the scorer).
    """

    words: np.ndarray
    sentences: np.ndarray
    reference: Mapping[str, Terms]
    settings: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    _floors: dict[tuple, float] = field(default_factory=dict, init=False, repr=False)

    def support(self, texts: Sequence[str | Sequence[str]] | str) -> np.ndarray:
        """Return each text's support ``min(s_words, s_sentences)`` in [0, 1] (1: unguarded)."""
        strings = completions(texts)
        start = float(self.settings["start"])
        out = np.ones(len(strings))
        for counts, percentiles in ((count_words(strings), self.words),
                                    (count_sentences(strings), self.sentences)):
            shortest = float(np.interp(self.settings["support_percentile"], PERCENTILES,
                                       percentiles))
            if shortest > 0:
                out = np.minimum(out, np.clip((counts - start * shortest)
                                              / ((1.0 - start) * shortest), 0.0, 1.0))
        return out

    def reward_floor(self, state: PanelState, weights: Mapping[str, float],
                     group: Group = None) -> float:
        """Return the ``floor`` quantile of ``sum_d weights[d] * E[rating]`` over the references.

        Cached per group and weights.
        """
        key = (tuple(sorted(state.check_group(group).items())),
               tuple(sorted((d, float(w)) for d, w in weights.items())))
        if key not in self._floors:
            design, cell_weights = state.group_cells(group)
            total: Any = 0.0
            for d, wt in weights.items():
                main, inter = self.reference[d]
                probs = state.mix_terms(main, inter, d, design, cell_weights)
                total = total + float(wt) * (probs @ np.arange(1, probs.shape[1] + 1))
            self._floors[key] = float(np.quantile(total, self.settings["floor"]))
        return self._floors[key]

    def apply(self, state: PanelState, texts: Sequence[str | Sequence[str]] | str,
              rewards: np.ndarray, weights: Mapping[str, float],
              group: Group = None) -> np.ndarray:
        """Return the guarded rewards ``s * r + (1 - s) * min(r, floor)`` (see :meth:`support`)."""
        s = self.support(texts)
        if np.all(s == 1.0):
            return rewards
        floor = self.reward_floor(state, weights, group)
        return s * rewards + (1.0 - s) * np.minimum(rewards, floor)


def build_guard(state: PanelState, features: np.ndarray, responses: Sequence[str],
                seed: int) -> SupportGuard:
    """Fit the guard of a panel from its training texts.

    Parameters
    ----------
    state : PanelState
        The fitted panel (its parameters give the reference texts' terms).
    features : numpy.ndarray
        The training texts' features (the panel's active columns), one row per text.
    responses : sequence of str
        The training texts' last text column (the rated responses), in the same order.
    seed : int
        Seeds the sample of reference texts when there are more than :data:`MAX_REFERENCE`.

    Returns
    -------
    SupportGuard
    """
    if not len(responses):
        raise PanelError("the reward guard needs at least one training text")
    rows = np.arange(len(responses))
    if len(rows) > MAX_REFERENCE:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_REFERENCE, replace=False))
    responses = list(responses)
    return SupportGuard(
        words=np.percentile(count_words(responses), PERCENTILES).astype(np.float64),
        sentences=np.percentile(count_sentences(responses), PERCENTILES).astype(np.float64),
        reference={d: state.terms(features[rows], d) for d in state.dimensions})


__all__ = ["DEFAULT_SETTINGS", "FLOOR_QUANTILE", "MAX_REFERENCE", "PERCENTILES", "START",
           "SUPPORT_PERCENTILE", "SupportGuard", "build_guard", "completions",
           "count_sentences", "count_words"]
