"""Sampler back-ends: nutpie (default), PyMC's NUTS, numpyro (JAX) and ADVI.

Each back-end is ``run(model, settings) -> (InferenceData, seconds)`` registered in
``SAMPLERS``; :func:`get_sampler` names the valid choices when given another.

Sampling until a target is met (nutpie): with ``max_draws > draws``, :func:`sample_until` runs
the chains for up to ``max_draws`` draws from one adaptation and looks at the trace at the
checkpoints ``draws, 2 draws, ...``; at the first checkpoint whose first draws meet the target
(``converged``), or past the time budget, or at ``max_draws``, it stops and keeps exactly the
draws up to that checkpoint. The kept draws are the first draws of the same chains with the
same seed, so a run that stops at a checkpoint gives the same posterior as an exact request
for that many draws.

Streaming (nutpie): with ``settings.store`` (a directory) the draws go to a Zarr store there
while sampling, and the returned posterior reads them back lazily, so the process never holds
the whole trace (nutpie's in-memory trace also keeps every draw's unconstrained position and
gradient, nutpie#176). The draws are the same as in memory.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr
from threadpoolctl import threadpool_limits

from disagree.errors import ModelError
from disagree.model.likelihood import register_jax

#: Variables kept in the posterior (the rest are sampler internals).
KEEP = ("beta", "cutpoints", "rater_sd", "rater_corr", "item_sd", "rater_effect", "item_effect",
        "item_group_sd", "item_group_effect", "level_sd", "level_effect")

#: nutpie sample stats left out of the fit: every draw's unconstrained position and gradient,
#: the mass matrix and divergence details (its in-memory trace drops them by default).
INTERNALS = ("gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
             "mass_matrix_stds", "divergence_start", "divergence_end", "divergence_momentum",
             "divergence_start_gradient")


#: ADVI's optimiser: Adam at this learning rate, this many steps. On Kumar-sized data
#: (``benchmarks/advi_iterations.py``) it reaches a loss (negative ELBO) of 721,160 in 10,000
#: steps, where PyMC's default (windowed Adagrad, 0.001) is at 721,293 after 30,000 with its
#: global parameters still moving (6.7 of their final sds over the last 5,000 steps).
ADVI_LEARNING_RATE = 0.01
ADVI_ITERATIONS = 10_000
#: NUTS's target mean acceptance rate (step-size adaptation). 0.65 rather than the usual 0.8:
#: the optimum for HMC in many dimensions (Beskos et al. 2013, Bernoulli 19(5A), 0.651). On
#: three one-dimension surveys of the study's size (2 x 1,000 draws, nutpie) the larger step
#: covered more ground in the same 15 leapfrog steps a draw: min bulk ESS 1,654-1,995 against
#: 996-1,250 over all parameters and 2,272-2,700 against 1,498-1,606 on the coefficients, no
#: divergence; at 0.5 the steps fell to 11 and the ESS with them.
TARGET_ACCEPT = 0.65


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample; recorded in ``model.json`` (not ``store``: where draws stream to)."""

    sampler: str = "nutpie"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 0
    low_rank: bool = False
    advi_iterations: int = ADVI_ITERATIONS
    progress: bool = True
    max_draws: int | None = None
    max_seconds: float | None = None
    converged: Callable[[az.InferenceData], bool] | None = field(default=None, compare=False)
    keep_rater_effects: bool = True
    target_accept: float = TARGET_ACCEPT
    store: str | None = field(default=None, compare=False)
    model_key: str | None = field(default=None, compare=False)
    advi_mode: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.target_accept < 1.0:
            raise ModelError(f"target_accept={self.target_accept!r}: expected a number between "
                             "0 and 1")

    def to_json(self) -> dict:
        """Return a JSON-ready dict: the settings that decide the draws (budgets when set)."""
        out = asdict(self)
        for key in ("progress", "converged", "max_draws", "max_seconds", "keep_rater_effects",
                    "store", "model_key", "advi_mode"):
            out.pop(key)
        if self.extends:
            out |= {"max_draws": self.max_draws, "max_seconds": self.max_seconds}
        if not self.keep_rater_effects:  # absent: kept (as in fits written before the option)
            out["keep_rater_effects"] = False
        if self.sampler == "advi":
            out.pop("target_accept")
        return out

    def kept(self, names: Collection[str]) -> list[str]:
        """Return the variables of ``KEEP`` among ``names`` whose draws are stored."""
        return [v for v in KEEP if v in names
                and (self.keep_rater_effects or v != "rater_effect")]

    @property
    def extends(self) -> bool:
        """Whether sampling may go on past ``draws`` until the target is met."""
        return self.max_draws is not None and self.max_draws > self.draws


def require_rater_effects(posterior: Any, what: str) -> None:
    """Raise a :class:`ModelError` naming ``what`` if ``posterior`` has no ``rater_effect``.

    Fits made with ``keep_rater_effects=False`` store no rater effects (memory at scale);
    rater-level soft labels and pairs, the posterior predictive check and the pointwise
    log-likelihood (LOO) need them, group and population labels and the contrasts do not.
    """
    if "rater_effect" not in posterior:
        raise no_rater_effects(what)


def no_rater_effects(what: str) -> ModelError:
    """Return the error for ``what`` on a fit without rater effects."""
    return ModelError(f"{what} needs the rater effects, and this fit was made with "
                      "keep_rater_effects=False (CLI --no-rater-effects), which does not store "
                      "them: refit without it, or use group or population labels")


Runner = Callable[[pm.Model, SamplerSettings], tuple[az.InferenceData, dict[str, float]]]


#: nutpie's compiled models of this process, the last ``COMPILED_KEPT``, by
#: ``(settings.model_key, kept variables)``: a refit of the same data and model (another seed,
#: more draws) skips the compile, most of a small fit's time (9,000 ratings: 46.8 of 54.5 s).
COMPILED: OrderedDict[tuple, Any] = OrderedDict()
COMPILED_KEPT = 2


def compiled_model(model: pm.Model, s: SamplerSettings) -> Any:
    """Return the compiled ``model``: from ``COMPILED`` when ``s.model_key`` names one there."""
    import nutpie

    kept = s.kept(model.named_vars)
    key = (s.model_key, tuple(kept))
    if s.model_key is not None and key in COMPILED:
        COMPILED.move_to_end(key)
        return COMPILED[key]
    compiled = nutpie.compile_pymc_model(model, var_names=kept)
    if s.model_key is not None:
        COMPILED[key] = compiled
        while len(COMPILED) > COMPILED_KEPT:
            COMPILED.popitem(last=False)
    return compiled


def _nutpie(model: pm.Model, s: SamplerSettings) -> tuple[az.InferenceData, dict[str, float]]:
    import nutpie

    t0 = time.perf_counter()
    compiled = compiled_model(model, s)
    t1 = time.perf_counter()
    options = dict(tune=s.tune, chains=s.chains, cores=min(s.chains, os.cpu_count() or 1),
                   seed=s.seed, save_warmup=False, progress_bar=s.progress,
                   low_rank_modified_mass_matrix=s.low_rank, target_accept=s.target_accept)
    if s.store is not None:  # draws streamed to a Zarr store on disk, read back lazily
        options["zarr_store"] = nutpie.zarr_store.LocalStore(s.store)
    with one_blas_thread():
        if s.extends and s.converged is not None:
            sampler = nutpie.sample(compiled, draws=s.max_draws, blocking=False, **options)
            idata, extension = sample_until(sampler, s)
            return idata, {"compile": t1 - t0, "sampling": time.perf_counter() - t1,
                           **extension}
        idata = nutpie.sample(compiled, draws=s.draws, **options)
    return idata, {"compile": t1 - t0, "sampling": time.perf_counter() - t1}


def one_blas_thread() -> threadpool_limits:
    """Limit the BLAS libraries of this process to one thread while the chains run.

    The compiled log density calls BLAS for its small matrix products (the centred rater
    effects' Cholesky solve, the design matrix times the coefficients) from every chain's
    thread at once; OpenBLAS's own threads then wait actively for work and take the cores
    from the chains. On 2 cores, 2 chains of the test suite's two-dimension survey (9,000
    ratings, rater effects centred): sampling 7.2 s with OpenBLAS's default threads, 2.2 s
    with one; with two other processes busy on both cores, 27 s against 4.2 s. At ten times the
    study's size (non-centred rater effects) it makes no difference (101 s against 99 s for
    250 iterations).
    """
    return threadpool_limits(limits=1, user_api="blas")


def sample_until(sampler, s: SamplerSettings, poll: float = 0.5
                 ) -> tuple[az.InferenceData, dict[str, float]]:
    """Let a running nutpie ``sampler`` go on until a checkpoint meets the target.

    Parameters
    ----------
    sampler : nutpie's background sampler
        Started with ``draws=s.max_draws, blocking=False``.
    s : SamplerSettings
        ``draws`` (the first checkpoint and the step), ``max_draws``, ``max_seconds`` and
        ``converged`` (the target, called on the draws up to a checkpoint).
    poll : float
        The shortest wait between looks at the trace; otherwise the next look is when the
        chains should reach the next checkpoint (:func:`next_look_in`).

    Returns
    -------
    (InferenceData, dict)
        The draws up to the checkpoint where it stopped, and ``{"draws_used", "checkpoints",
        "target_met"}`` (``target_met`` 1.0 or 0.0) for the record.
    """
    start, checkpoint, looked = time.perf_counter(), s.draws, 0
    first: tuple[float, int] | None = None  # (time, draws) of the first look past tuning
    while True:
        last = checkpoint >= s.max_draws
        if last:  # the whole trace when the chains finish, without a copy
            trace, done, now = sampler.wait(), checkpoint, time.perf_counter()
        else:  # a copy of the trace so far: look as seldom as possible
            with warnings.catch_warnings():  # while tuning, ArviZ says "more chains than draws"
                warnings.filterwarnings("ignore", message="More chains")
                trace = sampler.inspect()
            done, now = _draws_done(trace), time.perf_counter()
        while checkpoint <= done:
            head = trace.isel(draw=slice(0, checkpoint))
            looked += 1
            met = bool(s.converged(head))
            late = s.max_seconds is not None and time.perf_counter() - start > s.max_seconds
            if met or late or checkpoint >= s.max_draws:
                if not last:  # after wait() the sampler is done and its trace taken
                    sampler.cancel()
                return head, {"draws_used": float(checkpoint), "checkpoints": float(looked),
                              "target_met": float(met)}
            del head
            checkpoint = min(checkpoint + s.draws, s.max_draws)
        del trace
        if done and first is None:
            first = (now, done)
        time.sleep(next_look_in(first, now, done, checkpoint, poll))


def next_look_in(first: tuple[float, int] | None, now: float, done: int, checkpoint: int,
                poll: float) -> float:
    """Seconds to wait before the next look: when the chains should reach ``checkpoint``.

    The rate is the draws since the first look past tuning over the time since; before two
    such looks, ``poll``. At most 60 s, at least ``poll``.
    """
    if first is None or done <= first[1]:
        return poll
    rate = (done - first[1]) / max(now - first[0], 1e-9)
    return min(60.0, max(poll, (checkpoint - done) / rate))


def _draws_done(trace: az.InferenceData) -> int:
    """Draws every chain has finished (0 while tuning)."""
    if "posterior" not in trace or not trace.posterior.data_vars:
        return 0
    first = next(iter(trace.posterior.data_vars.values()))
    if first.size == 0:
        return 0
    finite = np.isfinite(first.isel({d: 0 for d in first.dims[2:]}).values)  # (chain, draw)
    return int(finite.sum(axis=1).min())


def _pymc_nuts(model: pm.Model, s: SamplerSettings, nuts_sampler: str = "pymc"
               ) -> tuple[az.InferenceData, dict[str, float]]:
    t0 = time.perf_counter()
    with model:
        idata = pm.sample(draws=s.draws, tune=s.tune, chains=s.chains,
                          cores=min(s.chains, os.cpu_count() or 1), random_seed=s.seed,
                          progressbar=s.progress, nuts_sampler=nuts_sampler,
                          target_accept=s.target_accept, compute_convergence_checks=False)
    return idata, {"compile": 0.0, "sampling": time.perf_counter() - t0}


#: Environment variable: ``float32`` runs the numpyro back-end in single precision (JAX without
#: x64); anything else, or unset, in double precision like the other back-ends.
JAX_DTYPE_ENV = "DISAGREE_JAX_DTYPE"


def _numpyro(model: pm.Model, s: SamplerSettings) -> tuple[az.InferenceData, dict[str, float]]:
    """NUTS in numpyro on JAX's default device (a GPU if JAX sees one), chains vectorised.

    The chains run as one batched computation on one device (``chain_method="vectorized"``),
    which is what a GPU is fast at. ``DISAGREE_JAX_DTYPE=float32`` switches JAX's x64 mode off
    for the run (the log density, the draws and the adaptation in single precision); the
    posterior's ``jax_dtype`` and ``jax_device`` attributes record the run. ``seconds``:
    ``sampling`` is numpyro's warm-up and draws, its XLA compilation included; ``compile`` the
    rest of the call (turning the model into a JAX function, initial points, transforming the
    draws back).
    """
    try:
        import jax
        import numpyro  # noqa: F401
        from pymc.model.transform.optimization import freeze_dims_and_data
        from pymc.sampling.jax import sample_numpyro_nuts
    except ImportError:
        raise ModelError("sampler 'numpyro' needs JAX and numpyro: pip install numpyro "
                         "(with jax[cuda12] or jax[cuda13] for a GPU)") from None

    float32 = os.environ.get(JAX_DTYPE_ENV, "float64").strip().lower() == "float32"
    keep = s.kept(model.named_vars)
    t0 = time.perf_counter()
    model, initvals = _frozen(model, freeze_dims_and_data)
    with model, warnings.catch_warnings():
        # pytensor's JAX functions ask for float64 explicitly; without x64 JAX says it
        # truncates, which is the point of float32
        warnings.filterwarnings("ignore", message=".*Explicitly requested dtype.*")
        import pytensor.link.jax.dispatch  # noqa: F401  (sets x64 from floatX on import)

        register_jax()

        x64 = bool(jax.config.jax_enable_x64)
        jax.config.update("jax_enable_x64", not float32 and x64)
        try:
            idata = sample_numpyro_nuts(
                draws=s.draws, tune=s.tune, chains=s.chains, random_seed=s.seed,
                var_names=keep, initvals=initvals, progressbar=s.progress,
                chain_method="vectorized", target_accept=s.target_accept,
                compute_convergence_checks=False, idata_kwargs={"log_likelihood": False})
        finally:
            jax.config.update("jax_enable_x64", x64)
    total = time.perf_counter() - t0
    sampling = float(idata.posterior.attrs.get("sampling_time", total))
    idata.posterior.attrs["jax_dtype"] = "float32" if float32 else "float64"
    idata.posterior.attrs["jax_device"] = str(jax.devices()[0])
    return idata, {"compile": max(total - sampling, 0.0), "sampling": sampling}


def _frozen(model: pm.Model, freeze: Callable[[pm.Model], pm.Model]
            ) -> tuple[pm.Model, dict[str, np.ndarray]]:
    """Return a copy of ``model`` with static shapes (data, dims' lengths) for JAX.

    PyMC's ``freeze_dims_and_data`` refuses models with initial values (the cut points have
    them), so they are taken out for the copy and returned by name, to be passed to the
    sampler; ``model`` itself is left as it was.
    """
    saved = dict(model.rvs_to_initial_values)
    initvals = {rv.name: value for rv, value in saved.items() if value is not None}
    try:
        for rv in saved:
            model.rvs_to_initial_values[rv] = None
        return freeze(model), initvals
    finally:
        model.rvs_to_initial_values.update(saved)


#: ADVI draws turned into model variables a batch at a time (bounded memory; the draws are
#: the same whatever the batch).
ADVI_BATCH = 100


def _advi(model: pm.Model, s: SamplerSettings) -> tuple[az.InferenceData, dict[str, float]]:
    """Mean-field ADVI; its ``draws x chains`` draws of the kept variables, as one chain.

    The optimisation step is compiled in ``s.advi_mode`` (PyTensor's default, C, when None).

    PyMC's ``approx.sample`` holds every variable's draws (sampler internals and the
    unconstrained values included) three times over (11.8 GiB on Kumar-sized data); here the
    approximation's draws are made ``ADVI_BATCH`` at a time from the same random stream and
    only the kept variables are stored.
    """
    t0 = time.perf_counter()
    keep = s.kept(model.named_vars)
    with model:
        approx = pm.fit(n=s.advi_iterations, method="advi", random_seed=s.seed,
                        progressbar=s.progress,
                        obj_optimizer=pm.adam(learning_rate=ADVI_LEARNING_RATE),
                        compile_kwargs={"mode": s.advi_mode} if s.advi_mode else None)
        values = model.compile_fn(model.replace_rvs_by_values([model[v] for v in keep]),
                                  inputs=model.value_vars, on_unused_input="ignore")
    n_draws, stored = s.draws * s.chains, {}
    for start in range(0, n_draws, ADVI_BATCH):
        size = min(ADVI_BATCH, n_draws - start)
        batch = approx.sample_dict_fn(size, random_seed=s.seed if start == 0 else None)
        for i in range(size):
            for name, value in zip(keep, values({k: v[i] for k, v in batch.items()}),
                                   strict=True):
                if name not in stored:
                    stored[name] = np.empty((n_draws, *np.shape(value)))
                stored[name][start + i] = value
    dims = model.named_vars_to_dims
    posterior = xr.Dataset({name: (("chain", "draw", *dims.get(name, ())), draws[None])
                            for name, draws in stored.items()},
                           coords={d: list(model.coords[d]) for name in stored
                                   for d in dims.get(name, ())})
    return az.InferenceData(posterior=posterior), {"compile": 0.0,
                                                   "sampling": time.perf_counter() - t0}


SAMPLERS: dict[str, Runner] = {"nutpie": _nutpie, "pymc": _pymc_nuts, "numpyro": _numpyro,
                               "advi": _advi}


def get_sampler(name: str) -> Runner:
    """Return the back-end called ``name``; the error lists the valid names."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ModelError(f"unknown sampler {name!r}; choose one of "
                         f"{', '.join(SAMPLERS)}") from None


def run_sampler(model: pm.Model, settings: SamplerSettings
                ) -> tuple[az.InferenceData, dict[str, float]]:
    """Sample ``model``; keep only the named model quantities and the sample stats."""
    idata, seconds = get_sampler(settings.sampler)(model, settings)
    post = idata.posterior[settings.kept(idata.posterior.data_vars)]
    groups = {"posterior": post}
    if "sample_stats" in idata:  # without the internals a Zarr store keeps (nutpie#176)
        stats = idata.sample_stats
        groups["sample_stats"] = stats[[v for v in stats.data_vars if v not in INTERNALS]]
    for name, group in groups.items():  # a Zarr store has no chain and draw coordinates
        groups[name] = group.assign_coords(chain=np.arange(group.sizes["chain"]),
                                           draw=np.arange(group.sizes["draw"]))
    return az.InferenceData(**groups), seconds
