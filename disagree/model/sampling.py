"""Sampler back-ends: nutpie (default), PyMC's NUTS, numpyro (JAX) and ADVI.

Each back-end is ``run(model, settings) -> (InferenceData, seconds)`` registered in
``SAMPLERS``; :func:`get_sampler` names the valid choices when given another.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import arviz as az
import pymc as pm

from disagree.errors import ModelError

#: Variables kept in the posterior (the rest are sampler internals).
KEEP = ("beta", "cutpoints", "rater_sd", "rater_corr", "item_sd", "rater_effect", "item_effect",
        "item_group_sd", "item_group_effect", "level_sd", "level_effect")


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample; recorded in ``model.json``."""

    sampler: str = "nutpie"
    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    seed: int = 0
    low_rank: bool = False
    advi_iterations: int = 30_000
    progress: bool = True

    def to_json(self) -> dict:
        """Return a JSON-ready dict (without the progress flag, which changes nothing)."""
        out = asdict(self)
        out.pop("progress")
        return out


Runner = Callable[[pm.Model, SamplerSettings], tuple[az.InferenceData, dict[str, float]]]


def _nutpie(model: pm.Model, s: SamplerSettings) -> tuple[az.InferenceData, dict[str, float]]:
    import nutpie

    t0 = time.perf_counter()
    keep = [v for v in KEEP if v in model.named_vars]  # store only these draws (memory)
    compiled = nutpie.compile_pymc_model(model, var_names=keep)
    t1 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=s.draws, tune=s.tune, chains=s.chains,
                          cores=min(s.chains, os.cpu_count() or 1), seed=s.seed,
                          save_warmup=False, progress_bar=s.progress,
                          low_rank_modified_mass_matrix=s.low_rank)
    return idata, {"compile": t1 - t0, "sampling": time.perf_counter() - t1}


def _pymc_nuts(model: pm.Model, s: SamplerSettings, nuts_sampler: str = "pymc"
               ) -> tuple[az.InferenceData, dict[str, float]]:
    t0 = time.perf_counter()
    with model:
        idata = pm.sample(draws=s.draws, tune=s.tune, chains=s.chains,
                          cores=min(s.chains, os.cpu_count() or 1), random_seed=s.seed,
                          progressbar=s.progress, nuts_sampler=nuts_sampler,
                          compute_convergence_checks=False)
    return idata, {"compile": 0.0, "sampling": time.perf_counter() - t0}


def _numpyro(model: pm.Model, s: SamplerSettings) -> tuple[az.InferenceData, dict[str, float]]:
    try:
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    except ImportError:
        raise ModelError("sampler 'numpyro' needs JAX and numpyro: pip install numpyro "
                         "(with jax[cuda12] for a GPU)") from None
    return _pymc_nuts(model, s, nuts_sampler="numpyro")


def _advi(model: pm.Model, s: SamplerSettings) -> tuple[az.InferenceData, dict[str, float]]:
    t0 = time.perf_counter()
    with model:
        approx = pm.fit(n=s.advi_iterations, method="advi", random_seed=s.seed,
                        progressbar=s.progress)
        idata = approx.sample(draws=s.draws * s.chains, random_seed=s.seed)
    return idata, {"compile": 0.0, "sampling": time.perf_counter() - t0}


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
    post = idata.posterior[[v for v in KEEP if v in idata.posterior]]
    groups = {"posterior": post}
    if "sample_stats" in idata:
        groups["sample_stats"] = idata.sample_stats
    return az.InferenceData(**groups), seconds
