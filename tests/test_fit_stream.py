"""A fit saved to a directory streams its draws to disk while sampling (nutpie's Zarr store):
the same draws as in memory, no scratch left behind, and an interrupted fit leaves no directory
that looks complete; ADVI's draws, made a batch at a time, do not depend on the batch.

Uses the session's ``plain_survey`` and its in-memory fit ``plain_fit_without`` (conftest).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import FACTORS, REFERENCE, SETTINGS

import disagree.model.fitting as fitting
import disagree.model.sampling as sampling
from disagree.errors import ModelError
from disagree.model import fit, load_fit
from disagree.model.build import build_model
from disagree.model.sampling import SamplerSettings, get_sampler
from disagree.model.spec import make_spec, model_data


@pytest.fixture(scope="module")
def streamed(plain_survey, tmp_path_factory):
    out = tmp_path_factory.mktemp("streamed") / "fit"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fit diagnostics")
        return fit(plain_survey.table, FACTORS, REFERENCE, out_dir=out, stream=True,
                   **SETTINGS), out


def test_streamed_draws_equal_the_in_memory_ones(streamed, plain_fit_without):
    result, out = streamed
    memory = plain_fit_without.idata
    post = result.idata.posterior
    assert sorted(post.data_vars) == sorted(memory.posterior.data_vars)
    for name in memory.posterior.data_vars:
        np.testing.assert_array_equal(post[name].values, memory.posterior[name].values,
                                      err_msg=name)
    assert sorted(result.idata.sample_stats.data_vars) == \
        sorted(memory.sample_stats.data_vars)
    assert result.diagnostics["ess_bulk_min"] == plain_fit_without.diagnostics["ess_bulk_min"]
    assert [p.name for p in out.parent.iterdir()] == ["fit"]  # the scratch store is gone
    assert load_fit(out).idata.posterior["beta"].equals(memory.posterior["beta"])


def test_an_interrupted_fit_leaves_no_complete_looking_directory(plain_survey, tmp_path,
                                                                 monkeypatch):
    out = tmp_path / "fit"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("interrupted while sampling")

    monkeypatch.setattr(fitting, "run_sampler", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(plain_survey.table, FACTORS, REFERENCE, out_dir=out, stream=True, **SETTINGS)
    assert list(tmp_path.iterdir()) == []  # neither the fit nor the scratch store
    out.mkdir()
    (out / "posterior.nc").write_bytes(b"half")  # a crash between the writes
    with pytest.raises(ModelError, match="incomplete fit directory, missing "
                                         "diagnostics.json, model.json"):
        load_fit(out)


def test_advi_draws_do_not_depend_on_the_batch_and_keep_only_the_model_quantities(
        plain_survey, monkeypatch):
    spec = make_spec(plain_survey.table, FACTORS, REFERENCE, None, None, None, "dummy")
    model = build_model(spec, model_data(plain_survey.table, spec))
    settings = SamplerSettings("advi", draws=30, chains=2, seed=5, advi_iterations=300,
                               progress=False)
    whole, _ = get_sampler("advi")(model, settings)
    monkeypatch.setattr(sampling, "ADVI_BATCH", 7)  # 60 draws in 9 batches
    batched, _ = get_sampler("advi")(model, settings)
    post = whole.posterior
    assert sorted(post.data_vars) == sorted(settings.kept(model.named_vars))
    assert (post.sizes["chain"], post.sizes["draw"]) == (1, 60)
    assert post["cutpoints"].dims == ("chain", "draw", "dimension", "cutpoint")
    for name in post.data_vars:
        np.testing.assert_array_equal(batched.posterior[name].values, post[name].values,
                                      err_msg=name)
    assert (np.diff(post["cutpoints"].values, axis=-1) > 0).all()  # constrained space
    assert (post["rater_sd"].values > 0).all() and post["beta"].std() > 0  # draws, not a point
