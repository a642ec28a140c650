"""Fitting the model and the fit directory (``posterior.nc``, ``diagnostics.json``, ``model.json``).

``fit(table, covariates, reference, ...)`` returns a :class:`Fit` holding the ArviZ posterior
(``fit.idata``), the specification and the diagnostics. ``fit.save(dir)`` writes the three files
atomically, ``model.json`` last, so a directory with ``model.json`` is complete;
``load_fit(dir)`` reads them back. ``fit(..., out_dir=dir)`` reuses a complete fit there made
from the same data and settings instead of sampling again (resume).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from disagree._io import write_atomic, write_json
from disagree.data.ratings import RatingTable
from disagree.errors import ModelError
from disagree.model.build import build_model
from disagree.model.contrasts import cells_from_design, contrasts_table
from disagree.model.diagnostics import compute_diagnostics, posterior_predictive_table
from disagree.model.sampling import SamplerSettings, run_sampler
from disagree.model.spec import ModelSpec, make_spec, model_data

log = logging.getLogger(__name__)
FILES = ("posterior.nc", "diagnostics.json", "model.json")
#: Mean ratings per rater and dimension from which rater effects are sampled centred.
CENTRE_RATER_AT = 15


@dataclass
class Fit:
    """A fitted model: posterior, specification, diagnostics and provenance.

    Attributes
    ----------
    idata : arviz.InferenceData
        Posterior (``beta``, ``cutpoints``, ``rater_sd``, ``rater_corr``, ``item_sd``,
        ``rater_effect``, ``item_effect``), sample stats, observed data and constant data.
    spec : ModelSpec
    diagnostics : dict
        The content of ``diagnostics.json``.
    info : dict
        Sampler settings, data hash, parametrisation and library versions.
    """

    idata: az.InferenceData
    spec: ModelSpec
    diagnostics: dict
    info: dict

    @property
    def raters(self) -> pd.DataFrame:
        """Covariate levels of each rater, indexed by ``rater_id``."""
        x = self.idata.constant_data["rater_design"]
        cells = cells_from_design(x.values, self.spec.levels)
        return cells.set_index(pd.Index(x.coords["rater"].values, name="rater_id"))

    def contrasts(self, threshold: int | None = None, on: str = "high",
                  population: pd.DataFrame | None = None, ci: float = 0.95) -> pd.DataFrame:
        """Contrasts of every non-reference level on every dimension (see ``contrasts_table``)."""
        return contrasts_table(self.idata, self.spec.levels, list(self.spec.dimensions),
                               self.spec.scale, threshold, on, population, ci)

    def ppc(self, n_draws: int = 200, seed: int = 0) -> pd.DataFrame:
        """Posterior predictive check table per dimension and rater group."""
        return posterior_predictive_table(self.idata, self.raters, list(self.spec.dimensions),
                                          self.spec.scale, n_draws, seed)

    def soft_labels(self, level: str = "population", **options) -> pd.DataFrame:
        """Posterior soft labels of this fit (see :func:`disagree.labels.soft_labels`)."""
        from disagree.labels import soft_labels  # the later stage, imported only when asked

        return soft_labels(self, level, **options)

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``posterior.nc``, ``diagnostics.json`` and ``model.json`` (last) atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.json").unlink(missing_ok=True)  # the directory is incomplete until the end
        write_atomic(out / "posterior.nc", lambda tmp: self.idata.to_netcdf(str(tmp)))
        write_json(out / "diagnostics.json", self.diagnostics)
        write_json(out / "model.json", {"spec": self.spec.to_json(), **self.info})
        return out


def fit(table: RatingTable, covariates: list[str], reference: dict[str, str] | None = None,
        dimensions: list[str] | None = None, sampler: str = "nutpie", draws: int = 1000,
        tune: int = 1000, chains: int = 2, seed: int = 0, low_rank: bool = False,
        priors: dict[str, float] | None = None, progress: bool = True,
        out_dir: str | os.PathLike[str] | None = None, rater_centred: bool | None = None,
        item_centred: bool = True, item_zero_sum: bool = True) -> Fit:
    """Fit the hierarchical ordinal model of demographic effects.

    Parameters
    ----------
    table : RatingTable
        Validated ratings.
    covariates : list of str
        Rater attributes whose effects are estimated (categorical, dummy-coded).
    reference : dict, optional
        Reference level per covariate (default: the most frequent level).
    dimensions : list of str, optional
        Dimensions fitted jointly (default: all; they must share one scale).
    sampler : {"nutpie", "pymc", "numpyro", "advi"}
        NUTS through nutpie (default), PyMC or numpyro (JAX; GPU if JAX sees one), or ADVI
        for quick, approximate exploration.
    draws, tune, chains, seed : int
        Sampler settings; the same seed gives the same draws.
    low_rank : bool
        nutpie's low-rank modified mass matrix adaptation.
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
    item_centred : bool
        Centred or non-centred item effects.
    item_zero_sum : bool
        Item effects constrained to sum to zero per dimension (identifies the cut points).

    Returns
    -------
    Fit
    """
    spec = make_spec(table, covariates, reference, dimensions, priors)
    if rater_centred is None:
        rated = table.ratings[table.ratings["dimension"].isin(spec.dimensions)]
        per_rater = len(rated) / rated["rater_id"].nunique() / len(spec.dimensions)
        rater_centred = per_rater >= CENTRE_RATER_AT
    settings = SamplerSettings(sampler, draws, tune, chains, seed, low_rank, progress=progress)
    info = {"data_hash": table.data_hash, "sampler": settings.to_json(),
            "parametrisation": {"rater_centred": rater_centred, "item_centred": item_centred,
                                "item_zero_sum": item_zero_sum},
            "source": table.source, "versions": _versions()}
    if out_dir is not None and (Path(out_dir) / "model.json").exists():
        old = load_fit(out_dir)
        if old.spec == spec and all(old.info.get(k) == info[k] for k in
                                    ("data_hash", "sampler", "parametrisation")):
            log.info("reusing the complete fit in %s", out_dir)
            return old
    data = model_data(table, spec)
    model = build_model(spec, data, rater_centred=rater_centred, item_centred=item_centred,
                        item_zero_sum=item_zero_sum)
    idata, seconds = run_sampler(model, settings)
    idata.add_groups(
        observed_data=xr.Dataset({"rating": ("obs", data.y + 1)}),
        constant_data=xr.Dataset(
            {"obs_rater": ("obs", data.rater), "obs_item": ("obs", data.item),
             "obs_dimension": ("obs", data.dim),
             "rater_design": (("rater", "factor_level"), data.x)},
            coords={"rater": data.rater_ids, "factor_level": spec.coef_labels}))
    result = Fit(idata, spec, compute_diagnostics(idata, sampler, seconds), info)
    if out_dir is not None:
        result.save(out_dir)
    return result


def load_fit(fit_dir: str | os.PathLike[str]) -> Fit:
    """Read a fit directory written by :meth:`Fit.save`."""
    d = Path(fit_dir)
    if not d.is_dir():
        raise ModelError(f"{d}: no such fit directory")
    missing = [f for f in FILES if not (d / f).exists()]
    if missing:
        raise ModelError(f"{d}: incomplete fit directory, missing {', '.join(missing)} "
                         "(an interrupted fit? run `disagree fit` again)")
    meta = json.loads((d / "model.json").read_text())
    spec = ModelSpec.from_json(meta.pop("spec"))
    idata = az.from_netcdf(str(d / "posterior.nc"))
    diagnostics = json.loads((d / "diagnostics.json").read_text())
    return Fit(idata, spec, diagnostics, meta)


def _versions() -> dict[str, str]:
    import arviz
    import nutpie
    import pymc

    import disagree

    return {"disagree": disagree.__version__, "pymc": pymc.__version__,
            "nutpie": nutpie.__version__, "arviz": arviz.__version__, "numpy": np.__version__}
