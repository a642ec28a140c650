"""The PyMC hierarchical cumulative-logit model, joint over dimensions.

For rating ``y`` of rater ``r`` on item ``j`` and dimension ``d``::

    P(y <= k) = logistic(c[d, k] - eta),   eta = x_r . beta[d] + u[r, d] + v[j, d]
    u[r, :] ~ MvNormal(0, diag(rater_sd) R diag(rater_sd)),  R ~ LKJ(eta=2)
    v[j, d] ~ Normal(0, item_sd[d])
    beta ~ Normal(0, 1);  c[d, :] ~ Normal(0, 2.5), ordered;  rater_sd, item_sd ~ HalfNormal(1)

Parametrisation (each choice measured, see ``benchmarks/fit_speed.py``):

* factors enter at the rater level and the rater effect is centred on them:
  ``mu[r, :] ~ MvNormal(x_r . beta, Sigma)`` and ``eta = mu[r, d] + v[j, d]``, so the gradient of
  ``beta`` runs through R raters, not N ratings;
* the dummy columns are centred (minus their sample mean), which decorrelates ``beta`` from the
  cut points; the cut points reported (``cutpoints``) are converted back to uncentred dummies;
* the rater effects enter the likelihood minus their mean over the raters (per dimension), and
  that mean is added back to the reported cut points: the ratings identify only ``c - mean(u)``,
  and otherwise the cut points and the common shift of all R rater effects (held by the prior
  alone, sd ``rater_sd / sqrt(R)``) form a ridge that a diagonal mass matrix follows slowly.
  ``rater_effect`` keeps its meaning (with its mean), and so does every label computed from it;
  the model is the same but for the cut points' prior, which now sits on ``c - mean(u)``
  (``cutpoints_centred``), a shift of about ``1 / sqrt(R)`` rater sds against the prior's sd
  of 2.5. Measured (``benchmarks/fit_speed.py onedim-process``, 1000 draws): min bulk ESS
  (a cut point) 1,147 -> 1,329 (``rater_mean_out=False`` for the old form);
* each dimension's cut points are sampled from the one nearest its median rating outward (an
  anchor and log gaps, :mod:`disagree.model.cutpoints`), so a cut point of a rare category
  moves its own gap alone (``cutpoints_anchored=False`` for PyMC's ``ordered``);
* the likelihood evaluates only the observed category, with
  ``log P(y=k) = log_sigmoid(c_k - eta) + log_sigmoid(eta - c_{k-1})
  + log(1 - exp(c_{k-1} - c_k))``, the first two terms with two divisions per rating and no
  ``log`` (see :func:`ordinal_loglik`); the last term does not depend on ``eta`` and is
  summed once per category from counts.

Named dims: ``dimension``, ``factor_level``, ``rater``, ``item``, ``cutpoint``
(``dimension_bis`` is the second axis of the correlation matrix).

Group-by-item interactions (``interactions=[f, ...]``). For each interaction factor ``f`` with
levels ``1..L_f``, an item-by-level deviation enters ``eta`` for the raters of that level::

    eta += w_f[j, level_f(r), d],   w_f[:, :, d] ~ ZeroSumNormal(item_group_sd[d, f]) over
                                     items x levels (sums to zero along both axes)
    item_group_sd[d, f] ~ HalfNormal(0.5)

The deviations of an item sum to zero over the levels, so ``item_effect`` stays the
(unweighted) average of the levels' item effects and every level, reference included, has a
deviation drawn from the same distribution. The alternative, the reference level at zero, would
make ``item_effect`` the reference group's item effect and give the other levels deviations
with twice the prior variance of their differences, so results would depend on which level is
the reference; the zero-sum constraint does not. The deviations of a level also sum to zero
over the items, so a level's average shift is carried by ``beta`` alone: with deviations free
along the items, ``beta`` and each level's mean deviation would trade off against each other
(one direction the likelihood cannot see), which measured as a bulk ESS of 330 for the
coefficients at 1000 draws where the plain model has over 1,500. This is the usual
identification of a two-way interaction; the simulator draws deviations that sum to zero over
levels only, and their small mean over items (sd ``item_group_sd / sqrt(J)``) is part of the
true level effect that the contrasts measure. (With ``J`` items and ``L`` levels the marginal
sd of one deviation is ``item_group_sd * sqrt((1 - 1/J)(1 - 1/L))``.) The prior scale
0.5 is half the item effects' 1.0: a group's view of an item is expected to differ from the
shared one by less than items differ from each other. The deviations are non-centred
(``w = item_group_sd * ZeroSumNormal(1)``) by default. Measured: with a real interaction and
30 ratings an item x level cell (``benchmarks/fit_speed.py interactions``: one dimension,
1,095 raters x 25 responses) the centred form is better, min bulk ESS 832 vs 619 at 1000
draws, 13.9 vs 9.9 per whole-process second; but without a real interaction the sd sits at
zero and the centred form has a funnel: bulk ESS 4 of ``item_group_sd`` at 17 ratings a cell
(the test suite's survey without interactions, 2 x 500 draws), where non-centred gives 131.
A user asking whether groups disagree must get a working fit when they do not, and in the
study's design a cell holds about 6 ratings, so non-centred is the default
(``interaction_centred=True`` for dense data with a clear interaction).

Posterior: ``item_group_sd`` with dims ``(dimension, factor)`` (coordinate ``factor``: the
interaction factors) and ``item_group_effect`` with dims ``(item, interaction_level,
dimension)``; ``interaction_level`` labels are ``factor[level]`` over every level of every
interaction factor, references included.

Interactions on some dimensions only (``interactions={dimension: [factor, ...]}``,
``spec.interaction_dimensions``). A factor's deviations are sampled for its dimensions only
(``item_group_z_f`` or ``item_group_f`` of shape ``(D_f, J, L_f)``, the ``D_f`` dimensions in
``spec.dimensions`` order), and the posterior keeps the same names and dims: the
``item_group_effect`` of a factor is exactly zero on a dimension without its deviations, and
``item_group_sd`` is a Deterministic, exactly zero in those cells, made from the free sds
``item_group_sd_free ~ HalfNormal(0.5)`` with dim ``interaction_cell`` (labels
``dimension:factor``, dimension-major, ``spec.interaction_cells``). Every later stage (LOO,
contrasts, labels) reads the zeros as "no deviation"; the diagnostics and the prior
sensitivity judge the free sds, not the constant cells. A sd whose interaction is absent sits
at zero and mixes worst of all the parameters (on the five-dimension study survey with three
interaction factors on every dimension: bulk ESS 50-190 at 1000 draws for the 12 of 15 sds
truly zero), so leaving out the cells known to be empty is both cheaper and better mixed. A
mapping that gives every factor every dimension is the list form, graph and names included.

Level effects (``effects``). ``"dummy"``: ``beta[d, p] ~ Normal(0, 1)`` on the treatment dummies
of the non-reference levels. ``"pooled"``: a factor's level effects are a batch,
``a_f[d, :] ~ ZeroSumNormal(level_sd[d, f])``, ``level_sd ~ HalfNormal(1)`` (non-centred), and
``beta`` (still reported, dims ``(dimension, factor_level)``) is the deterministic difference
``a_f[d, level] - a_f[d, reference]``: the prior treats every level alike, so the reference
changes nothing but the labels, and the scale of a factor's effects is learned from all its
levels (a rare level is pooled toward the factor's others). Posterior: ``level_effect`` with
dims ``(dimension, level)`` (labels ``factor[level]``) and ``level_sd`` with dims
``(dimension, level_factor)``.

The default stays ``"dummy"``. Measured (``benchmarks/interval_coverage.py``, ``--effects``):
on the study's design both cover 95% intervals equally (0.958 of 72 log-odds intervals each over
four surveys; mean absolute error of ``relative_pct`` 5.3 vs 5.2 points), the study's factors have
large reference groups, and a factor with two levels is reference-free either way (swapping
the reference flips the sign of one symmetric coefficient). Where a factor has many levels and
a small reference group the choice matters: on POPQUORN (``benchmarks/
popquorn_interactions.py reference``) the implied age contrast 60-64 minus 25-29 is +1.108
(reference 18-24) vs +0.940 (reference 25-29) with ``"dummy"``, 11.9 combined MCSE apart, and
+0.381 vs +0.356 with ``"pooled"``, 1.2 MCSE apart. Use ``"pooled"`` for such factors.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import ordered

from disagree.model.cutpoints import AnchoredOrdered, anchor_cutpoints, category_counts
from disagree.model.likelihood import ordinal_loglik_op
from disagree.model.spec import ModelData, ModelSpec


def build_model(spec: ModelSpec, data: ModelData, rater_centred: bool = False,
                item_centred: bool = True, item_zero_sum: bool = True,
                interaction_centred: bool = False, rater_mean_out: bool = True,
                cutpoints_anchored: bool = True) -> pm.Model:
    """Build the PyMC model of ``spec`` on ``data``.

    Parameters
    ----------
    spec : ModelSpec
    data : ModelData
    rater_centred : bool
        Centred (``mu ~ MvNormal(x beta, Sigma)``) or non-centred (``mu = x beta + z L'``)
        rater effects.
    item_centred : bool
        Centred (``v ~ Normal(0, sd)``) or non-centred (``v = sd * z``) item effects.
    item_zero_sum : bool
        Item effects sum to zero within each dimension (``ZeroSumNormal``), so that their
        common shift, otherwise pinned only by the prior, is carried by the cut points alone;
        non-centred, ``v = sd * z`` with ``z`` the zero-sum standard normal.
    interaction_centred : bool
        Centred (``w ~ ZeroSumNormal(sd)``) or non-centred (``w = sd * ZeroSumNormal(1)``)
        group-by-item deviations.
    rater_mean_out : bool
        The rater effects enter the likelihood minus their mean, which the reported cut points
        carry (see the module docstring).
    cutpoints_anchored : bool
        Sample each dimension's cut points from the one nearest the median rating outward
        (:class:`~disagree.model.cutpoints.AnchoredOrdered`), or from the lowest up (PyMC's
        ``ordered``); the same model either way.

    Returns
    -------
    pymc.Model
    """
    k, n_dims = spec.scale, len(spec.dimensions)
    x = data.x - data.x.mean(axis=0) if data.x.shape[1] else data.x
    x_mean = data.x.mean(axis=0)
    coords = {"dimension": list(spec.dimensions), "dimension_bis": list(spec.dimensions),
              "factor_level": spec.coef_labels, "rater": data.rater_ids, "item": data.item_ids,
              "cutpoint": [f"{i}|{i + 1}" for i in range(1, k)]}
    if spec.interactions:
        coords |= {"factor": list(spec.interactions),
                   "interaction_level": spec.interaction_labels}
    p = spec.priors
    with pm.Model(coords=coords) as model:
        beta = _level_effects(spec) if spec.effects == "pooled" else \
            pm.Normal("beta", 0.0, p["beta_sd"], dims=("dimension", "factor_level"))
        start = np.linspace(-2, 2, k - 1)
        anchor = anchor_cutpoints(data.y, data.dim, n_dims, k)
        cut_transform = AnchoredOrdered(anchor if n_dims > 1 else anchor[0], k - 1) \
            if cutpoints_anchored else ordered
        if n_dims > 1:
            cut_c = pm.Normal("cutpoints_centred", mu=0.0, sigma=p["cutpoint_sd"],
                              transform=cut_transform, dims=("dimension", "cutpoint"),
                              initval=np.tile(start, (n_dims, 1)))
        else:  # a (1, K-1) ordered matrix breaks ADVI's shape inference: sample a vector
            cut_c = pm.Normal("cutpoints_centred", mu=0.0, sigma=p["cutpoint_sd"],
                              transform=cut_transform, dims="cutpoint", initval=start)[None, :]
        xb = pt.dot(x, beta.T)  # (R, D)
        if n_dims > 1:
            chol, corr, sds = pm.LKJCholeskyCov(
                "rater_chol", n=n_dims, eta=p["lkj_eta"],
                sd_dist=pm.HalfNormal.dist(p["rater_sd"], shape=n_dims), compute_corr=True)
            pm.Deterministic("rater_corr", corr, dims=("dimension", "dimension_bis"))
            rater_sd = pm.Deterministic("rater_sd", sds, dims="dimension")
            if rater_centred:
                mu = pm.MvNormal("rater_mu", mu=xb, chol=chol, dims=("rater", "dimension"))
            else:
                z = pm.Normal("rater_z", 0.0, 1.0, dims=("rater", "dimension"))
                mu = xb + pt.dot(z, chol.T)
        else:
            rater_sd = pm.HalfNormal("rater_sd", p["rater_sd"], dims="dimension")
            if rater_centred:
                mu = pm.Normal("rater_mu", mu=xb, sigma=rater_sd, dims=("rater", "dimension"))
            else:
                z = pm.Normal("rater_z", 0.0, 1.0, dims=("rater", "dimension"))
                mu = xb + z * rater_sd
        pm.Deterministic("rater_effect", mu - xb, dims=("rater", "dimension"))
        mu_bar = mu.mean(axis=0) if rater_mean_out else pt.zeros(n_dims)
        pm.Deterministic("cutpoints", cut_c + (pt.dot(beta, x_mean) + mu_bar)[:, None],
                         dims=("dimension", "cutpoint"))
        mu = mu - mu_bar
        item_sd = pm.HalfNormal("item_sd", p["item_sd"], dims="dimension")
        if item_zero_sum and item_centred:  # zero-sum acts on the last axis: (dimension, item)
            v_t = pm.ZeroSumNormal("item_effect_t", sigma=item_sd[:, None],
                                   dims=("dimension", "item"))
            v = pm.Deterministic("item_effect", v_t.T, dims=("item", "dimension"))
        elif item_zero_sum:
            z_t = pm.ZeroSumNormal("item_z_t", sigma=1.0, dims=("dimension", "item"))
            v = pm.Deterministic("item_effect", (z_t * item_sd[:, None]).T,
                                 dims=("item", "dimension"))
        elif item_centred:
            v = pm.Normal("item_effect", 0.0, item_sd, dims=("item", "dimension"))
        else:
            z_item = pm.Normal("item_z", 0.0, 1.0, dims=("item", "dimension"))
            v = pm.Deterministic("item_effect", z_item * item_sd, dims=("item", "dimension"))
        n_raters, n_items = len(data.rater_ids), len(data.item_ids)
        terms = [(mu.flatten(), data.rater * n_dims + data.dim, n_raters * n_dims),
                 (v.flatten(), data.item * n_dims + data.dim, n_items * n_dims)]
        if spec.interactions:
            terms += _interactions(spec, data, interaction_centred)
        pm.Potential("loglik", ordinal_loglik(data.y, data.dim, terms, cut_c, k, n_dims))
    return model


def _level_effects(spec: ModelSpec) -> pt.TensorVariable:
    """``effects="pooled"``: zero-sum level effects per factor; return ``beta`` (D, P)."""
    n_dims = len(spec.dimensions)
    multi = [f for f in spec.factors if len(spec.levels[f]) > 1]
    model = pm.modelcontext(None)
    model.add_coords({"level": [f"{f}[{lv}]" for f in multi for lv in spec.levels[f]],
                      "level_factor": multi})
    level_sd = pm.HalfNormal("level_sd", spec.priors["level_sd"],
                             dims=("dimension", "level_factor"))
    effects, diffs = [], []
    for i, f in enumerate(multi):
        z = pm.ZeroSumNormal(f"level_z_{f}", sigma=1.0, shape=(n_dims, len(spec.levels[f])))
        a = z * level_sd[:, i][:, None]
        effects.append(a)
        diffs.append(a[:, 1:] - a[:, :1])
    pm.Deterministic("level_effect", pt.concatenate(effects, axis=1), dims=("dimension", "level"))
    return pm.Deterministic("beta", pt.concatenate(diffs, axis=1),
                            dims=("dimension", "factor_level"))


def _interactions(spec: ModelSpec, data: ModelData, centred: bool
                  ) -> list[tuple[pt.TensorVariable, np.ndarray, int]]:
    """Register the group-by-item deviations; return their terms of ``eta``, one a factor.

    The terms are ``(table, index, length)`` as :func:`ordinal_loglik` takes them.
    """
    n_dims, n_items = len(spec.dimensions), len(data.item_ids)
    sd = _group_sd(spec)
    parts, terms = [], []
    for i, f in enumerate(spec.interactions):
        n_levels = len(spec.levels[f])
        rows = np.array([spec.dimensions.index(d) for d in spec.interaction_dims(f)])
        every = len(rows) == n_dims
        shape = (len(rows), n_items, n_levels)  # zero-sum over the last two axes
        scale = (sd[:, i] if every else sd[rows, i])[:, None, None]
        if centred:
            w = pm.ZeroSumNormal(f"item_group_{f}", sigma=scale, shape=shape, n_zerosum_axes=2)
        else:
            w = pm.ZeroSumNormal(f"item_group_z_{f}", sigma=1.0, shape=shape,
                                 n_zerosum_axes=2) * scale
        if not every:  # zeros on the dimensions without deviations of f
            w = pt.set_subtensor(pt.zeros((n_dims, n_items, n_levels))[rows], w)
        w = w.transpose(1, 2, 0)  # (J, L, D)
        parts.append(w)
        level = data.codes[f][data.rater]
        terms.append((w.flatten(), (data.item * n_levels + level) * n_dims + data.dim,
                      n_items * n_levels * n_dims))
    pm.Deterministic("item_group_effect", pt.concatenate(parts, axis=1),
                     dims=("item", "interaction_level", "dimension"))
    return terms


def _group_sd(spec: ModelSpec) -> pt.TensorVariable:
    """``item_group_sd`` (D, F): free over every cell, or zeros off ``interaction_cells``."""
    scale = spec.priors["item_group_sd"]
    if not spec.interaction_dimensions:  # every factor on every dimension
        return pm.HalfNormal("item_group_sd", scale, dims=("dimension", "factor"))
    cells = spec.interaction_cells
    pm.modelcontext(None).add_coord("interaction_cell", [f"{d}:{f}" for d, f in cells])
    free = pm.HalfNormal("item_group_sd_free", scale, dims="interaction_cell")
    flat = np.array([spec.dimensions.index(d) * len(spec.interactions)
                     + spec.interactions.index(f) for d, f in cells])
    full = pt.set_subtensor(pt.zeros(len(spec.dimensions) * len(spec.interactions))[flat], free)
    return pm.Deterministic("item_group_sd", full.reshape((len(spec.dimensions),
                                                            len(spec.interactions))),
                            dims=("dimension", "factor"))


def ordinal_loglik(y: np.ndarray, group: np.ndarray,
                   terms: list[tuple[pt.TensorVariable, np.ndarray, int]],
                   cutpoints: pt.TensorVariable, k: int, n_groups: int) -> pt.TensorVariable:
    """Return the summed cumulative-logit log-likelihood of 0-based categories ``y``.

    Parameters
    ----------
    y : ndarray of int
        Observed categories, 0..K-1.
    group : ndarray of int
        Row of ``cutpoints`` (the dimension) of each observation.
    terms : list of (tensor, ndarray of int, int)
        The linear predictors: ``eta[i] = sum over terms of table[index[i]]``, each table a
        flat vector of effects (rater, item, interaction), its index per observation and its
        length.
    cutpoints : tensor (G, K-1)
        Ordered cut points per group.
    k : int
        Number of categories K.
    n_groups : int
        Number of rows G of ``cutpoints``.

    Returns
    -------
    tensor
        The scalar log-likelihood, exact: the observations' part in one fused pass
        (:mod:`disagree.model.likelihood`: two divisions per rating, one ``exp`` per effect
        and one ``log`` in all, no difference of probabilities), and the interior categories'
        ``log(1 - exp(c_{k-1} - c_k))`` summed once per category from counts.
    """
    zero = pt.zeros_like(cutpoints[:, :1])
    a = pt.concatenate([pt.exp(-cutpoints), zero], axis=1).flatten()  # (G * K,)
    b = pt.concatenate([zero, pt.exp(cutpoints)], axis=1).flatten()
    offsets = np.cumsum([0] + [size for _, _, size in terms[:-1]])
    theta = pt.concatenate([table for table, _, _ in terms])
    index = np.stack([idx + off for (_, idx, _), off in zip(terms, offsets, strict=True)],
                     axis=1).astype(np.int64)
    ll = ordinal_loglik_op(theta, a, b, index, (group * k + y).astype(np.int64))[0]
    counts = category_counts(y, group, n_groups, k)
    gap = pt.log1mexp(-(cutpoints[:, 1:] - cutpoints[:, :-1]))  # (G, K-2), interior categories
    return ll + (counts[:, 1:-1] * gap).sum()
