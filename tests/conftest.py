"""Surveys and fits shared by several test modules (session-scoped: each is made once).

``interaction_survey`` has a strong politics x item interaction on emotional awareness (sd 1.0
of the item-by-level deviations); ``plain_survey`` is the same design without one. Both are
small (400 raters, 120 responses, 15 ratings a rater, one dimension), so a fit takes well under a
minute on 2 cores.

Under pytest-xdist (the README's test command: ``-n 2 --dist loadfile``) the scheduler made
here keeps every test module on one worker, so that its module-scoped fixtures are made once, and
puts every module that names one of the shared fits below on one worker too ("shared-fits"), so
that each fit is made once; the notebooks (``SPLIT``) go one by one, to either worker. The
modules known to be long start first (``HEAVY``), so that none is left alone at the end.
(pytest-xdist's own ``--dist loadgroup`` cannot do this on pytest 9.2: it
groups by rewriting node ids, which pytest 9.2 ignores; pytest-xdist issue #1386.)
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path

import pytest

from disagree.data import simulate_survey
from disagree.model import fit

FACTORS = ["gender", "politics"]
REFERENCE = {"gender": "female", "politics": "liberal"}
DIMENSION = "emotional_awareness"
DESIGN = dict(n_raters=400, n_prompts=24, prompts_per_rater=3, dimensions=(DIMENSION,))
SETTINGS = dict(draws=500, tune=500, chains=2, seed=3, progress=False)
#: The session-scoped fits of this file: a test module that names one is in "shared-fits".
SHARED_FITS = re.compile(r"\b(interaction_fit|plain_fit)(_without)?\b")
#: Units of work started first under pytest-xdist, longest first (as measured on 2 cores); the
#: others follow in collection order, those with a test marked slow first.
HEAVY = ("shared-fits", "test_model_fit", "test_bambi_reference", "test_interaction_dimensions",
         "test_notebooks", "test_evaluate_grid", "test_train_run", "test_numpyro", "test_evaluate",
         "test_rater_effects_option", "test_sampling_until_ok", "test_pairs", "test_simulate")
ROOT = Path(__file__).resolve().parents[1]
#: Modules whose tests are independent and long (a notebook each): every test its own unit.
SPLIT = ("test_notebooks",)


@functools.cache
def unit_of(module: str) -> str:
    """The pytest-xdist unit of work of a test module (its node id): "shared-fits" or its name."""
    path = ROOT / module
    if path.suffix == ".py" and path.is_file() and SHARED_FITS.search(path.read_text("utf-8")):
        return "shared-fits"
    return path.stem


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``: whole modules, the "shared-fits" ones together, in collection order."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::")[0]
            return nodeid if Path(module).stem in SPLIT else unit_of(module)

    config.option.loadscopereorder = False  # the units in the order made below, not by size
    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """On a pytest-xdist worker, put the units known to be long first (see the docstring)."""
    if not hasattr(config, "workerinput"):
        return
    rank, first = {}, {}
    for item in items:
        unit = unit_of(item.nodeid.split("::")[0])
        slow = item.get_closest_marker("slow") is not None
        r = HEAVY.index(unit) if unit in HEAVY else len(HEAVY) + (0 if slow else 1)
        rank[unit] = min(rank.get(unit, r), r)
        first.setdefault(unit, len(first))
    units = [unit_of(item.nodeid.split("::")[0]) for item in items]
    order = sorted(range(len(items)), key=lambda k: (rank[units[k]], first[units[k]], k))
    items[:] = [items[k] for k in order]


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
