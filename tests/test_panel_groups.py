"""Group rewards that belong to the group, and the reward guard (disagree.panel).

Groups: a one-dimension survey (toxicity, 1,095 raters, 300 responses) whose group-by-response
deviations follow the responses' wording (``interaction_traits=1.0``, toxicity x gender with sd
1.5, the random level loadings of seed 0), split by prompt (80/20). A group's *true* order of
two responses is the simulator's truth (``survey.truth``: the item effect plus the group's
deviation), not a fitted Bayesian posterior, so the test needs no sampling.

Guard: the bundled survey (whatever its exact numbers) with one scorer fitted on all of it; the
guard's formula is also checked by hand on a small case.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

import disagree
from disagree.data.simulate import load_default_survey
from disagree.errors import PanelError
from disagree.panel import PanelOptions, RatingPanelScorer, split_items
from disagree.panel.guard import SupportGuard, count_sentences, count_words
from disagree.train.grpo import PanelReward

BOILERPLATE = "It makes sense that this is weighing on you. Wishing you the best with it."


# --- groups that rank differently --------------------------------------------------------

@pytest.fixture(scope="module")
def survey():
    return disagree.simulate_survey(seed=0, dimensions=("toxicity",), interaction_traits=1.0,
                                    interactions={"toxicity": {"gender": 1.5}})


@pytest.fixture(scope="module")
def held_out(survey):
    table = survey.table
    train, test = split_items(table, test_fraction=0.2, seed=0)
    fits = {True: RatingPanelScorer(seed=0).fit(table, train),  # epochs: ranking only
            False: RatingPanelScorer(seed=0, interactions=False, epochs=50).fit(table, train)}
    items = table.items.loc[test]
    return fits, items, list(zip(items["prompt"], items["response"], strict=True))


def true_effects(survey, level: str, item_ids) -> np.ndarray:
    """Item effect plus the deviation of a gender level: that group's true latent toxicity."""
    truth = survey.truth
    effects = pd.Series(truth["item_effects"]["toxicity"], index=truth["item_effects"]["item_id"])
    dev = truth["item_deviations"]["toxicity"]["gender"]
    deviation = pd.Series(dev[level], index=dev["item_id"])
    return (effects + deviation).loc[list(item_ids)].to_numpy()


def pair_agreement(score: np.ndarray, truth: np.ndarray, prompts: np.ndarray) -> float:
    """Share of same-prompt pairs that ``score`` orders as ``truth`` does."""
    i, j = np.triu_indices(len(score), 1)
    same = prompts[i] == prompts[j]
    i, j = i[same], j[same]
    return float(np.mean(np.sign(score[i] - score[j]) == np.sign(truth[i] - truth[j])))


def test_group_rewards_rank_like_their_own_group(survey, held_out):
    fits, items, texts = held_out
    prompts = items["prompt_id"].to_numpy()
    truth = {g: true_effects(survey, g, items.index) for g in ("female", "male")}
    # the data: the two groups disagree about which response is more toxic
    assert spearmanr(truth["female"], truth["male"]).statistic < 0.7
    reward = {g: fits[True].expected_rating(texts, "toxicity", {"gender": g})
              for g in ("female", "male")}
    assert spearmanr(reward["female"], reward["male"]).statistic < 0.9
    for own, other in (("female", "male"), ("male", "female")):
        mine = pair_agreement(reward[own], truth[own], prompts)
        theirs = pair_agreement(reward[other], truth[own], prompts)
        assert mine > theirs + 0.05, (own, mine, theirs)
    # the intercept-only panel (interactions=False): one ranking for every group
    flat = [fits[False].expected_rating(texts, "toxicity", {"gender": g})
            for g in ("female", "male")]
    assert spearmanr(*flat).statistic > 0.9999


def test_group_text_weights_state_and_options(held_out):
    fits, _, texts = held_out
    state = fits[True].state
    levels = sum(len(state.levels[f]) for f in state.interaction_factors)
    assert state.interaction_factors == state.factors == ("gender", "politics", "ethnicity",
                                                           "country", "age")
    assert state.params["toxicity"]["v"].shape == (len(state.active), levels)
    assert state.design(state.cells).shape == (len(state.cells), state.n_factor_columns + levels)
    assert state.metrics["interaction_factors"] == list(state.factors)
    assert "v" not in fits[False].state.params["toxicity"]
    assert fits[False].state.interaction_factors == ()
    # one factor only; predictions of a cell agree with its single-cell mixture
    one = RatingPanelScorer(seed=0, interactions=["gender"], epochs=20)
    assert one.options.interactions == ("gender",)
    x = fits[True].state.features(texts[:4])
    cell = state.cells.iloc[[3]]
    np.testing.assert_allclose(state.probs(x, "toxicity", state.design(cell)),
                               state.mixture(x, "toxicity", state.design(cell), np.ones(1)),
                               atol=1e-12)


def test_interaction_option_errors(survey):
    with pytest.raises(PanelError, match="^factors, text_columns and interactions must be "
                                         "sequences of names, not a single string$"):
        RatingPanelScorer(interactions="gender")
    with pytest.raises(PanelError, match=r"^interaction_l2=-1\.0: expected a finite number "
                                         ">= 0$"):
        PanelOptions(interaction_l2=-1.0)
    with pytest.raises(PanelError, match="^interactions: unknown factor 'religion'; the "
                                         "scorer's factors are: gender, politics$"):
        RatingPanelScorer(factors=["gender", "politics"], interactions=["religion"],
                          epochs=1).fit(survey.table)


# --- the reward guard ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled():
    table = load_default_survey()
    return table, RatingPanelScorer(seed=0).fit(table)


@pytest.mark.parametrize("weights", [{"toxicity": -1.0}, {"emotional_awareness": 1.0}])
@pytest.mark.parametrize("group", [None, {"politics": "conservative"}, {"gender": "male"}])
def test_empty_and_boilerplate_completions_do_not_beat_the_median(bundled, weights, group):
    table, scorer = bundled
    items = table.items
    rated = scorer.score(list(zip(items["prompt"], items["response"], strict=True)), weights,
                         group)
    prompts = list(items["prompt"].unique())
    for completion in ("", BOILERPLATE):
        reward = scorer.score([(p, completion) for p in prompts], weights, group)
        assert np.all(reward < np.median(rated)), completion
        raw = scorer.score([(p, completion) for p in prompts], weights, group, guard=False)
        assert np.all(reward <= raw)
    empty = scorer.score([(p, "") for p in prompts], weights, group)
    floor = scorer.state.guard.reward_floor(scorer.state, weights, group)
    np.testing.assert_allclose(empty, np.minimum(floor, scorer.score(
        [(p, "") for p in prompts], weights, group, guard=False)))


def test_guard_leaves_rated_responses_and_never_raises(bundled):
    table, scorer = bundled
    texts = list(zip(table.items["prompt"], table.items["response"], strict=True))
    support = scorer.state.guard.support(texts)
    assert np.mean(support < 1) <= 0.02  # only below the rated lengths' 1st percentile
    weights = {"toxicity": -1.0, "helpfulness": 1.0}
    cheap = [(p, c) for p in table.items["prompt"].unique()[:5]
             for c in ("", "ok", BOILERPLATE, "Nobody cares, loser.")]
    for batch in (texts, cheap):
        assert np.all(scorer.score(batch, weights) <= scorer.score(batch, weights, guard=False))


def test_floor_is_the_training_texts_reward_quantile(bundled):
    table, scorer = bundled
    texts = list(zip(table.items["prompt"], table.items["response"], strict=True))
    weights = {"toxicity": -1.0, "emotional_awareness": 0.5}
    group = {"ethnicity": "Black"}
    expected = sum(w * scorer.expected_rating(texts, d, group) for d, w in weights.items())
    floor = scorer.state.guard.reward_floor(scorer.state, weights, group)
    assert floor == pytest.approx(np.quantile(expected, 0.1), abs=1e-9)


def test_support_hand_case(bundled):
    assert count_words(["", "It's a dog", "a_b c"]).tolist() == [0, 4, 2]
    assert count_sentences(["", "One. Two! Three?", "Dr. Who", "no end", "a\nb", "...",
                            "Hi!! ok"]).tolist() == [0, 3, 2, 1, 2, 0, 2]
    state = bundled[1].state
    guard = SupportGuard(words=np.linspace(10.0, 60.0, 101), sentences=np.full(101, 3.0),
                         reference=state.guard.reference)
    # 1st percentile: 10.5 words, 3 sentences; support 0 at half of each, 1 from there on
    texts = [("p", "a b c d e f g h i j k. l. m."), ("p", "It makes sense. Wishing you well."),
             ("p", ""), "one two three four five six seven eight nine ten eleven."]
    np.testing.assert_allclose(guard.support(texts),
                               [1.0, min((6 - 5.25) / 5.25, (2 - 1.5) / 1.5), 0.0,
                                0.0])  # the last: 11 words but one sentence
    rewards = np.array([-1.0, -2.0, -3.0, -4.0])
    weights = {"toxicity": -1.0}
    floor = guard.reward_floor(state, weights)
    s = guard.support(texts)
    np.testing.assert_allclose(guard.apply(state, texts, rewards, weights),
                               s * rewards + (1 - s) * np.minimum(rewards, floor))


def test_panel_reward_scores_the_completion(bundled):
    table, scorer = bundled
    prompts = list(table.items["prompt"][:3])
    completions = ["", BOILERPLATE, table.items["response"].iloc[2]]
    reward = PanelReward(scorer, {"toxicity": -1.0}, group="politics=conservative")
    pairs = list(zip(prompts, completions, strict=True))
    expected = scorer.score(pairs, {"toxicity": -1.0}, {"politics": "conservative"})
    assert reward(prompts, completions) == expected.tolist()
    raw = PanelReward(scorer, {"toxicity": -1.0}, group="politics=conservative", guard=False)
    joined = [f"{p}\n{c}" for p, c in pairs]  # the text the scorer reads is unchanged
    assert raw(prompts, completions) == scorer.score(joined, {"toxicity": -1.0},
                                                     {"politics": "conservative"},
                                                     guard=False).tolist()


# --- saved scorers -------------------------------------------------------------------------

def test_save_load_keeps_interactions_and_guard(bundled, tmp_path):
    table, scorer = bundled
    texts = [(p, c) for p in table.items["prompt"].unique()[:4]
             for c in ("", BOILERPLATE, table.items["response"].iloc[0])]
    loaded = RatingPanelScorer.load(scorer.save(tmp_path / "s"))
    assert loaded.state.interaction_factors == scorer.state.interaction_factors
    assert loaded.options == scorer.options
    for group in (None, {"gender": "male"}):
        np.testing.assert_array_equal(loaded.score(texts, {"toxicity": -1.0}, group),
                                      scorer.score(texts, {"toxicity": -1.0}, group))
    meta = json.loads((tmp_path / "s" / "scorer.json").read_text())
    assert meta["format_version"] == 3 and meta["guard"]["settings"]["floor"] == 0.1


def test_format_2_scorer_loads_as_it_was_fitted(bundled, tmp_path):
    table, _ = bundled
    old = RatingPanelScorer(seed=0, interactions=False, guard=False, epochs=30).fit(table)
    path = old.save(tmp_path / "old")
    meta = json.loads((path / "scorer.json").read_text())
    meta["format_version"] = 2
    for key in ("interaction_factors", "guard"):
        del meta[key]
    for key in ("interactions", "interaction_l2", "guard"):
        del meta["options"][key]
    (path / "scorer.json").write_text(json.dumps(meta))
    loaded = RatingPanelScorer.load(path)
    assert loaded.options.interactions is False and loaded.options.guard is False
    assert loaded.state.guard is None and loaded.state.interaction_factors == ()
    texts = [(p, "") for p in table.items["prompt"].unique()[:3]]
    np.testing.assert_array_equal(loaded.score(texts, {"toxicity": -1.0}),
                                  old.score(texts, {"toxicity": -1.0}))
    # a format-3 file that names interaction factors but lacks their weights is refused
    meta.update(format_version=3, interaction_factors=["gender"], guard=None)
    (path / "scorer.json").write_text(json.dumps(meta))
    with pytest.raises(PanelError, match="is damaged or inconsistent with arrays.npz "
                                         r"\(KeyError: 'v\.0'\)"):
        RatingPanelScorer.load(path)
