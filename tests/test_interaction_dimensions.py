"""Interactions on some dimensions only: ``interactions={dimension: [factor, ...]}``.

The mapping form gives the same posterior names as the list form, with zeros where a factor has
no deviations; the list form (and a mapping that covers every dimension) builds today's graph.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from disagree.cli import main
from disagree.cli.model import interactions_arg
from disagree.data import simulate_survey
from disagree.errors import ModelError
from disagree.model import ModelSpec, fit, load_fit, make_spec
from disagree.model.build import build_model
from disagree.model.sensitivity import log_prior
from disagree.model.spec import model_data

FACTORS = ["gender", "politics"]
REFERENCE = {"gender": "female", "politics": "liberal"}
DIMS = ("toxicity", "emotional_awareness")
MAPPING = {"emotional_awareness": ["politics"], "toxicity": ["gender"]}
FITTED = {"emotional_awareness": ["politics"]}  # the one true interaction of the survey
#: The free random variables of a list-form fit (the graph before the mapping form existed).
LIST_FORM_RVS = ["beta", "cutpoints_centred", "rater_chol", "rater_z", "item_sd",
                 "item_effect_t", "item_group_sd", "item_group_z_gender", "item_group_z_politics"]


@pytest.fixture(scope="module")
def survey():
    return simulate_survey(seed=5, n_raters=300, n_prompts=20, prompts_per_rater=3,
                           dimensions=DIMS, interactions={"emotional_awareness": {"politics": 1.0}})


@pytest.fixture(scope="module")
def mapped_fit(survey):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="fit diagnostics")
        return fit(survey.table, FACTORS, REFERENCE, interactions=FITTED, draws=300, tune=300,
                   chains=2, seed=1, progress=False)


def spec_of(survey, interactions):
    return make_spec(survey.table, FACTORS, REFERENCE, interactions=interactions)


def test_spec_records_the_dimensions_of_each_factor(survey):
    spec = spec_of(survey, MAPPING)
    assert spec.interactions == ("gender", "politics")  # model factor order
    assert spec.interaction_dimensions == (("gender", ("toxicity",)),
                                           ("politics", ("emotional_awareness",)))
    assert spec.interaction_cells == [("toxicity", "gender"), ("emotional_awareness", "politics")]
    assert ModelSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    # a mapping that gives every factor every dimension is the list form
    full = spec_of(survey, {d: ["politics", "gender"] for d in DIMS})
    assert full == spec_of(survey, ["gender", "politics"]) and full.interaction_dimensions == ()
    assert "interaction_dimensions" not in full.to_json()
    old = {k: v for k, v in spec.to_json().items() if k != "interaction_dimensions"}
    assert ModelSpec.from_json(old).interaction_dims("gender") == DIMS  # older fits


@pytest.mark.parametrize(("interactions", "named"), [
    ({"helpfulness": ["politics"]}, "'helpfulness'"),
    ({"toxicity": ["religion"]}, "'religion'"),
    ({"toxicity": ["politics", "politics"]}, "distinct"),
    (["religion"], "not factors: religion"),
])
def test_errors_name_the_bad_dimension_or_factor(survey, interactions, named):
    with pytest.raises(ModelError, match=named):
        spec_of(survey, interactions)


def test_list_form_builds_todays_graph(survey):
    spec = spec_of(survey, ["politics", "gender"])
    model = build_model(spec, model_data(survey.table, spec))
    assert sorted(v.name for v in model.free_RVs) == sorted(LIST_FORM_RVS)
    assert "interaction_cell" not in model.coords


def test_mapping_form_samples_only_the_mapped_deviations(survey):
    spec = spec_of(survey, MAPPING)
    model = build_model(spec, model_data(survey.table, spec))
    names = {v.name for v in model.free_RVs}
    assert "item_group_sd_free" in names and "item_group_sd" not in names
    assert model["item_group_z_politics"].type.shape[0] == 1  # one dimension of deviations
    assert list(model.coords["interaction_cell"]) == ["toxicity:gender",
                                                      "emotional_awareness:politics"]


def test_zeros_off_the_mapping_and_the_mapped_sd(mapped_fit):
    post = mapped_fit.idata.posterior
    effect, sd = post["item_group_effect"], post["item_group_sd"]
    assert sd.dims == ("chain", "draw", "dimension", "factor")
    assert list(sd.coords["factor"].values) == ["politics"]
    assert float(abs(sd.sel(dimension="toxicity")).max()) == 0.0
    assert float(abs(effect.sel(dimension="toxicity")).max()) == 0.0
    mapped = sd.sel(dimension="emotional_awareness", factor="politics").values.ravel()
    assert np.quantile(mapped, 0.025) > 0.3  # truth 1.0
    assert float(abs(effect.sel(dimension="emotional_awareness",
                                interaction_level="politics[moderate]")).max()) > 0.1


def test_diagnostics_judge_the_free_sds(mapped_fit):
    diag = mapped_fit.diagnostics
    params = {p["parameter"]: p for p in diag["parameters"]}
    assert "item_group_sd_free[emotional_awareness:politics]" in params
    assert not any(p.startswith("item_group_sd[") for p in params)
    assert all(np.isfinite(p["rhat"]) for p in params.values())
    assert isinstance(diag["ok"], bool) and diag["rhat_max"] is not None
    assert not any("nan" in line for line in diag["failures"])
    prior = log_prior(mapped_fit)
    assert "item_group_sd_free" in prior and "item_group_sd" not in prior


def test_model_json_round_trip(mapped_fit, tmp_path):
    mapped_fit.save(tmp_path / "fit")
    meta = json.loads((tmp_path / "fit" / "model.json").read_text())
    assert meta["spec"]["interaction_dimensions"] == {"politics": ["emotional_awareness"]}
    loaded = load_fit(tmp_path / "fit")
    assert loaded.spec == mapped_fit.spec
    assert loaded.contrasts()["dimension"].nunique() == 2  # reads the zeros as no deviation


def test_cli_parses_both_forms(monkeypatch, survey, tmp_path, capsys):
    assert interactions_arg("politics, ethnicity") == ["politics", "ethnicity"]
    assert interactions_arg("emotional_awareness:politics,emotional_awareness:ethnicity,"
                            "toxicity:gender") == {"emotional_awareness": ["politics", "ethnicity"],
                                                   "toxicity": ["gender"]}
    path = survey.save(tmp_path / "d")
    seen = {}

    class Done:
        def summary(self):
            return "ok"

    def fake_fit(table, factors, reference, dimensions, **kwargs):
        seen.update(kwargs)
        return Done()

    monkeypatch.setattr("disagree.model.fit", fake_fit)
    argv = ["fit", str(path), "--out", str(tmp_path / "f"), "--factors", "gender,politics"]
    assert main([*argv, "--interactions", "toxicity:gender,emotional_awareness:politics"]) == 0
    assert seen["interactions"] == {"toxicity": ["gender"], "emotional_awareness": ["politics"]}
    monkeypatch.undo()
    assert main([*argv, "--interactions", "helpfulness:politics"]) == 2
    assert "'helpfulness'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--interactions", "politics,toxicity:gender"])
    assert "not a mix" in capsys.readouterr().err


def test_effect_posterior_takes_the_free_cells():
    import xarray as xr

    from disagree.model.diagnostics import effect_posterior

    values = np.random.default_rng(0).random((2, 5, 2, 2)) + 0.1
    values[:, :, 0, 1] = values[:, :, 1, 0] = 0.0
    sd = xr.DataArray(values, dims=("chain", "draw", "dimension", "factor"),
                      coords={"dimension": ["a", "b"], "factor": ["f", "g"]})
    post = xr.Dataset({"beta": sd.isel(factor=0), "item_group_sd": sd})
    out = effect_posterior(post)
    assert list(out.data_vars) == ["beta", "item_group_sd_free"]
    assert list(out["item_group_sd_free"].coords["interaction_cell"].values) == ["a:f", "b:g"]
    assert np.array_equal(out["item_group_sd_free"].values[..., 1], values[:, :, 1, 1])
    stored = post.assign(item_group_sd_free=out["item_group_sd_free"])  # kept by the sampler
    assert effect_posterior(stored)["item_group_sd_free"].identical(out["item_group_sd_free"])
    full = post.assign(item_group_sd=sd + 0.1)  # every cell free: judged as it is
    assert list(effect_posterior(full).data_vars) == ["beta", "item_group_sd"]


def test_a_factor_without_deviations_here_makes_no_profiles():
    """Zero deviations (a factor left out on this dimension) give the profiles of the rest."""
    import pandas as pd

    from disagree.ordinal import profile_item_effects

    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 3))  # (draws, items)
    levels = {"gender": ["f", "m"], "politics": ["l", "c", "m"]}
    cells = pd.DataFrame({"gender": ["f", "m", "f", "m"], "politics": ["l", "l", "c", "m"]})
    w_politics = rng.normal(size=(4, 3, 3))
    effects, profile = profile_item_effects(
        v, {"gender": np.zeros((4, 3, 2)), "politics": w_politics}, cells, levels)
    assert effects.shape == (4, 3, 3)  # the three politics levels, not six (gender x politics)
    np.testing.assert_array_equal(profile, [0, 0, 1, 2])  # sorted codes: l=0, c=1, m=2
    np.testing.assert_allclose(effects[:, profile[2]], v + w_politics[:, :, 1])
    alone, _ = profile_item_effects(v, {"gender": np.zeros((4, 3, 2))}, cells, levels)
    np.testing.assert_array_equal(alone, v[:, None, :])
