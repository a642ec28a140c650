"""Pair preferences: one rater rates both responses (the weights of soft pairs).

The semantics are pinned by two numbers (5 points, cut points -1.5, -0.5, 0.5, 1.5, item
effects +-gap/2, rater sd 1.5): one rater prefers the better response with probability 0.756
for a gap of 2 logits and 0.638 for a gap of 1, where two different random raters (the
comparison of the two soft labels) give 0.717 and 0.613. Then a Monte Carlo simulation of raters
rating both responses, a brute-force quadrature of the kernels, the API's errors, and (slow) a
fitted survey with a strong politics x item interaction, whose groups' soft pairs follow each
group's own true ordering of the responses.
"""

from __future__ import annotations

import json
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit
from test_labels_interactions import draws_of, item_effect_of, synthetic_fit, x_of

from disagree.data import simulate_survey
from disagree.errors import ModelError
from disagree.labels import pair_preferences, soft_labels
from disagree.labels.kernels import mixture_moments
from disagree.labels.pair_kernels import mixture_preferences, rater_preferences
from disagree.model import fit as fit_model
from disagree.model.fitting import Fit
from disagree.model.spec import ModelSpec
from disagree.pairs import make_pairs, preference_probability
from disagree.pairs.strategies import soft_pairs

PROBS = [f"p_{k}" for k in range(1, 6)]


def hand_fit(cutpoints, item_effects, rater_sd: float) -> Fit:
    """One draw, one dimension (helpfulness), no demographic effect: the textbook case."""
    levels = {"gender": ["female", "male"]}
    items = [f"i{j}" for j in range(len(item_effects))]
    posterior = xr.Dataset({
        "cutpoints": (("chain", "draw", "dimension", "cutpoint"),
                      np.asarray(cutpoints, float)[None, None, None]),
        "beta": (("chain", "draw", "dimension", "factor_level"), np.zeros((1, 1, 1, 1))),
        "rater_sd": (("chain", "draw", "dimension"), np.full((1, 1, 1), rater_sd)),
        "rater_effect": (("chain", "draw", "rater", "dimension"), np.zeros((1, 1, 2, 1))),
        "item_effect": (("chain", "draw", "item", "dimension"),
                        np.asarray(item_effects, float)[None, None, :, None]),
    }, coords={"dimension": ["helpfulness"], "factor_level": ["gender[male]"],
               "rater": ["r0", "r1"], "item": items, "cutpoint": np.arange(len(cutpoints))})
    constant = xr.Dataset({"rater_design": (("rater", "factor_level"), [[0.0], [1.0]])},
                          coords={"rater": ["r0", "r1"], "factor_level": ["gender[male]"]})
    spec = ModelSpec(("gender",), levels, ("helpfulness",), len(cutpoints) + 1)
    return Fit(az.InferenceData(posterior=posterior, constant_data=constant), spec, {}, {})


# --- the semantics -------------------------------------------------------------------------

def test_the_two_numbers_that_define_the_weights():
    fitted = hand_fit([-1.5, -0.5, 0.5, 1.5], [1.0, -1.0, 0.5, -0.5], rater_sd=1.5)
    pairs = pd.DataFrame({"item_a": ["i0", "i2"], "item_b": ["i1", "i3"]})  # gaps 2 and 1
    same = pair_preferences(fitted, pairs, "helpfulness", lower_is_better=False)
    assert list(same.columns) == ["item_a", "item_b", "population", "preference"]
    assert same["preference"].round(3).tolist() == [0.756, 0.638]
    # the old weights: the two soft labels (marginal over the rater effect) compared
    labels = soft_labels(fitted, dimensions="helpfulness").set_index("item_id")[PROBS]
    two = preference_probability(labels.loc[["i0", "i2"]].to_numpy(),
                                 labels.loc[["i1", "i3"]].to_numpy(), lower_is_better=False)
    assert two.round(3).tolist() == [0.717, 0.613]
    # one response against itself: 1/2; the other way round: 1 - p; lower is better: 1 - p
    flipped = pair_preferences(fitted, pairs.rename(columns={"item_a": "item_b",
                                                             "item_b": "item_a"}),
                               "helpfulness", lower_is_better=False)
    np.testing.assert_allclose(flipped["preference"], 1 - same["preference"], atol=1e-15)
    lower = pair_preferences(fitted, pairs, "helpfulness")
    np.testing.assert_allclose(lower["preference"], 1 - same["preference"], atol=1e-15)
    itself = pair_preferences(fitted, pd.DataFrame({"item_a": ["i0"], "item_b": ["i0"]}),
                              "helpfulness")
    assert itself["preference"].iloc[0] == pytest.approx(0.5, abs=1e-15)


def simulate_preference(rng, cut, eta_a, eta_b, lower_is_better=True) -> np.ndarray:
    """Monte Carlo: rate both responses (linear predictors per simulated rater), count."""
    y_a = 1 + (rng.random(eta_a.shape)[..., None] > expit(cut - eta_a[..., None])).sum(-1)
    y_b = 1 + (rng.random(eta_b.shape)[..., None] > expit(cut - eta_b[..., None])).sum(-1)
    better = (y_a < y_b) if lower_is_better else (y_a > y_b)
    return better + 0.5 * (y_a == y_b)


@pytest.fixture(scope="module")
def interacting():
    return synthetic_fit(interactions=("gender", "politics"), rater_sd=(1.2, 1.8))


def test_agrees_with_a_monte_carlo_simulation_of_raters_rating_both(interacting):
    rng = np.random.default_rng(7)
    pairs = pd.DataFrame({"item_a": ["i01", "i04", "i06"], "item_b": ["i07", "i02", "i09"]})
    group = {"politics": "moderate"}
    got = pair_preferences(interacting, pairs, "toxicity", unit="group", group=group)
    raters = interacting.raters
    mix = raters[raters.politics == "moderate"].value_counts("gender")
    cells = [{"gender": g, "politics": "moderate"} for g in mix.index]
    share = (mix / mix.sum()).to_numpy()
    beta, cuts = draws_of(interacting, "beta")[:, 0], draws_of(interacting, "cutpoints")[:, 0]
    sigma = draws_of(interacting, "rater_sd")[:, 0]
    n_draws, n_sim = len(beta), 40_000
    old = soft_labels(interacting, unit="group", factors="politics", dimensions="toxicity")
    old = old[old.politics == "moderate"].set_index("item_id")[PROBS]
    for p, (a, b) in enumerate(zip(pairs.item_a, pairs.item_b, strict=True)):
        ja, jb = int(a[1:]), int(b[1:])
        sims = []
        for s in range(n_draws):
            cell = rng.choice(len(cells), size=n_sim, p=share)
            u = sigma[s] * rng.standard_normal(n_sim)
            fixed = np.array([beta[s] @ x_of(interacting, c) for c in cells])[cell]
            v_a = np.array([item_effect_of(interacting, c, ja, 0)[s] for c in cells])[cell]
            v_b = np.array([item_effect_of(interacting, c, jb, 0)[s] for c in cells])[cell]
            sims.append(simulate_preference(rng, cuts[s], fixed + v_a + u, fixed + v_b + u))
        sims = np.concatenate(sims)
        mc, se = sims.mean(), sims.std() / np.sqrt(len(sims))
        assert got["preference"].iloc[p] == pytest.approx(mc, abs=4 * se), (a, b, mc, se)
        independent = float(preference_probability(old.loc[a].to_numpy(), old.loc[b].to_numpy()))
        # two different raters: further from what one rater does, and nearer to 1/2
        assert abs(independent - mc) > 8 * se, (a, b, independent, mc)
        assert abs(got["preference"].iloc[p] - 0.5) > abs(independent - 0.5)


def test_a_rater_keeps_its_own_effect_for_both_responses(interacting):
    rng = np.random.default_rng(3)
    pairs = pd.DataFrame({"item_a": ["i03", "i05"], "item_b": ["i08", "i00"]})
    got = pair_preferences(interacting, pairs, "helpfulness", unit="rater",
                           raters=["r04", "r11"], lower_is_better=False)
    assert got["rater_id"].tolist() == ["r04", "r11", "r04", "r11"]
    cuts = draws_of(interacting, "cutpoints")[:, 1]
    for row in got.itertuples():
        r = int(row.rater_id[1:])
        cell = interacting.raters.iloc[r].to_dict()
        base = (draws_of(interacting, "beta")[:, 1] @ x_of(interacting, cell)
                + draws_of(interacting, "rater_effect")[:, r, 1])
        eta_a = base + item_effect_of(interacting, cell, int(row.item_a[1:]), 1)
        eta_b = base + item_effect_of(interacting, cell, int(row.item_b[1:]), 1)
        sims = simulate_preference(rng, cuts[:, None], np.repeat(eta_a[:, None], 20_000, 1),
                                   np.repeat(eta_b[:, None], 20_000, 1), lower_is_better=False)
        se = sims.std() / np.sqrt(sims.size)
        assert row.preference == pytest.approx(sims.mean(), abs=4 * se)


# --- the kernels against brute force -------------------------------------------------------

def brute_preference(cut, v_a, v_b, t, weights, lower_is_better=True) -> float:
    """sum_i weights_i [P(a better) + P(tie) / 2] at linear predictors t_i, category by category."""
    def probs(v):
        cdf = expit(cut[None, :] - v - t[:, None])
        return np.diff(np.c_[np.zeros(len(t)), cdf, np.ones(len(t))], axis=1)
    p_a, p_b = probs(v_a), probs(v_b)
    k = np.arange(p_a.shape[1])
    better = (k[:, None] < k[None, :]) if lower_is_better else (k[:, None] > k[None, :])
    joint = p_a[:, :, None] * p_b[:, None, :]
    return float(((joint * better).sum((1, 2)) + 0.5 * (joint * (k[:, None] == k)).sum((1, 2)))
                 @ weights)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(1)
    n_draws, n_items, n_cells, n_profiles = 6, 9, 6, 2
    return SimpleCase(
        cut=np.sort(rng.normal(0, 1.5, (n_draws, 4)), axis=1),
        effects=rng.normal(0, 1, (n_draws, n_profiles, n_items)),
        eta=rng.normal(0, 0.8, (n_draws, n_cells)), sigma=rng.uniform(0.4, 2.0, n_draws),
        weights=rng.uniform(0.5, 2, n_cells), groups=np.array([0, 0, 0, 1, 1, 2]),
        profiles=np.array([0, 1, 1, 0, 1, 0]),
        item_a=np.array([0, 1, 2, 3, 8, 5]), item_b=np.array([1, 2, 0, 7, 4, 5]),
        eta_raters=rng.normal(0, 1.2, (n_draws, 11)), rater_profiles=rng.integers(0, 2, 11))


class SimpleCase:
    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def test_mixture_kernel_equals_brute_force_for_every_quadrature(case):
    nodes, gh = np.polynomial.hermite_e.hermegauss(120)
    gh = gh / gh.sum()
    want = np.zeros((3, len(case.item_a)))
    for g in range(3):
        cells = np.flatnonzero(case.groups == g)
        w = case.weights[cells] / case.weights[cells].sum()
        for p, (a, b) in enumerate(zip(case.item_a, case.item_b, strict=True)):
            want[g, p] = np.mean([sum(
                wc * brute_preference(case.cut[s], case.effects[s, case.profiles[c], a],
                                      case.effects[s, case.profiles[c], b],
                                      case.eta[s, c] + case.sigma[s] * nodes, gh)
                for c, wc in zip(cells, w, strict=True)) for s in range(len(case.cut))])
    for method, tol in (("grid", 1e-10), ("nodes", 1e-7), ("auto", 1e-7)):
        for chunk in (1_000_000, 300):
            got = mixture_preferences(case.cut, case.eta, case.weights, case.groups,
                                      case.effects, case.sigma, case.item_a, case.item_b,
                                      profiles=case.profiles, method=method, chunk_size=chunk)
            np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=method)
    higher = mixture_preferences(case.cut, case.eta, case.weights, case.groups, case.effects,
                                 case.sigma, case.item_a, case.item_b, profiles=case.profiles,
                                 lower_is_better=False)
    np.testing.assert_allclose(higher, 1 - want, atol=1e-7)
    assert np.all(np.abs(want[:, -1] - 0.5) < 1e-15)  # a response against itself


def test_label_mixture_grid_equals_many_nodes_and_ignores_the_blocks(case):
    """Soft labels' mixture kernel: the grid against 120 nodes a cell; blocks change nothing."""
    args = (case.cut, case.eta, case.weights, case.groups, case.effects, case.sigma)
    want = mixture_moments(*args, n_nodes=120, method="nodes", profiles=case.profiles)
    for method, tol in (("grid", 1e-10), ("nodes", 1e-7)):
        got = [mixture_moments(*args, chunk_size=chunk, method=method, profiles=case.profiles)
               for chunk in (1_000_000, 7)]
        for a, b, c in zip(*got, want, strict=True):
            np.testing.assert_allclose(a, c, rtol=0, atol=tol, err_msg=method)
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-14, err_msg=method)


def test_rater_kernel_equals_brute_force(case):
    want = np.array([[np.mean([brute_preference(
        case.cut[s], case.effects[s, case.rater_profiles[r], a],
        case.effects[s, case.rater_profiles[r], b], case.eta_raters[s, r:r + 1], np.ones(1))
        for s in range(len(case.cut))]) for a, b in zip(case.item_a, case.item_b, strict=True)]
        for r in range(case.eta_raters.shape[1])])
    for chunk in (1_000_000, 200):
        got = rater_preferences(case.cut, case.eta_raters, case.effects, case.item_a,
                                case.item_b, profiles=case.rater_profiles, chunk_size=chunk)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_extreme_linear_predictors_stay_probabilities(case):
    eta = np.where(np.arange(case.eta.shape[1]) % 2, 800.0, -800.0) + 0 * case.eta
    got = mixture_preferences(case.cut, eta, case.weights, case.groups, case.effects,
                              case.sigma, case.item_a, case.item_b, method="nodes")
    assert np.isfinite(got).all() and (got >= 0).all() and (got <= 1).all()
    np.testing.assert_allclose(got, 0.5, atol=1e-12)  # everyone rates everything 1 (or K)


# --- the API --------------------------------------------------------------------------------

def test_units_columns_and_order(interacting):
    pairs = pd.DataFrame({"prompt_id": ["p", "p"], "item_a": ["i00", "i02"],
                          "item_b": ["i01", "i03"]})
    pop = pair_preferences(interacting, pairs, "toxicity")
    assert list(pop.columns) == ["prompt_id", "item_a", "item_b", "population", "preference"]
    target = pair_preferences(interacting, pairs, "toxicity", population=pd.DataFrame(
        {"gender": ["male"], "politics": ["conservative"], "proportion": [1.0]}))
    assert set(target["population"]) == {"target"}
    group = pair_preferences(interacting, pairs, "toxicity", unit="group",
                             group={"politics": "conservative", "gender": "male"})
    assert list(group.columns) == ["prompt_id", "item_a", "item_b", "politics", "gender",
                                   "preference"]
    np.testing.assert_allclose(group["preference"], target["preference"], atol=1e-12)
    raters = pair_preferences(interacting, pairs, "toxicity", unit="rater", draws=5)
    assert len(raters) == 2 * 24 and raters["rater_id"].iloc[:24].tolist() == \
        [f"r{i:02d}" for i in range(24)]
    empty = pair_preferences(interacting, pairs.iloc[:0], "toxicity")
    assert empty.empty and "preference" in empty.columns


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"unit": "item"}, r"unknown unit 'item'"),
    ({"group": {"politics": "liberal"}}, r"group=\{'politics': 'liberal'\} is only used with "
                                         r"unit='group'"),
    ({"unit": "group"}, r"unit='group' needs group=\{factor: level\}"),
    ({"unit": "group", "group": {"age": "60+"}}, r"group factor 'age' is not a factor of the "
                                                 r"fit; factors are gender, politics"),
    ({"unit": "group", "group": {"politics": "green"}},
     r"group level politics='green' is not in the fit; levels of 'politics' are liberal, "
     r"conservative, moderate"),
    ({"raters": ["r01"]}, r"raters is only used with unit='rater'"),
    ({"unit": "rater", "raters": ["r99"]}, r"rater\(s\) 'r99' not in the fit"),
    ({"dimension": "bias"}, r"dimension\(s\) 'bias' not in the fit"),
    ({"draws": 0}, r"draws=0: expected a positive integer"),
    ({"pairs": pd.DataFrame({"item_a": ["i00"], "item_b": ["nope"]})},
     r"item\(s\) 'nope' not in the fit"),
    ({"pairs": pd.DataFrame({"a": ["i00"], "b": ["i01"]})},
     r"pairs lack column\(s\) item_a, item_b"),
])
def test_bad_arguments_name_the_problem(interacting, kwargs, message):
    args = {"pairs": pd.DataFrame({"item_a": ["i00"], "item_b": ["i01"]}),
            "dimension": "toxicity", **kwargs}
    with pytest.raises(ModelError, match=message):
        pair_preferences(interacting, **args)


def test_several_dimensions_average_their_probabilities_then_orient_and_drop():
    candidates = pd.DataFrame({"prompt_id": ["p"] * 3, "item_a": ["a", "a", "b"],
                               "item_b": ["b", "c", "c"], "unit": ["population"] * 3})
    prefs = {"toxicity": np.array([0.9, 0.2, 0.55]), "helpfulness": np.array([0.7, 0.4, 0.5])}
    pairs, counts = soft_pairs(candidates, prefs, {"toxicity": 1.0, "helpfulness": 3.0}, 0.1)
    # (0.9 + 3 * 0.7) / 4 = 0.75; (0.2 + 1.2) / 4 = 0.35 -> c over a, 0.65; 0.5125 dropped
    assert pairs[["chosen_id", "rejected_id"]].values.tolist() == [["a", "b"], ["c", "a"]]
    assert pairs["weight"].tolist() == pytest.approx([0.75, 0.65])
    assert counts["dropped"] == {"margin": 1} and counts["units"] == 1


# --- a fitted survey with a strong interaction ---------------------------------------------

DIMENSION = "emotional_awareness"


@pytest.fixture(scope="module")
def strong():
    survey = simulate_survey(seed=4, n_raters=300, n_prompts=16, prompts_per_rater=3,
                             dimensions=[DIMENSION], interactions={DIMENSION: {"politics": 1.5}})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fit diagnostics")
        fitted = fit_model(survey.table, ["gender", "politics"],
                           {"gender": "female", "politics": "liberal"},
                           interactions=["politics"], draws=300, tune=300, chains=2, seed=1,
                           progress=False)
    return survey, fitted


def true_item_effects(survey, level: str) -> pd.Series:
    """v_j + w_politics[j, level], the truth of the group's ordering (other factors additive)."""
    v = survey.truth["item_effects"]
    dev = survey.truth["item_deviations"][DIMENSION]["politics"]
    return (pd.Series(v[DIMENSION], index=v["item_id"])
            + pd.Series(dev[level], index=dev["item_id"]))


@pytest.mark.slow
def test_group_soft_pairs_follow_the_groups_own_ordering(strong, tmp_path):
    survey, fitted = strong
    chosen = {}
    for level in ("liberal", "conservative"):
        pairs = make_pairs(survey.table, fitted, strategy="soft", dimension=DIMENSION,
                           group={"politics": level}, margin=0.0, split=None)
        frame = pairs.frame
        truth = true_item_effects(survey, level)  # emotional awareness: higher is better
        gap = (truth.reindex(frame.chosen_id).to_numpy()
               - truth.reindex(frame.rejected_id).to_numpy())
        large = np.abs(gap) > 1.0
        assert large.sum() >= 30
        assert (gap[large] > 0).mean() >= 0.85, (level, (gap[large] > 0).mean())
        chosen[level] = {tuple(sorted((c, r))): c for c, r in
                         zip(frame.chosen_id, frame.rejected_id, strict=True)}
    assert pairs.manifest["inputs"]["fit_interactions"] == ["politics"]
    assert pairs.manifest["inputs"]["fit_effects"] == "dummy"
    saved = json.loads((pairs.save(tmp_path / "pairs") / "manifest.json").read_text())
    assert saved["inputs"]["fit_interactions"] == ["politics"]
    # where the liberal and conservative truths order a pair differently (both clearly), the
    # two pair sets point different ways on a clear share of those pairs; where they agree,
    # they rarely do
    lib, con = true_item_effects(survey, "liberal"), true_item_effects(survey, "conservative")
    keys = list(chosen["liberal"])
    a, b = (np.array([k[i] for k in keys]) for i in (0, 1))
    d_lib = lib.reindex(a).to_numpy() - lib.reindex(b).to_numpy()
    d_con = con.reindex(a).to_numpy() - con.reindex(b).to_numpy()
    differ = np.array([chosen["liberal"][k] != chosen["conservative"][k] for k in keys])
    opposite = (np.sign(d_lib) != np.sign(d_con)) & (np.abs(d_lib) > 0.5) & (np.abs(d_con) > 0.5)
    agree = (np.sign(d_lib) == np.sign(d_con)) & (np.abs(d_lib) > 1) & (np.abs(d_con) > 1)
    assert opposite.sum() >= 10
    assert differ[opposite].mean() >= 0.6, differ[opposite].mean()
    assert differ[agree].mean() <= 0.1, differ[agree].mean()
