"""Fitting the model and the fit directory (``posterior.nc``, ``diagnostics.json``, ``model.json``).

``fit(table, factors, reference, ...)`` returns a :class:`Fit` holding the ArviZ posterior
(``fit.idata``), the specification and the diagnostics. ``fit.save(dir)`` writes the three files
atomically, ``model.json`` last, so a directory with ``model.json`` is complete;
``model.json`` records the SHA-256 of ``posterior.nc``, and ``load_fit(dir)`` checks it, so a
damaged (truncated, overwritten) posterior is named instead of failing deep inside h5py.
``fit(..., out_dir=dir)`` reuses a complete fit there made from the same data and settings
instead of sampling again (resume).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import arviz as az
import pandas as pd
import pymc as pm
import xarray as xr

from disagree._io import sha256_file, versions, write_atomic, write_json
from disagree.data.ratings import RatingTable
from disagree.errors import ModelError, renamed
from disagree.model.build import build_model
from disagree.model.contrasts import cells_from_design, contrasts_table
from disagree.model.diagnostics import (
    compute_diagnostics,
    diagnostics_summary,
    posterior_predictive_table,
    quiet_ok,
)
from disagree.model.sampling import (
    ADVI_ITERATIONS,
    TARGET_ACCEPT,
    SamplerSettings,
    run_sampler,
)
from disagree.model.spec import ModelData, ModelSpec, make_spec, model_data

log = logging.getLogger(__name__)
FILES = ("posterior.nc", "diagnostics.json", "model.json")
#: Mean ratings per rater and dimension from which rater effects are sampled centred.
CENTRE_RATER_AT = 15
#: Mean ratings per item and dimension from which item effects are sampled centred. Measured
#: on either side only (``benchmarks/kumar_subsample.py``, 2 chains, seeds 1 and 2): at 4.8 an
#: item non-centred gave min bulk ESS 606 / 652 against 512 / 510 in the same time; at 18
#: (``--design study``) centred gave 485 / 429 against 424 / 422.
CENTRE_ITEM_AT = 10
#: Ratings from which ADVI's step is compiled by numba, not C: 14 s more compile for a step of
#: 16.8 instead of 21.5 ms at 518,400 ratings (``benchmarks/advi_iterations.py``).
ADVI_NUMBA_AT = 100_000
#: Estimated bytes of nutpie's in-memory trace from which a saved fit streams its draws.
STREAM_AT = 1 << 30


@dataclass
class Fit:
    """A fitted model: posterior, specification, diagnostics and provenance.

    Attributes
    ----------
    idata : arviz.InferenceData
        Posterior (``beta``, ``cutpoints``, ``rater_sd``, ``rater_corr``, ``item_sd``,
        ``rater_effect``, ``item_effect``; with interactions ``item_group_sd`` and
        ``item_group_effect``, exactly zero where ``spec.interaction_dimensions`` leaves a
        factor's deviations out; with pooled effects ``level_sd`` and ``level_effect``), sample
        stats, observed data and constant data.
    spec : ModelSpec
    diagnostics : dict
        The content of ``diagnostics.json``.
    info : dict
        Sampler settings, data hash, parametrisation and library versions.
    path : pathlib.Path or None
        The fit directory it was saved to or loaded from.
    """

    idata: az.InferenceData
    spec: ModelSpec
    diagnostics: dict
    info: dict
    path: Path | None = None

    @property
    def raters(self) -> pd.DataFrame:
        """Factor levels of each rater, indexed by ``rater_id``."""
        x = self.idata.constant_data["rater_design"]
        cells = cells_from_design(x.values, self.spec.levels)
        return cells.set_index(pd.Index(x.coords["rater"].values, name="rater_id"))

    def contrasts(self, threshold: int | None = None, on: str = "high",
                  population: pd.DataFrame | str | os.PathLike[str] | None = None,
                  ci: float = 0.95, rater: str | Sequence[str] = "new",
                  measures: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Contrasts of every non-reference level on every dimension (see ``contrasts_table``)."""
        return contrasts_table(self.idata, self.spec.levels, list(self.spec.dimensions),
                               self.spec.scale, threshold, on, population, ci,
                               interactions=self.spec.interactions, rater=rater,
                               measures=measures)

    def ppc(self, n_draws: int = 200, seed: int = 0) -> pd.DataFrame:
        """Posterior predictive check table per dimension and rater group."""
        return posterior_predictive_table(self.idata, self.raters, list(self.spec.dimensions),
                                          self.spec.scale, n_draws, seed)

    def summary(self) -> str:
        """Diagnostics in a few lines: the ``ok`` flag, R-hat, ESS, divergences, seconds."""
        return diagnostics_summary(self.diagnostics)

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``posterior.nc``, ``diagnostics.json`` and ``model.json`` (last) atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.json").unlink(missing_ok=True)  # the directory is incomplete until the end
        posterior = write_atomic(out / "posterior.nc",
                                 lambda tmp: self.idata.to_netcdf(str(tmp)))
        write_json(out / "diagnostics.json", self.diagnostics)
        write_json(out / "model.json", {"spec": self.spec.to_json(), **self.info,
                                        "posterior_sha256": sha256_file(posterior)})
        self.path = out
        return out


def default_centring(table: RatingTable, spec: ModelSpec) -> dict[str, bool]:
    """Whether :func:`fit` samples the rater and the item effects centred by default.

    Centred where the mean ratings per rater (item) and dimension reach ``CENTRE_RATER_AT``
    (``CENTRE_ITEM_AT``): the likelihood then dominates each effect's prior.

    Returns
    -------
    dict
        ``{"rater": bool, "item": bool}``.
    """
    rated = table.ratings[table.ratings["dimension"].isin(spec.dimensions)]
    per = len(rated) / len(spec.dimensions)
    return {"rater": per / rated["rater_id"].nunique() >= CENTRE_RATER_AT,
            "item": per / rated["item_id"].nunique() >= CENTRE_ITEM_AT}


def fit(table: RatingTable, factors: list[str] | None = None,
        reference: dict[str, str] | None = None,
        dimensions: list[str] | None = None, sampler: str = "nutpie", draws: int = 1000,
        tune: int = 1000, chains: int = 4, seed: int = 0, low_rank: bool = False,
        priors: dict[str, float] | None = None, progress: bool = True,
        out_dir: str | os.PathLike[str] | None = None, rater_centred: bool | None = None,
        item_centred: bool | None = None, item_zero_sum: bool = True,
        interactions: list[str] | dict[str, list[str]] | None = None, effects: str = "dummy",
        interaction_centred: bool = False, max_draws: int | None = None,
        max_seconds: float | None = None, keep_rater_effects: bool = True,
        stream: bool | None = None, covariates: list[str] | None = None,
        advi_iterations: int = ADVI_ITERATIONS, cutpoints_anchored: bool = True,
        target_accept: float = TARGET_ACCEPT) -> Fit:
    """Fit the hierarchical ordinal model of demographic effects.

    Parameters
    ----------
    table : RatingTable
        Validated ratings.
    factors : list of str
        Rater attributes whose effects are estimated (categorical, dummy-coded).
    reference : dict, optional
        Reference level per factor (default: the most frequent level).
    dimensions : list of str, optional
        Dimensions fitted jointly (default: all; they must share one scale).
    sampler : {"nutpie", "pymc", "numpyro", "advi"}
        NUTS through nutpie (default), PyMC or numpyro (JAX; GPU if JAX sees one), or ADVI
        for quick, approximate exploration.
    draws, tune, chains, seed : int
        Sampler settings; the same seed gives the same draws. Four chains by default: R-hat
        needs several to mean much (the cost on 2 cores: ``benchmarks/chains_cost.py``).
    low_rank : bool
        nutpie's low-rank modified mass matrix adaptation.
    target_accept : float
        NUTS's target acceptance rate, in (0, 1); default 0.65 (see
        :data:`disagree.model.sampling.TARGET_ACCEPT`). Raise it (0.9, 0.95) where the
        diagnostics report divergences.
    priors : dict, optional
        Overrides of ``disagree.model.spec.DEFAULT_PRIORS``.
    progress : bool
        Show the sampler's progress display.
    out_dir : path, optional
        Save the fit there; if a complete fit of the same data and settings is already
        there, load it instead of sampling (resume).
    rater_centred : bool, optional
        Centred or non-centred rater effects (see :func:`disagree.model.build.build_model`).
        Default: centred when raters give at least ``CENTRE_RATER_AT`` ratings per dimension
        on average (the likelihood then dominates each rater's prior), non-centred otherwise
        (the paper's design, 5 per dimension); both measured in ``benchmarks/fit_speed.py``.
    item_centred : bool, optional
        Centred or non-centred item effects. Default: centred when items get at least
        ``CENTRE_ITEM_AT`` ratings per dimension on average, non-centred otherwise (sparse
        items, such as Kumar et al.'s 4.8 an item).
    item_zero_sum : bool
        Item effects constrained to sum to zero per dimension (identifies the cut points).
    interactions : list of str or dict, optional
        Factors whose levels rate the items each their own way: item-by-level deviations
        with a learned sd per dimension and factor (``item_group_sd``); see
        :mod:`disagree.model.build`. A list (e.g. ``["politics"]``) puts them on every
        dimension; a mapping dimension -> factors (e.g. ``{"toxicity": ["gender"],
        "emotional_awareness": ["politics", "ethnicity"]}``, the simulator's shape) on the
        dimensions named only (``spec.interaction_dimensions``), with ``item_group_sd`` and
        ``item_group_effect`` exactly zero elsewhere. Default none (every group orders the
        items alike).
    effects : {"dummy", "pooled"}
        Level effects as independent ``Normal(0, 1)`` treatment-dummy coefficients (default),
        or as a zero-sum batch per factor and dimension with a learned scale, which makes
        every contrast independent of the choice of reference level.
    interaction_centred : bool
        Centred or non-centred (default) group-by-item deviations. Centred samples better
        where an interaction is real and every item x level cell holds many ratings (30 a
        cell: min bulk ESS per whole-process second 13.9 vs 9.9, ``benchmarks/fit_speed.py
        interactions``), but where an interaction is absent its sd sits at zero and the
        centred form has a funnel (bulk ESS 4 vs 131 at 17 ratings a cell), so non-centred is the
        default: asking whether groups disagree must not break the fit when they do not.
    max_draws, max_seconds : optional
        Sample until the diagnostics are ``ok`` (nutpie only): with ``max_draws > draws`` the
        chains go on from their adaptation, checked every ``draws`` draws, and stop at the first
        checkpoint that is ``ok``, at ``max_draws`` or past ``max_seconds`` of sampling; the
        fit keeps exactly the draws up to that checkpoint (the same as asking for that many),
        and ``diagnostics["extension"]`` says what happened. Default: exactly ``draws``.
    keep_rater_effects : bool
        Store the draws of every rater's effect (default). ``False`` leaves them out of the
        posterior (the largest variable with many raters: raters x dimensions a draw); the
        contrasts, group and population labels and pairs need them not, while rater-level
        labels and pairs, :meth:`Fit.ppc` and LOO refuse such a fit with a clear error.
    stream : bool, optional
        With ``out_dir`` and nutpie: stream the draws to a hidden scratch directory beside
        ``out_dir`` (``.NAME.draws-*``, removed at the end) while sampling, so the process never
        holds the whole trace, and read the fit's posterior lazily from ``posterior.nc``; the
        draws are the same. Default: when the in-memory trace would pass ``STREAM_AT`` bytes
        (about 3 x (raters + items) x dimensions values a draw, warm-up included). The demo's
        2000-draw fit: peak RSS 4.62 -> 1.63 GiB for 8 s more (``benchmarks/fit_memory.py
        saved stream``).
    covariates : list of str, optional
        Deprecated name of ``factors``.
    advi_iterations : int
        Optimisation steps of ``sampler="advi"`` (Adam; each a pass over every rating).
    cutpoints_anchored : bool
        Sample each dimension's cut points outward from the one nearest its median rating
        (default), or upward from the lowest (PyMC's ``ordered``); the same model, mixing
        differently (:mod:`disagree.model.cutpoints`).

    Returns
    -------
    Fit
    """
    factors = renamed(factors, covariates, "covariates", "factors")
    if not factors:
        raise ModelError("fit needs the factors (rater attributes) whose effects it estimates, "
                         "e.g. factors=['gender', 'politics']")
    spec = make_spec(table, factors, reference, dimensions, priors, interactions, effects)
    default = default_centring(table, spec)
    rater_centred = default["rater"] if rater_centred is None else rater_centred
    item_centred = default["item"] if item_centred is None else item_centred
    settings = SamplerSettings(sampler, draws, tune, chains, seed, low_rank, progress=progress,
                               max_draws=max_draws, max_seconds=max_seconds,
                               keep_rater_effects=keep_rater_effects,
                               advi_iterations=advi_iterations, target_accept=target_accept)
    info = {"data_hash": table.data_hash, "sampler": settings.to_json(),
            "parametrisation": {"rater_centred": rater_centred, "item_centred": item_centred,
                                "item_zero_sum": item_zero_sum, "rater_mean_out": True,
                                "cutpoints_anchored": cutpoints_anchored,
                                **({"interaction_centred": interaction_centred}
                                   if spec.interactions else {})},
            "source": table.source, "versions": versions()}
    if out_dir is not None and (Path(out_dir) / "model.json").exists():
        old = load_fit(out_dir)
        if old.spec == spec and all(old.info.get(k) == info[k] for k in
                                    ("data_hash", "sampler", "parametrisation")):
            log.info("reusing the complete fit in %s", out_dir)
            return old
    # the model's identity in this process: the same key, the same graph (nutpie's compile kept)
    key = hashlib.sha256(json.dumps([spec.to_json(), info["data_hash"], info["parametrisation"]],
                                    sort_keys=True, default=str).encode()).hexdigest()
    data = model_data(table, spec)
    constants, memo = constant_data(data, spec), {}  # sampling until ok judges derived ones too
    settings = replace(settings, model_key=key,
                       advi_mode="NUMBA" if len(data.y) >= ADVI_NUMBA_AT else None,
                       converged=lambda head: quiet_ok(head, sampler, spec, constants, memo))
    model = build_model(spec, data, rater_centred=rater_centred, item_centred=item_centred,
                        item_zero_sum=item_zero_sum, interaction_centred=interaction_centred,
                        cutpoints_anchored=cutpoints_anchored)
    if stream is None:
        per_draw = 3 * (len(data.rater_ids) + len(data.item_ids)) * len(spec.dimensions)
        stream = 8 * per_draw * chains * (tune + max(draws, max_draws or 0)) > STREAM_AT
    if out_dir is None or sampler != "nutpie" or not stream:
        return _sample(model, data, spec, settings, info, out_dir, memo)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{out.name}.draws-", dir=out.parent)
    try:  # the draws stream to ``scratch`` and are read from there into posterior.nc
        result = _sample(model, data, spec, replace(settings, store=scratch), info, out, memo)
        result.idata = az.from_netcdf(str(out / "posterior.nc"))  # lazily, as load_fit does
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sample(model: pm.Model, data: ModelData, spec: ModelSpec, settings: SamplerSettings,
            info: dict, out_dir: str | os.PathLike[str] | None, memo: dict) -> Fit:
    """Sample, add the data groups and diagnostics, and save to ``out_dir`` if given.

    ``memo``: the judgement of the draws kept where sampling until ok met its target there.
    """
    idata, seconds = run_sampler(model, settings)
    extension = {k: seconds.pop(k) for k in ("draws_used", "checkpoints", "target_met")
                 if k in seconds}
    idata.add_groups(observed_data=xr.Dataset({"rating": ("obs", data.y + 1)}),
                     constant_data=constant_data(data, spec))
    diagnostics = compute_diagnostics(idata, settings.sampler, seconds, spec,
                                      memo.get(idata.posterior.sizes["draw"]))
    if extension:
        diagnostics["extension"] = _extension_record(extension, settings, seconds)
    result = Fit(idata, spec, diagnostics, info)
    if out_dir is not None:
        result.save(out_dir)
    return result


def constant_data(data: ModelData, spec: ModelSpec) -> xr.Dataset:
    """Return the ``constant_data`` group: each rating's rater, item and dimension; the design."""
    return xr.Dataset(
        {"obs_rater": ("obs", data.rater), "obs_item": ("obs", data.item),
         "obs_dimension": ("obs", data.dim),
         "rater_design": (("rater", "factor_level"), data.x)},
        coords={"rater": data.rater_ids, "factor_level": spec.coef_labels})


def _extension_record(ext: dict[str, float], s: SamplerSettings,
                      seconds: dict[str, float]) -> dict:
    """Record what sampling until ok did, in numbers and in words."""
    used, met = int(ext["draws_used"]), bool(ext["target_met"])
    if met:
        why = "the diagnostics were ok"
    elif used >= (s.max_draws or 0):
        why = f"the draw budget ({s.max_draws} a chain) was spent without ok diagnostics"
    else:
        why = f"the time budget ({s.max_seconds} s) was spent without ok diagnostics"
    return {"draws_used": used, "checkpoints": int(ext["checkpoints"]), "target_met": met,
            "note": f"sampled {used} draws a chain ({s.chains} chains, checked every "
                    f"{s.draws}; {seconds['sampling']:.0f} s): stopped because {why}"}


def as_fit(fit_or_dir: Fit | str | os.PathLike[str]) -> Fit:
    """Return ``fit_or_dir`` if it is a :class:`Fit`, else load the fit directory it names."""
    return fit_or_dir if isinstance(fit_or_dir, Fit) else load_fit(fit_or_dir)


def load_fit(fit_dir: str | os.PathLike[str]) -> Fit:
    """Read a fit directory written by :meth:`Fit.save`."""
    d = Path(fit_dir)
    if not d.is_dir():
        raise ModelError(f"{d}: no such fit directory")
    missing = [f for f in FILES if not (d / f).exists()]
    if missing:
        raise ModelError(f"{d}: incomplete fit directory, missing {', '.join(missing)} "
                         "(an interrupted fit? run `disagree fit` again)")
    try:
        meta = json.loads((d / "model.json").read_text(encoding="utf-8"))
        spec = ModelSpec.from_json(meta.pop("spec"))
        diagnostics = json.loads((d / "diagnostics.json").read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as err:
        raise ModelError(f"{d}: damaged fit directory, refit (model.json or diagnostics.json "
                         f"cannot be read: {err})") from None
    expected = meta.get("posterior_sha256")  # absent in fits written before 0.2
    if expected is not None and sha256_file(d / "posterior.nc") != expected:
        raise ModelError(f"{d}: damaged fit directory, refit (posterior.nc does not match the "
                         "SHA-256 recorded in model.json: truncated or overwritten)")
    try:
        idata = az.from_netcdf(str(d / "posterior.nc"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{d}: damaged fit directory, refit (posterior.nc cannot be read: "
                         f"{err})") from None
    return Fit(idata, spec, diagnostics, meta, d)

