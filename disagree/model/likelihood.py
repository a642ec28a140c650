"""The cumulative-logit likelihood as one fused operation: value and gradient in one pass.

The ratings' log-likelihood is the model's whole cost at scale. Written as a PyTensor graph it
is a gather of each rating's linear predictor from the rater, item and interaction effects, an
``exp`` and a ``log`` per rating, and in the gradient a scatter-add of the per-rating
derivatives back into those effects: several passes over arrays of the ratings' length, each
with its temporaries. :class:`OrdinalLogLik` does it in one compiled loop (numba) that reads a
rating's terms, adds up its linear predictor, and accumulates the log-likelihood and every
gradient at once; its gradient in the graph is the loop's own gradient outputs, which PyTensor
merges with the value's node, so a log-density-and-gradient evaluation runs the loop once.

For rating ``i`` with category ``y`` (0-based) on row ``g`` of the cut points,
``eta_i = sum_t theta[index[i, t]]`` and, with ``E = exp(eta)``, ``A = exp(-c_y)`` and
``B = exp(c_{y-1})`` (``A = 0`` for the top category, ``B = 0`` for the bottom one),
``log_sigmoid(c_y - eta) + log_sigmoid(eta - c_{y-1}) = -log((1 + E A)(1 + B / E))``. The loop
takes no ``log`` a rating: it multiplies the ratings' ``(1 + E A)(1 + B / E)`` (each at least 1)
into one product, whose binary exponent it moves aside whenever the product passes 1e100, and
takes one ``log`` at the end. ``E`` is the product of the terms' ``exp(theta)`` (one ``exp`` an
effect, none a rating), and two divisions a rating give ``1 / E``, ``1 / (1 + E A)`` and
``1 / (1 + B / E)``. A log-density-and-gradient evaluation of the whole model took 0.328 ms on
the study's size (27,375 ratings) with a ``log`` and five divisions a rating, 0.225 ms so; 3.91
and 2.51 ms at ten times the size, 7.51 and 5.13 ms on Kumar-sized data (518,400 ratings;
``benchmarks/gradient_cost.py --against c78ca03``). The interior categories'
``log(1 - exp(c_{y-1} - c_y))`` does not depend on ``eta`` and stays in the graph (see
:func:`disagree.model.build.ordinal_loglik`). ``eta`` is clipped to +-250 only to stay inside
the range of ``exp`` (``E`` to ``exp(+-250)``; zero gradient in the effects beyond, as
PyTensor's ``clip``).

The operation has a Numba implementation (nutpie, PyTensor's NUMBA mode), a Python one that
calls the same compiled loop (PyTensor's C and Python modes: ADVI, PyMC's NUTS) and a JAX one
(numpyro), which JAX differentiates itself (:func:`register_jax`).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import sys

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

CLIP = 250.0


@numba.njit(cache=True)
def loglik_and_grad(theta: np.ndarray, a: np.ndarray, b: np.ndarray, index: np.ndarray,
                    cat: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Return the summed log-likelihood and its gradients in ``theta``, ``a``, ``b`` (one pass).

    Parameters
    ----------
    theta : ndarray (M,)
        Every effect that enters a linear predictor, concatenated.
    a, b : ndarray (G * K,)
        ``A`` and ``B`` of each row and category, flattened row-major.
    index : ndarray of int (N, T)
        Rating ``i``'s linear predictor is ``sum_t theta[index[i, t]]``.
    cat : ndarray of int (N,)
        ``row * K + category`` of each rating.

    Returns
    -------
    tuple
        ``(loglik, d theta, d a, d b)``.
    """
    g_theta = np.zeros_like(theta)
    g_a = np.zeros_like(a)
    g_b = np.zeros_like(b)
    exp_theta = np.exp(theta)  # E as a product: one exp an effect, not a rating
    low, high = np.exp(-CLIP), np.exp(CLIP)
    mantissa, exponent = 1.0, 0  # the product of every (1 + E A)(1 + B / E) >= 1
    for i in range(index.shape[0]):
        e = 1.0
        for t in range(index.shape[1]):
            e *= exp_theta[index[i, t]]
        inside = low <= e <= high
        e = min(max(e, low), high)
        f = 1.0 / e
        c = cat[i]
        ea = e * a[c]
        bf = b[c] * f
        u = 1.0 + ea
        w = 1.0 + bf
        uw = u * w  # at most about exp(CLIP + max |c|): no overflow below
        mantissa *= uw
        if mantissa > 1e100:
            m, x = math.frexp(mantissa)
            mantissa, exponent = m, exponent + x
        r = 1.0 / uw  # 1 / u = w r and 1 / w = u r
        g_a[c] -= e * w * r
        g_b[c] -= f * u * r
        if inside:
            d = (bf * u - ea * w) * r
            for t in range(index.shape[1]):
                g_theta[index[i, t]] += d
    total = -(math.log(mantissa) + exponent * math.log(2.0))
    return total, g_theta, g_a, g_b


class OrdinalLogLik(Op):
    """``(loglik, d theta, d a, d b)`` of :func:`loglik_and_grad` as a PyTensor operation.

    Inputs ``theta, a, b`` (float64 vectors) and ``index, cat`` (integer arrays, constants of the
    graph); differentiable in the first three.
    """

    __props__ = ()

    def make_node(self, theta, a, b, index, cat) -> Apply:
        """Make the node: float64 ``theta, a, b``, integer ``index, cat``; four outputs."""
        theta, a, b = (pt.as_tensor_variable(v).astype("float64") for v in (theta, a, b))
        index, cat = pt.as_tensor_variable(index), pt.as_tensor_variable(cat)
        return Apply(self, [theta, a, b, index, cat],
                     [pt.dscalar(), theta.type(), a.type(), b.type()])

    def perform(self, node, inputs, outputs) -> None:
        """Run the compiled loop (PyTensor's C and Python modes)."""
        for out, value in zip(outputs, loglik_and_grad(*inputs), strict=True):
            out[0] = np.asarray(value)

    def infer_shape(self, fgraph, node, shapes):
        """Return a scalar's shape, then those of ``theta``, ``a`` and ``b``."""
        return [(), shapes[0], shapes[1], shapes[2]]

    def grad(self, inputs, output_grads):
        """Return the loop's own gradient outputs times the log-likelihood's output gradient."""
        if not all(isinstance(g.type, DisconnectedType) for g in output_grads[1:]):
            return [grad_not_implemented(self, k, v) for k, v in enumerate(inputs)]
        _, g_theta, g_a, g_b = self(*inputs)  # merged with the value's own node
        gz = output_grads[0]
        return [gz * g_theta, gz * g_a, gz * g_b, DisconnectedType()(), DisconnectedType()()]

    def connection_pattern(self, node):
        """Every output depends on ``theta``, ``a`` and ``b``; none on the integer inputs."""
        return [[True] * 4] * 3 + [[False] * 4] * 2


ordinal_loglik_op = OrdinalLogLik()


def source_version() -> int:
    """Return an integer that changes with the source of :func:`loglik_and_grad` (its hash).

    PyTensor keys its on-disk cache of compiled Numba functions by the operation and this
    integer, so a cache written by another version of the loop is not used.
    """
    source = inspect.getsource(loglik_and_grad.py_func).encode()
    return int(hashlib.sha256(source).hexdigest()[:15], 16)


def _register_numba() -> None:
    """Register the Numba implementation of :class:`OrdinalLogLik` (nutpie, NUMBA mode)."""
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    @register_funcify_default_op_cache_key(OrdinalLogLik)
    def _numba(op, node=None, **kwargs):
        @numba.njit
        def ordinal_loglik(theta, a, b, index, cat):
            total, g_theta, g_a, g_b = loglik_and_grad(theta, a, b, index, cat)
            return np.asarray(total), g_theta, g_a, g_b
        return ordinal_loglik, source_version()


_JAX_REGISTERED = False


def register_jax() -> None:
    """Give :class:`OrdinalLogLik` its JAX implementation (numpyro, nutpie's JAX backend).

    Importing JAX takes about a second, which every ``disagree`` command would pay, so this
    module registers it at import only when JAX is already imported; the numpyro sampler calls
    this itself. Call it before compiling a model with PyTensor's JAX linker yourself (for
    instance ``pm.sample(nuts_sampler="numpyro")``). Does nothing the second time.

    Raises
    ------
    ImportError
        If JAX is not installed.
    """
    global _JAX_REGISTERED
    if _JAX_REGISTERED:
        return
    import jax
    import jax.numpy as jnp
    from pytensor.link.jax.dispatch import jax_funcify

    def value(theta, a, b, index, cat):
        eta = jnp.clip(theta[index].sum(axis=1), -CLIP, CLIP)
        e = jnp.exp(eta)
        return -jnp.log((1.0 + e * a[cat]) * (1.0 + b[cat] / e)).sum()

    @jax_funcify.register(OrdinalLogLik)
    def _jax(op, **kwargs):
        def ordinal_loglik(theta, a, b, index, cat):
            total, grads = jax.value_and_grad(value, argnums=(0, 1, 2))(theta, a, b, index, cat)
            return (total, *grads)
        return ordinal_loglik

    _JAX_REGISTERED = True


_register_numba()
if "jax" in sys.modules:
    register_jax()
