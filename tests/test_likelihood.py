"""The fused cumulative-logit likelihood: value and gradient against a direct computation."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.special import expit

from disagree.model.build import ordinal_loglik
from disagree.model.likelihood import loglik_and_grad, register_jax

K, G = 4, 2
CUTS = np.array([[-1.0, 0.2, 1.5], [-0.5, 0.0, 2.0]])
MU = np.array([0.3, -0.7, 1.1])   # rater effects (one table)
V = np.array([0.5, -1.2])         # item effects (another)
RATER = np.array([0, 1, 2, 0, 2, 1])
ITEM = np.array([0, 1, 1, 0, 0, 1])
Y = np.array([0, 3, 1, 2, 3, 1])  # every category, bottom and top included
DIM = np.array([0, 1, 0, 1, 1, 0])


def direct(mu, v, cuts) -> float:
    """sum_i log(sigmoid(c_y - eta) - sigmoid(c_{y-1} - eta)), c_{-1} = -inf, c_K = +inf."""
    eta = mu[RATER] + v[ITEM]
    full = np.concatenate([np.full((G, 1), -np.inf), cuts, np.full((G, 1), np.inf)], axis=1)
    return float(np.log(expit(full[DIM, Y + 1] - eta) - expit(full[DIM, Y] - eta)).sum())


def compiled(mode: str):
    mu, v = pt.tensor("mu", shape=(3,)), pt.tensor("v", shape=(2,))  # static: JAX's split
    cuts = pt.tensor("cuts", shape=(G, K - 1))
    ll = ordinal_loglik(Y, DIM, [(mu, RATER, 3), (v, ITEM, 2)], cuts, K, G)
    return pytensor.function([mu, v, cuts], [ll, *pt.grad(ll, [mu, v, cuts])], mode=mode)


def numeric_grad(args, k, h=1e-6):
    out = np.zeros_like(args[k])
    for idx in np.ndindex(args[k].shape):
        up, down = [a.copy() for a in args], [a.copy() for a in args]
        up[k][idx] += h
        down[k][idx] -= h
        out[idx] = (direct(*up) - direct(*down)) / (2 * h)
    return out


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_value_and_gradient_equal_the_direct_computation(mode):
    value, *grads = compiled(mode)(MU, V, CUTS)
    assert value == pytest.approx(direct(MU, V, CUTS), rel=1e-12)
    for k, g in enumerate(grads):
        np.testing.assert_allclose(g, numeric_grad([MU, V, CUTS], k), rtol=1e-6, atol=1e-8)


def test_beyond_the_clip_the_gradient_in_the_effects_is_zero():
    mu = MU.copy()
    mu[0] = 400.0  # eta > 250 for rater 0's ratings
    value, g_mu, _, _ = compiled("NUMBA")(mu, V, CUTS)
    assert np.isfinite(value)
    assert g_mu[0] == 0.0 and g_mu[1] != 0.0


def test_jax_implementation_agrees():
    pytest.importorskip("jax")
    register_jax()
    value, *grads = compiled("JAX")(MU, V, CUTS)
    assert float(value) == pytest.approx(direct(MU, V, CUTS), rel=1e-10)
    for k, g in enumerate(grads):
        np.testing.assert_allclose(np.asarray(g), numeric_grad([MU, V, CUTS], k), rtol=1e-6,
                                   atol=1e-8)


def test_the_product_of_many_large_terms_gives_the_sum_of_their_logs():
    """The loop multiplies the terms and moves the exponent aside: no overflow, no lost digits."""
    rng = np.random.default_rng(0)
    n = 5000
    theta = rng.uniform(-30.0, 30.0, 40)  # terms up to exp(60): past 1e100 every few ratings
    index = rng.integers(0, 40, (n, 2))
    a = np.array([np.exp(-1.0), np.exp(-2.0), 0.0])  # three categories, one row
    b = np.array([0.0, np.exp(1.0), np.exp(2.0)])
    cat = rng.integers(0, 3, n)
    e = np.exp(theta[index].sum(axis=1))
    expected = -np.log1p(e * a[cat]).sum() - np.log1p(b[cat] / e).sum()
    total, g_theta, _, _ = loglik_and_grad(theta, a, b, index, cat)
    assert total == pytest.approx(expected, rel=1e-13)
    d = b[cat] / e / (1 + b[cat] / e) - e * a[cat] / (1 + e * a[cat])
    np.testing.assert_allclose(g_theta, np.bincount(index.ravel(), np.repeat(d, 2), 40),
                               rtol=1e-10, atol=1e-12)


def test_the_compile_cache_key_follows_the_loops_source(monkeypatch):
    """A cache of the compiled loop written by another version of its source is not used."""
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    from disagree.model import likelihood

    node = likelihood.ordinal_loglik_op.make_node(
        pt.dvector(), pt.dvector(), pt.dvector(), np.zeros((3, 2), np.int64), np.zeros(3, np.int64))
    _, key = numba_funcify_and_cache_key(likelihood.ordinal_loglik_op, node)
    _, same = numba_funcify_and_cache_key(likelihood.ordinal_loglik_op, node)
    monkeypatch.setattr(likelihood, "source_version", lambda: 1)
    _, other = numba_funcify_and_cache_key(likelihood.ordinal_loglik_op, node)
    assert key == same and key != other
