"""Judges: a policy and held-out prompts in, one score per prompt out, in the survey's units.

Every judge has ``name``, ``dimension`` and ``score(policy, items) -> DataFrame`` with one row
per prompt: ``prompt_id, judge, dimension, unit, score`` plus judge-specific columns. ``score``
is the probability of a high rating (4 or 5 on five points) in percentage points.
``score_items(items)`` scores the rated responses themselves, one number per row of ``items``,
in the same units: Figure 2's ``preference`` row judges each group's posterior favourite with
it.

``posterior`` (:class:`PosteriorJudge`, the default, no generation)
    The policy's implicit rewards rank each prompt's rated responses; ``score`` is the fitted
    model's soft label (population, or a group's) of the response ranked first (the mean over
    tied first places, so a base model with no preference scores the prompt's average), and
    ``score_mix`` the soft labels weighted by the softmax of the implicit rewards; ``expected``
    and ``expected_mix`` are the same for the expected rating.
``panel`` (:class:`PanelJudge`)
    Generates completions (:mod:`disagree.evaluate.generate`) and scores them with a
    :class:`disagree.panel.RatingPanelScorer` for the population or a group: ``score`` is the
    mean over a prompt's completions of the predicted probability of a high rating.
``classifier`` (:class:`ClassifierJudge`)
    Generates, then scores with a transformers text-classification model (hub id or folder):
    ``score`` is the mean probability of one of its labels, in percentage points.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from disagree.data.groups import format_group
from disagree.data.scale import high_threshold
from disagree.errors import DataError
from disagree.evaluate.generate import GenerationSettings, generate
from disagree.evaluate.policy import Policy
from disagree.labels import prob_columns, soft_labels
from disagree.model import Fit, load_fit

#: Judge names accepted by :func:`make_judge`.
JUDGES = ("posterior", "panel", "classifier")
SCORE_COLUMNS = ["prompt_id", "judge", "dimension", "unit", "score"]


class Judge(Protocol):
    """What every judge offers."""

    name: str
    dimension: str

    def score(self, policy: Policy, items: pd.DataFrame) -> pd.DataFrame:
        """One row per prompt of ``items`` (see the module docstring)."""

    def score_items(self, items: pd.DataFrame) -> np.ndarray:
        """Score each rated response of ``items`` itself (for the preference row)."""


@dataclass
class PosteriorJudge:
    """Score the response a policy ranks first by the fitted model's soft label.

    Parameters
    ----------
    fit : Fit or path
        The fitted model of the ratings (its items must include the evaluated ones).
    dimension : str
    group : mapping, optional
        ``{factor: level}``: that group's labels; default the population of the fit's raters.
    batch_size : int
        Prompt-response pairs per forward pass.
    """

    fit: Fit | str | os.PathLike[str]
    dimension: str
    group: Mapping[str, str] | None = None
    batch_size: int = 16
    name: str = "posterior"
    _labels: dict[tuple[str, ...], pd.DataFrame] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.fit = self.fit if isinstance(self.fit, Fit) else load_fit(self.fit)
        if self.dimension not in self.fit.spec.dimensions:
            raise DataError(f"judge posterior: dimension {self.dimension!r} is not in the fit "
                            f"({', '.join(self.fit.spec.dimensions)})")

    @property
    def unit(self) -> str:
        """The label's unit in words: ``population`` or ``politics=liberal``."""
        return format_group(self.group)

    def labels(self, item_ids: list[str]) -> pd.DataFrame:
        """Soft-label summaries of ``item_ids``: ``high`` (pp) and ``expected``, by item."""
        key = tuple(item_ids)
        if key not in self._labels:
            unit = "group" if self.group else "population"
            frame = soft_labels(self.fit, unit=unit, dimensions=[self.dimension],
                                items=item_ids, factors=list(self.group) if self.group else None)
            for factor, level in (self.group or {}).items():
                frame = frame[frame[factor].astype(str) == str(level)]
            scale = self.fit.spec.scale
            high = prob_columns(scale)[high_threshold(scale) - 1:]
            self._labels[key] = pd.DataFrame(
                {"high": 100 * frame[high].sum(axis=1).to_numpy(),
                 "expected": frame["mean"].to_numpy()},
                index=pd.Index(frame["item_id"].to_numpy(), name="item_id"))
        return self._labels[key]

    def score_items(self, items: pd.DataFrame) -> np.ndarray:
        """Score each rated response of ``items`` itself: P(high) of its label (pp)."""
        return self.labels(list(items["item_id"])).loc[items["item_id"], "high"].to_numpy()

    def score(self, policy: Policy, items: pd.DataFrame) -> pd.DataFrame:
        """Score ``policy`` on the prompts of ``items`` (see the module docstring)."""
        labels = self.labels(list(items["item_id"]))
        rewards = policy.implicit_rewards(list(items["prompt"]), list(items["response"]),
                                          batch_size=self.batch_size)
        frame = items.assign(reward=rewards, high=labels.loc[items["item_id"], "high"].values,
                             expected=labels.loc[items["item_id"], "expected"].values)
        rows = []
        for prompt_id, group in frame.groupby("prompt_id", sort=False):
            r = group["reward"].to_numpy()
            first = np.isclose(r, r.max(), rtol=0, atol=1e-9)
            mix = np.exp(r - r.max())
            mix /= mix.sum()
            rows.append({"prompt_id": prompt_id, "judge": self.name,
                         "dimension": self.dimension, "unit": self.unit,
                         "score": group["high"].to_numpy()[first].mean(),
                         "score_mix": float(mix @ group["high"].to_numpy()),
                         "expected": group["expected"].to_numpy()[first].mean(),
                         "expected_mix": float(mix @ group["expected"].to_numpy()),
                         "top_item": group["item_id"].to_numpy()[first][0]})
        return pd.DataFrame(rows)


@dataclass
class PanelJudge:
    """Generate completions and score them with a rating-panel scorer.

    Parameters
    ----------
    scorer : RatingPanelScorer or path
        A fitted scorer (or the folder it was saved to).
    dimension : str
    group : mapping, optional
        Whose ratings the scorer predicts (default the population).
    generation : GenerationSettings
        How completions are sampled (seeded).
    """

    scorer: Any
    dimension: str
    group: Mapping[str, str] | None = None
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    name: str = "panel"

    def __post_init__(self) -> None:
        from disagree.panel import RatingPanelScorer

        if not isinstance(self.scorer, RatingPanelScorer):
            self.scorer = RatingPanelScorer.load(self.scorer)

    def score_items(self, items: pd.DataFrame) -> np.ndarray:
        """Score each rated response of ``items``: the scorer's P(high) (pp) given its prompt."""
        probs = self.scorer.predict_proba(list(zip(items["prompt"], items["response"],
                                                   strict=True)), self.dimension,
                                          group=dict(self.group) if self.group else None)
        return 100 * probs[:, high_threshold(probs.shape[1]) - 1:].sum(axis=1)

    def score(self, policy: Policy, items: pd.DataFrame) -> pd.DataFrame:
        """Score ``policy``'s completions of the prompts of ``items``."""
        prompts = items.drop_duplicates("prompt_id")
        completions = generate(policy, list(prompts["prompt"]), self.generation)
        rows = []
        for (prompt_id, prompt), texts in zip(prompts[["prompt_id", "prompt"]].itertuples(
                index=False), completions, strict=True):
            probs = self.scorer.predict_proba([(prompt, t) for t in texts], self.dimension,
                                              group=dict(self.group) if self.group else None)
            k = probs.shape[1]
            high = 100 * probs[:, high_threshold(k) - 1:].sum(axis=1)
            rows.append({"prompt_id": prompt_id, "judge": self.name,
                         "dimension": self.dimension, "unit": format_group(self.group),
                         "score": float(high.mean()),
                         "expected": float((probs @ np.arange(1, k + 1)).mean())})
        return pd.DataFrame(rows)


@dataclass
class ClassifierJudge:
    """Generate completions and score them with a transformers text classifier.

    Parameters
    ----------
    model : str
        Hub id or folder of a text-classification model (e.g. a toxicity classifier).
    label : str
        The label whose probability is the score (e.g. ``"toxic"``).
    dimension : str
        The dimension the label measures (for the tables).
    generation : GenerationSettings
    """

    model: str
    label: str
    dimension: str
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    name: str = "classifier"
    _pipeline: Any = field(default=None, repr=False)

    def score_items(self, items: pd.DataFrame) -> np.ndarray:
        """Score each rated response of ``items``: the probability of ``label`` (pp)."""
        return np.array(self.probability(list(items["response"])))

    def probability(self, texts: list[str]) -> list[float]:
        """Return the probability of ``label`` (pp) of each text (empty: read as a space)."""
        if self._pipeline is None:
            from transformers import pipeline

            self._pipeline = pipeline("text-classification", model=str(self.model), top_k=None)
            labels = set(self._pipeline.model.config.id2label.values())
            if self.label not in labels:
                raise DataError(f"judge classifier: label {self.label!r} is not one of the "
                                f"model's labels {sorted(labels)}")
        outputs = self._pipeline([t if t.strip() else " " for t in texts])
        return [100 * next(o["score"] for o in out if o["label"] == self.label)
                for out in outputs]

    def score(self, policy: Policy, items: pd.DataFrame) -> pd.DataFrame:
        """Score ``policy``'s completions of the prompts of ``items``."""
        prompts = items.drop_duplicates("prompt_id")
        completions = generate(policy, list(prompts["prompt"]), self.generation)
        rows = [{"prompt_id": prompt_id, "judge": self.name, "dimension": self.dimension,
                 "unit": "classifier", "score": float(np.mean(self.probability(list(texts))))}
                for prompt_id, texts in zip(prompts["prompt_id"], completions, strict=True)]
        return pd.DataFrame(rows)


def make_judge(name: str = "posterior", **options: Any) -> Judge:
    """Build a judge by name: ``posterior``, ``panel`` or ``classifier`` (see the classes).

    Raises
    ------
    DataError
        For an unknown name.
    """
    kinds = {"posterior": PosteriorJudge, "panel": PanelJudge, "classifier": ClassifierJudge}
    if name not in kinds:
        raise DataError(f"judge {name!r}: expected one of {', '.join(JUDGES)}")
    generation = options.pop("generation", None)
    if generation is not None and name != "posterior":
        options["generation"] = (generation if isinstance(generation, GenerationSettings)
                                 else GenerationSettings(**generation))
    return kinds[name](**options)
