"""A survey simulator calibrated to the paper's headline effects, with its truth.

Generating process, per dimension ``d`` (cumulative logit, ``K`` categories)::

    P(rating <= k) = logistic(c[d, k] - eta)
    eta = x_rater @ beta[d] + u[rater, d] + v[item, d] + sum_f w_f[item, level_f(rater), d]

* raters from the US and Germany with gender, politics, ethnicity, country and age band, drawn
  from per-country shares; ``x_rater`` is their dummy coding with the references below;
* rater effects ``u[rater, :] ~ MVN(0, diag(sd) R diag(sd))``, correlated across dimensions;
* each response has three latent traits (toxicity, helpfulness, stereotyping); its item effect
  on each dimension is a loading of these traits plus noise, so dimensions are correlated at the
  item level (Figure 1 is not trivial), and its text is assembled from phrases chosen by the
  traits, so a text model can learn them;
* group-by-item interactions ``w_f`` (``interactions``: dimension -> {factor: sd}) shift the
  item effects by the rater's level of factor ``f``, so groups disagree about *which* response
  is better; they sum to zero over the levels within an item (PyMC's ``ZeroSumNormal``, see
  :mod:`disagree.data.interactions`) and come from their own random stream; with
  ``interaction_traits`` > 0 that share of their variance follows the responses' traits
  (through per-level loadings), so a group's taste can be learned from the texts;
* each rater sees ``prompts_per_rater`` prompts and rates every response of them on every
  dimension (defaults: 1,095 raters x 5 responses x 5 dimensions = 27,375 ratings).

Calibration: the coefficients named in ``targets`` are solved (Brent's method, jointly by
coordinate sweeps) so that the process's own standardised ``relative_pct`` contrast (see
:mod:`disagree.ordinal`: P(rating >= 4), averaged over the items, the rater-effect distribution
and the sample's mix of other attributes) equals the target. Defaults are the paper's: male vs
female toxicity -18%, conservative vs liberal emotional awareness +27.9%, Black vs White
emotional awareness +44%. With interactions, each group's probability is averaged over the items
as that group rates them (its own ``v + w``), in calibration and in the truth alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from disagree._io import write_json, write_table
from disagree.data import interactions as inter
from disagree.data import texts
from disagree.data.ratings import RatingTable, load_ratings
from disagree.data.scale import high_threshold
from disagree.errors import DataError
from disagree.ordinal import coef_names, design_matrix, estimand_records, standardised_contrasts

DIMENSIONS = ("toxicity", "emotional_awareness", "sensitivity", "stereotypical_bias",
              "helpfulness")
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White", "country": "US",
             "age": "30-44"}
#: Rater factors an effect, target or interaction may name.
FACTORS = ("gender", "politics", "ethnicity", "country", "age")
#: The paper's headline contrasts (relative_pct, in percent).
PAPER_TARGETS = {
    "toxicity|gender|male": -18.0,
    "emotional_awareness|politics|conservative": 27.9,
    "emotional_awareness|ethnicity|Black": 44.0,
}
_SHARES = {
    "US": {"gender": {"female": 0.50, "male": 0.47, "non-binary": 0.03},
           "politics": {"liberal": 0.38, "moderate": 0.34, "conservative": 0.28},
           "ethnicity": {"White": 0.58, "Black": 0.15, "Asian": 0.08, "Hispanic": 0.13,
                         "Other": 0.06},
           "age": {"18-29": 0.24, "30-44": 0.31, "45-59": 0.27, "60+": 0.18}},
    "Germany": {"gender": {"female": 0.50, "male": 0.48, "non-binary": 0.02},
                "politics": {"liberal": 0.36, "moderate": 0.40, "conservative": 0.24},
                "ethnicity": {"White": 0.84, "Black": 0.04, "Asian": 0.04, "Hispanic": 0.01,
                              "Other": 0.07},
                "age": {"18-29": 0.22, "30-44": 0.30, "45-59": 0.29, "60+": 0.19}},
}
#: Smaller, uncalibrated effects (log-odds of a higher rating) that make the survey realistic.
_EFFECTS = {
    "toxicity|politics|conservative": -0.15, "toxicity|ethnicity|Black": 0.10,
    "toxicity|age|60+": 0.15, "toxicity|country|Germany": 0.10,
    "emotional_awareness|gender|male": -0.10, "emotional_awareness|politics|moderate": 0.10,
    "sensitivity|gender|male": -0.20, "sensitivity|politics|conservative": -0.20,
    "stereotypical_bias|gender|male": -0.25, "stereotypical_bias|ethnicity|Black": 0.30,
    "helpfulness|country|Germany": -0.20, "helpfulness|age|18-29": 0.15,
}
#: Loadings of the item effect of each dimension on the traits (toxicity, helpfulness, bias).
_LOADINGS = {"toxicity": (1.0, 0.0, 0.3), "emotional_awareness": (-0.6, 0.6, 0.0),
             "sensitivity": (-0.7, 0.3, -0.3), "stereotypical_bias": (0.3, 0.0, 1.0),
             "helpfulness": (-0.3, 1.0, 0.0)}
#: Location of each dimension's cut points (positive: ratings skew low).
_SHIFT = {"toxicity": 1.2, "emotional_awareness": 0.3, "sensitivity": 0.0,
          "stereotypical_bias": 1.4, "helpfulness": -0.4}
#: Group-by-item interaction sds (dimension -> factor -> sd): the paper reports that models
#: trained on one group's preferences behave differently, so groups rank responses differently.
#: The sds are those the default loadings below imply (the sd of ``t @ A`` over the levels, with
#: the traits' correlations), so the deviations' trait and iid parts have the same variance.
_INTERACTIONS = {"toxicity": {"gender": 0.8},
                 "emotional_awareness": {"politics": 1.15, "ethnicity": 0.555}}
#: The default survey's share of the deviations' variance carried by the responses' traits: in
#: real surveys groups disagree about a response because of what it says.
_INTERACTION_TRAITS = 0.8
#: The default survey's level loadings on the traits (toxicity, helpfulness, stereotyping) of
#: the headline comparisons. Each weighs a trait the dimension's item effect does not load on
#: (so the deviations are nearly independent of the item effects, as the model assumes), and
#: the texts carry it: women rate helpful wording as less toxic than men do; liberal and
#: moderate raters find stereotyped wording more emotionally aware than conservatives do; White
#: raters find blunt but helpful wording more emotionally aware than Black raters do. Figure
#: 2's population judge sides with the larger group (White 71% of ratings, liberal + moderate
#: 75%, women and men half each), so its ``preference`` row is largest for White - Black and
#: near zero for female - male (README, "Figure 2").
_INTERACTION_LOADINGS = {
    "toxicity": {"gender": {"female": (0.0, 0.8, 0.0), "male": (0.0, -0.8, 0.0)}},
    "emotional_awareness": {"politics": {"liberal": (0.0, 0.0, 1.0),
                                         "moderate": (0.0, 0.0, 1.0),
                                         "conservative": (0.0, 0.0, -1.0)},
                            "ethnicity": {"White": (0.63, 0.63, 0.0),
                                          "Black": (-0.63, -0.63, 0.0)}}}
_RATER_CORR = {("toxicity", "stereotypical_bias"): 0.5, ("emotional_awareness", "sensitivity"): 0.5,
               ("emotional_awareness", "helpfulness"): 0.4, ("sensitivity", "helpfulness"): 0.3,
               ("toxicity", "emotional_awareness"): -0.2, ("toxicity", "helpfulness"): -0.2}


@dataclass
class SurveyConfig:
    """Every parameter of the generating process (all have paper-shaped defaults).

    Effects and targets are keyed ``"dimension|factor|level"``; a target (relative_pct, in
    percent) replaces the effect of the same key by a calibrated one. Dimensions missing from
    the dictionaries get neutral defaults, so any dimension names work. ``interactions`` maps a
    dimension to ``{factor: sd}`` of its group-by-item deviations (``{}``: none);
    ``interaction_traits`` (0..1) is the share of their variance carried by the responses'
    latent traits (0: none, the deviations are iid per item); ``interaction_loadings`` fixes
    the level loadings on the traits of some (dimension, factor) pairs (dimension -> factor ->
    level -> three loadings; unlisted levels load 0) instead of drawing them.
    """

    n_raters: int = 1095
    n_prompts: int = 60
    responses_per_prompt: int = 5
    prompts_per_rater: int = 1
    scale: int = 5
    dimensions: tuple[str, ...] = DIMENSIONS
    country_shares: dict[str, float] = field(default_factory=lambda: {"US": 0.5, "Germany": 0.5})
    shares: dict[str, dict[str, dict[str, float]]] = field(default_factory=lambda: _SHARES)
    reference: dict[str, str] = field(default_factory=lambda: dict(REFERENCE))
    effects: dict[str, float] = field(default_factory=lambda: dict(_EFFECTS))
    targets: dict[str, float] = field(default_factory=lambda: dict(PAPER_TARGETS))
    rater_sd: float | dict[str, float] = 0.8
    rater_corr: dict[tuple[str, str], float] = field(default_factory=lambda: dict(_RATER_CORR))
    item_loadings: dict[str, tuple[float, float, float]] = field(
        default_factory=lambda: dict(_LOADINGS))
    item_noise_sd: float = 0.35
    cut_spread: float = 1.4
    cut_shift: dict[str, float] = field(default_factory=lambda: dict(_SHIFT))
    missing_rate: float = 0.0
    interactions: dict[str, dict[str, float]] = field(
        default_factory=lambda: {d: dict(v) for d, v in _INTERACTIONS.items()})
    interaction_traits: float = _INTERACTION_TRAITS
    interaction_loadings: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = field(
        default_factory=lambda: _copy_loadings(_INTERACTION_LOADINGS))

    def check(self) -> None:
        """Raise :class:`DataError` naming the first inconsistent parameter."""
        if self.n_raters < 2 or self.n_prompts < 1 or self.responses_per_prompt < 1:
            raise DataError("n_raters must be >= 2 and n_prompts, responses_per_prompt >= 1")
        if not 1 <= self.prompts_per_rater <= self.n_prompts:
            raise DataError(f"prompts_per_rater={self.prompts_per_rater} must be in "
                            f"1..n_prompts ({self.n_prompts})")
        if self.scale < 2:
            raise DataError(f"scale={self.scale}: need at least 2 rating categories")
        if not 0 <= self.missing_rate < 1:
            raise DataError(f"missing_rate={self.missing_rate} must be in [0, 1)")
        factors = list(FACTORS)
        for key in list(self.effects) + list(self.targets):
            dim, factor, level = _split_key(key)
            if dim not in self.dimensions:
                raise DataError(f"effect {key!r}: unknown dimension {dim!r}; dimensions are "
                                f"{', '.join(self.dimensions)}")
            if factor not in factors:
                raise DataError(f"effect {key!r}: unknown factor {factor!r}; factors are "
                                f"{', '.join(factors)}")
            if level == self.reference[factor] or level not in self._levels()[factor]:
                raise DataError(f"effect {key!r}: {level!r} is not a non-reference level of "
                                f"{factor!r} ({', '.join(self._levels()[factor][1:])})")
        inter.check_interactions(self.interactions, self.dimensions, factors)
        inter.check_interaction_traits(self.interaction_traits)
        inter.check_loadings(self.interaction_loadings, self.interactions, self._levels())

    def _levels(self) -> dict[str, list[str]]:
        found: dict[str, set[str]] = {}
        for shares in self.shares.values():
            for factor, dist in shares.items():
                found.setdefault(factor, set()).update(dist)
        found["country"] = set(self.country_shares)
        return {f: [self.reference[f]] + sorted(v - {self.reference[f]})
                for f, v in found.items()}


@dataclass
class Survey:
    """A simulated survey: the long ratings, the validated table and the truth."""

    ratings: pd.DataFrame
    truth: dict
    config: SurveyConfig

    @property
    def table(self) -> RatingTable:
        """The ratings as a validated :class:`RatingTable`."""
        return load_ratings(self.ratings, scale=self.config.scale)

    def save(self, out_dir: str | os.PathLike[str], fmt: str = "parquet") -> Path:
        """Write ``ratings.<fmt>`` (csv or parquet) and ``truth.json`` into ``out_dir``."""
        if fmt not in ("csv", "parquet"):
            raise DataError(f"format {fmt!r}: expected 'csv' or 'parquet'")
        out = Path(out_dir)
        path = write_table(out / f"ratings.{fmt}", self.ratings)
        write_json(out / "truth.json", self.truth)
        return path

    def summary(self) -> str:
        """Return the calibrated true headline contrasts, one line each (as ``simulate`` prints)."""
        return truth_summary(self.truth)

    def headline(self) -> list[tuple[str, str, str]]:
        """``(dimension, factor, level)`` of each calibrated headline contrast."""
        return [_split_key(key) for key in self.truth["targets"]]


def truth_summary(truth: Mapping) -> str:
    """Format the calibrated headline contrasts of a ``truth.json`` (relative_pct)."""
    threshold = truth["high_threshold"]
    lines = [f"    calibrated true contrasts (relative_pct in P(rating >= {threshold})):"]
    for c in truth["contrasts"]:
        if c["measure"] == "relative_pct" and f"{c['dimension']}|{c['factor']}|{c['level']}" \
                in truth["targets"]:
            lines.append(f"    {c['dimension']:>20} {c['level']} vs {c['reference']}: "
                         f"{c['estimate']:+.1f}%")
    return "\n".join(lines)


def simulate_survey(seed: int = 0, config: SurveyConfig | None = None, **overrides) -> Survey:
    """Simulate a survey shaped like the study, with known (and calibrated) effects.

    Parameters
    ----------
    seed : int
        Seed of every random choice; the same seed gives byte-identical output.
    config : SurveyConfig, optional
        All parameters; defaults reproduce the paper's shape and headline effects.
    **overrides
        Fields of :class:`SurveyConfig` to change, e.g. ``n_raters=200``, ``scale=3`` or
        ``interactions={"emotional_awareness": {"politics": 0.6}}`` (``{}``: none) or
        ``interaction_traits=1.0`` (the deviations follow the responses' traits, see
        :mod:`disagree.data.interactions`). The default interactions come with their wording:
        ``interaction_traits=0.8`` and the fixed loadings of the headline comparisons
        (``interaction_loadings``); interactions you give are iid per item unless you also
        give ``interaction_traits`` (and, if you like, ``interaction_loadings``).

    Returns
    -------
    Survey
        ``ratings`` (long DataFrame), ``truth`` (JSON-ready dict: every parameter, the true
        coefficients, rater and item effects, the interaction sds and every item deviation,
        and the true standardised contrasts of every non-reference level on every dimension;
        with ``interaction_traits`` > 0 also ``interaction_traits``, the level loadings
        ``interaction_loadings`` and the items' latent traits ``item_traits``) and the config.
    """
    base = asdict(config or SurveyConfig())
    if "dimensions" in overrides:  # keep only the default effects of dimensions still present
        for key in ("effects", "targets"):
            if key not in overrides:
                base[key] = {k: v for k, v in base[key].items()
                             if k.split("|")[0] in overrides["dimensions"]}
        if "interactions" not in overrides:
            base["interactions"] = {d: v for d, v in base["interactions"].items()
                                    if d in overrides["dimensions"]}
    if "interactions" in overrides:  # interactions of your own: iid unless you say otherwise
        base["interaction_traits"] = 0.0
        base["interaction_loadings"] = {}
    elif "dimensions" in overrides:
        base["interaction_loadings"] = {d: v for d, v in base["interaction_loadings"].items()
                                        if d in overrides["dimensions"]}
    cfg = SurveyConfig(**{**base, **overrides})
    cfg.dimensions = tuple(cfg.dimensions)
    cfg.check()
    cfg.interactions = {d: {f: float(sd) for f, sd in fs.items()}
                        for d, fs in cfg.interactions.items()}
    cfg.interaction_traits = float(cfg.interaction_traits)
    rng = np.random.default_rng(seed)
    dims = list(cfg.dimensions)
    levels = cfg._levels()
    raters = _draw_raters(cfg, rng)
    traits, items = _draw_items(cfg, rng)
    n_dims, n_items = len(dims), len(items)
    load = np.array([cfg.item_loadings.get(d, (0.0, 0.0, 0.0)) for d in dims])
    item_eff = traits @ load.T + cfg.item_noise_sd * rng.standard_normal((n_items, n_dims))
    loadings = (inter.draw_loadings(seed, cfg.interactions, dims, levels,
                                    cfg.interaction_loadings)
                if cfg.interaction_traits > 0 else {})
    item_dev = inter.draw_deviations(seed, cfg.interactions, dims, levels, n_items, traits,
                                     cfg.interaction_traits, loadings)
    sd = np.array([cfg.rater_sd.get(d, 0.8) if isinstance(cfg.rater_sd, dict) else cfg.rater_sd
                   for d in dims])
    corr = _corr_matrix(dims, cfg.rater_corr)
    cov = corr * np.outer(sd, sd)
    rater_eff = rng.multivariate_normal(np.zeros(n_dims), cov, size=len(raters),
                                        method="cholesky")
    probs = (np.arange(1, cfg.scale) / cfg.scale)
    cuts = {d: (cfg.cut_spread * logit(probs) + cfg.cut_shift.get(d, 0.0)) for d in dims}
    names = coef_names(levels)
    x = design_matrix(raters, levels)
    beta = {d: np.array([cfg.effects.get(f"{d}|{f}|{lv}", 0.0) for f, lv in names]) for d in dims}
    threshold = high_threshold(cfg.scale)
    for k, d in enumerate(dims):
        _calibrate(d, beta[d], names, cfg.targets, cuts[d], item_eff[:, k], sd[k], raters,
                   levels, threshold, item_dev.get(d, {}))

    # assignment: balanced, every rater rates every response of their prompts on every dimension
    order = rng.permutation(len(raters))
    slots = (np.arange(len(raters))[:, None] * cfg.prompts_per_rater
             + np.arange(cfg.prompts_per_rater)) % cfg.n_prompts
    prompt_of = np.empty_like(slots)
    prompt_of[order] = slots
    pairs = [(r, p * cfg.responses_per_prompt + j) for r in range(len(raters))
             for p in prompt_of[r] for j in range(cfg.responses_per_prompt)]
    r_idx, i_idx = (np.array(a) for a in zip(*pairs, strict=True))
    frames = []
    for k, d in enumerate(dims):
        eta = x[r_idx] @ beta[d] + rater_eff[r_idx, k] + item_eff[i_idx, k]
        if d in item_dev:
            eta += inter.rating_offsets(item_dev[d], raters, levels, r_idx, i_idx)
        cdf = expit(cuts[d][None, :] - eta[:, None])
        u = rng.random(len(eta))
        rating = 1 + (u[:, None] > cdf).sum(axis=1)
        frames.append(pd.DataFrame({"rater_id": raters.index[r_idx], "item_id":
                                    items.index[i_idx], "dimension": d, "rating": rating}))
    long = pd.concat(frames, ignore_index=True)
    if cfg.missing_rate > 0:
        long = long[rng.random(len(long)) >= cfg.missing_rate]
    long = long.join(raters, on="rater_id").join(items, on="item_id")
    long = long.sort_values(["rater_id", "item_id"], kind="stable").reset_index(drop=True)
    long["rating"] = long["rating"].astype("int64")

    truth = _truth(seed, cfg, dims, levels, names, beta, cuts, sd, corr, raters, items,
                   rater_eff, item_eff, item_dev, threshold, traits, loadings)
    return Survey(long, truth, cfg)


def default_survey_path() -> Path:
    """Path of the bundled default survey (``data/ratings.parquet`` in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "data" / "ratings.parquet"


def load_default_survey() -> RatingTable:
    """Return the bundled default survey (seed 0), simulating it when the file is absent."""
    path = default_survey_path()
    if path.exists():
        return load_ratings(path, scale=5)
    return simulate_survey(seed=0).table


# --- pieces --------------------------------------------------------------------------------

def _copy_loadings(loadings: Mapping) -> dict:
    return {d: {f: {lv: tuple(a) for lv, a in lvs.items()} for f, lvs in fs.items()}
            for d, fs in loadings.items()}


def _split_key(key: str) -> tuple[str, str, str]:
    parts = key.split("|")
    if len(parts) != 3:
        raise DataError(f"effect key {key!r}: expected 'dimension|factor|level'")
    return parts[0], parts[1], parts[2]


def _draw_raters(cfg: SurveyConfig, rng: np.random.Generator) -> pd.DataFrame:
    countries = list(cfg.country_shares)
    p = np.array([cfg.country_shares[c] for c in countries])
    country = rng.choice(countries, size=cfg.n_raters, p=p / p.sum())
    cols = {"gender": [], "politics": [], "ethnicity": [], "age": []}
    for c in country:
        for factor in cols:
            dist = cfg.shares[c][factor]
            q = np.array(list(dist.values()))
            cols[factor].append(rng.choice(list(dist), p=q / q.sum()))
    width = len(str(cfg.n_raters))
    index = pd.Index([f"r{i + 1:0{width}d}" for i in range(cfg.n_raters)], name="rater_id")
    return pd.DataFrame({"gender": cols["gender"], "politics": cols["politics"],
                         "ethnicity": cols["ethnicity"], "country": country,
                         "age": cols["age"]}, index=index)


def _draw_items(cfg: SurveyConfig, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    n = cfg.n_prompts * cfg.responses_per_prompt
    corr = np.array([[1.0, -0.3, 0.5], [-0.3, 1.0, -0.2], [0.5, -0.2, 1.0]])
    traits = rng.multivariate_normal(np.zeros(3), corr, size=n, method="cholesky")
    prompts = texts.prompts(cfg.n_prompts, rng)
    rows = []
    width = len(str(cfg.n_prompts))
    for i in range(n):
        p, j = divmod(i, cfg.responses_per_prompt)
        rows.append({"item_id": f"p{p + 1:0{width}d}-{j + 1}", "prompt_id": f"p{p + 1:0{width}d}",
                     "prompt": prompts[p].text,
                     "response": texts.response(prompts[p], traits[i], rng)})
    return traits, pd.DataFrame(rows).set_index("item_id")


def _corr_matrix(dims: Sequence[str], pairs: Mapping[tuple[str, str], float]) -> np.ndarray:
    corr = np.eye(len(dims))
    for (a, b), r in pairs.items():
        if a in dims and b in dims:
            i, j = dims.index(a), dims.index(b)
            corr[i, j] = corr[j, i] = r
    try:
        np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        raise DataError("rater_corr does not give a positive-definite correlation matrix") from None
    return corr


def _calibrate(dim: str, beta: np.ndarray, names: list[tuple[str, str]],
               targets: Mapping[str, float], cuts: np.ndarray, item_eff: np.ndarray,
               sigma: float, raters: pd.DataFrame, levels: dict[str, list[str]],
               threshold: int, deviations: Mapping[str, np.ndarray]) -> None:
    """Solve, in place, the coefficients of ``dim`` that have a relative_pct target.

    ``deviations`` (factor -> (n_items, n_levels)) are the dimension's group-by-item
    deviations: each level's P(high) is averaged over the items as that level rates them.
    """
    mine = {names.index((f, lv)): t for key, t in targets.items()
            for d, f, lv in [_split_key(key)] if d == dim}
    if not mine:
        return
    item_deviations = inter.for_contrasts(deviations)

    def contrast(j: int, value: float) -> float:
        beta[j] = value
        f, lv = names[j]
        res = standardised_contrasts(cuts[None], beta[None], item_eff[None], np.array([sigma]),
                                     raters, levels, threshold, factors=[f],
                                     item_deviations=item_deviations)
        return float(res[(f, lv)]["relative_pct"][0])

    for _ in range(50):
        before = beta.copy()
        for j, target in mine.items():
            beta[j] = brentq(lambda b, j=j, t=target: contrast(j, b) - t, -6.0, 6.0, xtol=1e-10)
        if np.max(np.abs(beta - before)) < 1e-9:
            return
    raise DataError(f"calibration of {dim!r} did not converge")  # pragma: no cover


def _truth(seed: int, cfg: SurveyConfig, dims: list[str], levels: dict[str, list[str]],
           names: list[tuple[str, str]], beta: dict[str, np.ndarray],
           cuts: dict[str, np.ndarray], sd: np.ndarray, corr: np.ndarray,
           raters: pd.DataFrame, items: pd.DataFrame, rater_eff: np.ndarray,
           item_eff: np.ndarray, item_dev: inter.Deviations, threshold: int,
           traits: np.ndarray, loadings: inter.Loadings) -> dict:
    effects, contrasts, estimands = [], [], []  # estimands: every measure and rater
    for k, d in enumerate(dims):
        for (f, lv), b in zip(names, beta[d], strict=True):
            effects.append({"dimension": d, "factor": f, "level": lv,
                            "reference": levels[f][0], "log_odds": float(b)})
        rows = estimand_records(cuts[d], beta[d], item_eff[:, k], sd[k], raters, levels,
                                cfg.scale, inter.for_contrasts(item_dev.get(d, {})))
        estimands += [{"dimension": d, **r} for r in rows]
        today = {(r["factor"], r["level"], r["measure"]): r["estimate"] for r in rows
                 if r["rater"] == "new" and r["threshold"] in (None, threshold)}
        contrasts += [{"dimension": d, "factor": f, "level": lv, "reference": levels[f][0],
                       "measure": m.replace("mean_rating", "mean_diff"),
                       "estimate": today[(f, lv, m)]}
                      for f, lv in names for m in ("relative_pct", "pp", "mean_rating")]
    config = asdict(cfg)
    config["rater_corr"] = [[a, b, r] for (a, b), r in cfg.rater_corr.items()]
    if cfg.interaction_traits == 0:  # absent means 0: the truth of surveys before the option
        del config["interaction_traits"]
    if cfg.interaction_traits == 0 or not cfg.interaction_loadings:
        del config["interaction_loadings"]
    return {
        "seed": seed,
        "config": config,
        "levels": levels,
        "high_threshold": threshold,
        "targets": dict(cfg.targets),
        "effects": effects,
        "contrasts": contrasts, "estimands": estimands,
        "cutpoints": {d: cuts[d].tolist() for d in dims},
        "rater_sd": dict(zip(dims, sd.tolist(), strict=True)),
        "rater_corr": corr.tolist(),
        "rater_effects": {"rater_id": raters.index.tolist(),
                          **{d: np.round(rater_eff[:, k], 6).tolist() for k, d in enumerate(dims)}},
        "item_effects": {"item_id": items.index.tolist(),
                         **{d: np.round(item_eff[:, k], 6).tolist() for k, d in enumerate(dims)}},
        **inter.record(cfg.interactions, item_dev, items.index.tolist(), levels,
                       cfg.interaction_traits, loadings, traits),
    }
