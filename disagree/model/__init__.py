"""Bayesian hierarchical ordinal model of demographic effects on ratings.

Depends on :mod:`disagree.data` and :mod:`disagree.ordinal` only. ``fit`` builds the joint
cumulative-logit model in PyMC, samples it (nutpie by default), and returns a :class:`Fit` with
diagnostics, contrasts and posterior predictive checks (``diagnose`` and ``write_contrasts``
write them to files, with the power-scaling prior sensitivity); ``compare`` ranks fits of the
same ratings by PSIS-LOO and says whether group-by-item interactions are supported;
``bambi_formula`` gives the equivalent bambi model of one dimension, the reference
implementation.
"""

from disagree.model.contrasts import contrast_draws, contrasts_table, population_cells
from disagree.model.diagnostics import diagnostics_summary
from disagree.model.fitting import Fit, fit, load_fit
from disagree.model.loo import (
    compare,
    compare_text,
    format_comparison,
    pointwise_loglik,
    write_comparison,
)
from disagree.model.reference import bambi_data, bambi_formula, bambi_model
from disagree.model.report import diagnose, write_contrasts
from disagree.model.sampling import no_rater_effects, require_rater_effects
from disagree.model.sensitivity import prior_sensitivity, sensitivity_text
from disagree.model.spec import DEFAULT_PRIORS, ModelSpec, make_spec

__all__ = ["DEFAULT_PRIORS", "Fit", "ModelSpec", "bambi_data", "bambi_formula", "bambi_model",
           "compare", "compare_text", "contrast_draws", "contrasts_table", "diagnose",
           "diagnostics_summary", "fit", "format_comparison", "load_fit", "make_spec",
           "no_rater_effects", "pointwise_loglik", "population_cells",
           "prior_sensitivity", "require_rater_effects", "sensitivity_text", "write_comparison",
           "write_contrasts"]
