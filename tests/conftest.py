"""Surveys and fits shared by several test modules (session-scoped: each is made once).

``interaction_survey`` has a strong politics x item interaction on emotional awareness (sd 1.0
of the item-by-level deviations); ``plain_survey`` is the same design without one. Both are
small (400 raters, 120 responses, 15 ratings a rater, one dimension), so a fit takes well under a
minute on 2 cores.
"""

from __future__ import annotations

import warnings

import pytest

from disagree.data import simulate_survey
from disagree.model import fit

FACTORS = ["gender", "politics"]
REFERENCE = {"gender": "female", "politics": "liberal"}
DIMENSION = "emotional_awareness"
DESIGN = dict(n_raters=400, n_prompts=24, prompts_per_rater=3, dimensions=(DIMENSION,))
SETTINGS = dict(draws=500, tune=500, chains=2, seed=3, progress=False)


def _fit(table, interactions):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fit diagnostics")
        return fit(table, FACTORS, REFERENCE, interactions=interactions, **SETTINGS)


@pytest.fixture(scope="session")
def interaction_survey():
    return simulate_survey(seed=5, interactions={DIMENSION: {"politics": 1.0}}, **DESIGN)


@pytest.fixture(scope="session")
def plain_survey():
    return simulate_survey(seed=5, interactions={}, **DESIGN)


@pytest.fixture(scope="session")
def interaction_fit(interaction_survey):
    """The interaction survey fitted with a politics interaction."""
    return _fit(interaction_survey.table, ["politics"])


@pytest.fixture(scope="session")
def interaction_fit_without(interaction_survey):
    """The interaction survey fitted without interactions (the wrong model)."""
    return _fit(interaction_survey.table, None)


@pytest.fixture(scope="session")
def plain_fit(plain_survey):
    """The survey without interactions fitted with a politics interaction."""
    return _fit(plain_survey.table, ["politics"])


@pytest.fixture(scope="session")
def plain_fit_without(plain_survey):
    """The survey without interactions fitted without interactions (the right model)."""
    return _fit(plain_survey.table, None)
