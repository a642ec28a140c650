"""Prior sensitivity on what is reported, and the estimand table (issue 24).

The cut points' prior rebuilt from the draws equals the model's own log density of its prior
terms at a point; power-scaling covers the contrasts and ``item_group_sd``; the estimand table
holds the headline comparisons under every definition, its headline entries the contrasts
table's. One shared fit (``interaction_fit``: one dimension, a politics interaction of sd 1.0,
two prior sds out).
"""

from __future__ import annotations

import dataclasses
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import DIMENSION

from disagree.cli import main
from disagree.errors import DisagreeWarning, ModelError
from disagree.model import diagnose
from disagree.model.build import build_model
from disagree.model.contrasts import HEADLINE_ESTIMAND, estimand_draws
from disagree.model.estimand_table import (
    COLUMNS,
    estimand_table,
    format_estimand_table,
    headline_comparisons,
)
from disagree.model.sensitivity import (
    contrast_posterior,
    log_prior,
    plot_prior_posterior,
    prior_sensitivity,
    reported_sensitive,
    sensitivity_text,
)
from disagree.model.spec import model_data

pytestmark = pytest.mark.filterwarnings("ignore:fit diagnostics")
CONSERVATIVE = ("politics", "conservative")
#: The model's variables that carry a prior term of ``log_prior``, and those it reads.
PRIOR_RVS = ["beta", "cutpoints_centred", "rater_sd", "item_sd", "item_group_sd"]
READ = ["beta", "cutpoints", "rater_sd", "item_sd", "item_group_sd", "rater_effect"]


@pytest.fixture(scope="module")
def sensitivity(interaction_fit):
    """Threshold 0.04: item_group_sd's sensitivity is 0.051 here, the default 0.05 too near."""
    return prior_sensitivity(interaction_fit, threshold=0.04)


def _at_point(fit, model, point):
    """``fit`` with a one-draw posterior: the model's variables at ``point``."""
    outs = model.replace_rvs_by_values([model[n] for n in READ])
    values = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")(point)
    dims = model.named_vars_to_dims
    post = xr.Dataset({n: (("chain", "draw", *dims[n]), np.asarray(v)[None, None])
                       for n, v in zip(READ, values, strict=True)},
                      coords={k: list(v) for k, v in model.coords.items()})
    idata = az.InferenceData(posterior=post, constant_data=fit.idata.constant_data)
    return dataclasses.replace(fit, idata=idata)


def _terms(fit, model, point) -> dict[str, tuple[float, float]]:
    """Per prior variable: ``log_prior``'s term and PyMC's logp of it, at ``point``."""
    prior = log_prior(_at_point(fit, model, point))
    assert sorted(prior.data_vars) == sorted(PRIOR_RVS)
    return {n: (float(prior[n].sum()),
                float(model.compile_logp(vars=[model[n]], jacobian=False)(point)))
            for n in PRIOR_RVS}


def test_log_prior_is_the_models_log_density_of_its_priors(interaction_fit, interaction_survey):
    spec = interaction_fit.spec
    model = build_model(spec, model_data(interaction_survey.table, spec))
    rng = np.random.default_rng(24)
    points = [{k: v + rng.normal(0.0, 0.7, np.shape(v)) for k, v in
               model.initial_point().items()} for _ in range(2)]
    # the rater effects' mean is far from zero at these points, so the two forms differ
    for point in points:
        effects = _at_point(interaction_fit, model, point).idata.posterior["rater_effect"]
        assert abs(float(effects.mean())) > 0.01
    (a, b) = (_terms(interaction_fit, model, p) for p in points)
    for name in PRIOR_RVS:
        # equal up to a constant (PyMC folds its Normal's log(sqrt(2 pi)) in single
        # precision, 3e-8 a cut point), which power-scaling ignores: the differences between
        # two points are equal to rounding
        assert a[name][0] - b[name][0] == pytest.approx(a[name][1] - b[name][1], abs=1e-12)
        assert a[name][0] == pytest.approx(a[name][1], abs=1e-6)
    # the form before the rater effects' mean moved to the cut points reads another prior
    form = {**interaction_fit.info["parametrisation"], "rater_mean_out": False}
    old_info = {**interaction_fit.info, "parametrisation": form}
    old = dataclasses.replace(interaction_fit, info=old_info)
    (c, d) = (_terms(old, model, p) for p in points)
    gap = (c["cutpoints_centred"][0] - d["cutpoints_centred"][0]) - (a["cutpoints_centred"][1]
                                                                     - b["cutpoints_centred"][1])
    assert abs(gap) > 1e-3


def test_log_prior_needs_the_rater_effects(interaction_fit):
    lean = dataclasses.replace(interaction_fit, idata=az.InferenceData(
        posterior=interaction_fit.idata.posterior.drop_vars("rater_effect"),
        constant_data=interaction_fit.idata.constant_data))
    with pytest.raises(ModelError, match=r"the prior sensitivity \(the cut points' prior\) "
                                         r"needs the rater effects"):
        log_prior(lean)


def test_contrast_draws_are_the_contrasts_tables(interaction_fit):
    draws = contrast_posterior(interaction_fit)
    table = interaction_fit.contrasts().set_index(["factor", "level", "measure"])
    for factor, level in [("gender", "male"), CONSERVATIVE, ("politics", "moderate")]:
        for measure in ("relative_pct", "pp"):
            value = draws[measure].sel(contrast=f"{DIMENSION}, {factor}[{level}]")
            assert value.dims == ("chain", "draw")
            row = table.loc[(factor, level, measure)]
            assert float(value.mean()) == pytest.approx(row["estimate"], rel=1e-12)
            assert float(np.quantile(value.values, 0.025)) == pytest.approx(row["lower"],
                                                                              rel=1e-12)


def test_power_scaling_covers_the_contrasts_and_item_group_sd(sensitivity):
    table = sensitivity.set_index("parameter")
    names = [f"{m}[{DIMENSION}, {f}[{lv}]]" for m in ("relative_pct", "pp")
             for f, lv in [("gender", "male"), CONSERVATIVE, ("politics", "moderate")]]
    sd = f"item_group_sd[{DIMENSION}, politics]"
    assert set(names) | {sd, f"beta[{DIMENSION}, politics[conservative]]"} <= set(table.index)
    assert (table[["prior", "likelihood"]].loc[[*names, sd]] >= 0).all().all()
    # 400 raters inform the contrasts: their posteriors follow the likelihood, not the prior
    assert (table.loc[names, "likelihood"] > 0.05).all()
    assert (table.loc[names, "diagnosis"] == "-").all(), table.loc[names]
    # the true sd (1.0) is two prior sds out and there are 17 ratings an item x level cell:
    # the prior pulls on item_group_sd more than on anything else, and the data pull back
    assert table["prior"].idxmax() == sd
    assert table.loc[sd, "prior"] > 2 * table.drop(index=sd)["prior"].max()
    assert table.loc[sd, "diagnosis"] == "prior-data conflict"
    assert sensitivity.attrs["reported"] == reported_sensitive(sensitivity)
    assert sd in sensitivity.attrs["reported"]
    assert f"{sd} (" in sensitivity_text(sensitivity, reported=True)
    assert f"threshold 0.04): {sd} (prior-data conflict, prior 0.0" in \
        sensitivity_text(sensitivity, reported=True)


def test_reported_names_only_what_a_reader_is_shown():
    table = pd.DataFrame({"parameter": ["cutpoints[x, 1|2]", "relative_pct[x, g[m]]",
                                        "item_sd[x]", "beta[x, g[m]]", "pp[x, g[m]]"],
                          "prior": [0.2, 0.06, 0.3, 0.01, 0.07],
                          "likelihood": [0.01, 0.2, 0.01, 0.2, 0.01],
                          "diagnosis": ["strong prior / weak likelihood", "prior-data conflict",
                                        "strong prior / weak likelihood", "-",
                                        "strong prior / weak likelihood"]})
    assert reported_sensitive(table) == ["relative_pct[x, g[m]]", "pp[x, g[m]]"]
    assert sensitivity_text(table, reported=True) == (
        "prior sensitivity: the posterior of 2 reported quantity(s) moves when the priors are "
        "power-scaled (threshold 0.05): relative_pct[x, g[m]] (prior-data conflict, prior "
        "0.060, likelihood 0.200); pp[x, g[m]] (strong prior / weak likelihood, prior 0.070, "
        "likelihood 0.010)")
    table["diagnosis"] = "-"
    assert sensitivity_text(table, reported=True) == (
        "prior sensitivity: no reported quantity's posterior moves when the priors are "
        "power-scaled (threshold 0.05)")


def test_prior_posterior_plot_has_a_panel_per_sd(interaction_fit):
    fig, frame = plot_prior_posterior(interaction_fit)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == \
        [f"item_group_sd[{DIMENSION}, politics]"]
    (row,) = frame.itertuples()
    draws = interaction_fit.idata.posterior["item_group_sd"].values.ravel()
    assert row.prior_scale == 0.5 and row.posterior_mean == pytest.approx(draws.mean())
    assert row.prior_below == pytest.approx(0.1585, abs=1e-4)  # P(|N(0, 0.5)| < 0.1)
    without = dataclasses.replace(interaction_fit, idata=az.InferenceData(
        posterior=interaction_fit.idata.posterior.drop_vars("item_group_sd")))
    with pytest.raises(ModelError, match="no group-by-item interactions"):
        plot_prior_posterior(without)


def test_estimand_table_holds_every_definition(interaction_fit):
    assert headline_comparisons(interaction_fit.spec) == [(DIMENSION, *CONSERVATIVE)]
    table = estimand_table(interaction_fit)
    assert list(table.columns) == COLUMNS == [
        "dimension", "factor", "level", "reference", "definition", "measure", "rater",
        "threshold", "estimate", "lower", "upper"]
    assert list(table["definition"]) == [
        "relative_pct P(>=2) new rater", "relative_pct P(>=3) new rater",
        "relative_pct P(>=4) new rater", "relative_pct P(>=5) new rater",
        "relative_pct P(>=4) typical rater", "pp P(>=4) new rater", "odds_ratio",
        "mean_rating new rater"]
    assert table.attrs["estimand"] == HEADLINE_ESTIMAND
    assert (table["lower"] < table["estimate"]).all() and (table["estimate"]
                                                            < table["upper"]).all()
    # the headline entry is the contrasts table's; the others are their own measures' draws
    contrasts = interaction_fit.contrasts(measures="all").set_index(["level", "rater", "measure"])
    head = table.set_index("definition").loc["relative_pct P(>=4) new rater"]
    ref = contrasts.loc[("conservative", "new", "relative_pct")]
    np.testing.assert_allclose(head[["estimate", "lower", "upper"]].astype(float),
                               ref[["estimate", "lower", "upper"]].astype(float), rtol=1e-12)
    for definition, measure in [("odds_ratio", "odds_ratio"),
                                ("mean_rating new rater", "mean_rating")]:
        row = table.set_index("definition").loc[definition]
        assert row["estimate"] == pytest.approx(
            contrasts.loc[("conservative", "new", measure), "estimate"], rel=1e-12)
    typical = estimand_draws(interaction_fit, DIMENSION, 4, "typical")[CONSERVATIVE]["relative_pct"]
    assert table.set_index("definition").loc["relative_pct P(>=4) typical rater",
                                             "estimate"] == pytest.approx(typical.mean())
    text = format_estimand_table(table)
    assert text.splitlines()[0].startswith("| comparison | relative_pct P(>=2) new rater |")
    assert f"| {DIMENSION} politics: conservative vs liberal | " in text
    with pytest.raises(ModelError, match=r"'Martian' is not a non-reference level"):
        estimand_table(interaction_fit, [(DIMENSION, "politics", "Martian")])


def test_diagnose_writes_the_report_and_the_cli_states_the_estimand(interaction_fit, tmp_path,
                                                                   capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DisagreeWarning)
        written = diagnose(interaction_fit, tmp_path, sensitivity=False)
    names = [p.name for p in written]
    assert names[-2:] == ["estimands.csv", "report.md"]
    assert "prior_posterior_item_group_sd.png" not in names  # sensitivity=False
    csv = pd.read_csv(tmp_path / "estimands.csv")
    assert list(csv.columns) == COLUMNS and len(csv) == 8
    report = (tmp_path / "report.md").read_text()
    assert HEADLINE_ESTIMAND in report and "## Estimand table" in report
    assert "## Prior sensitivity" not in report
    fit_dir = dataclasses.replace(interaction_fit).save(tmp_path / "fit")  # a copy: its path
    capsys.readouterr()
    assert main(["contrasts", str(fit_dir), "--out", str(tmp_path / "c.csv")]) == 0
    assert HEADLINE_ESTIMAND in capsys.readouterr().out
    assert main(["contrasts", str(fit_dir), "--out", str(tmp_path / "m.csv"), "--on",
                 "mean"]) == 0
    assert "mean_rating: the difference in expected rating" in capsys.readouterr().out


def test_diagnose_names_the_sensitive_reported_quantities(interaction_fit, sensitivity, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr("disagree.model.report.prior_sensitivity", lambda fit: sensitivity)
    with pytest.warns(DisagreeWarning, match="prior sensitivity: "):
        written = diagnose(interaction_fit, tmp_path, estimands=False)
    assert tmp_path / "prior_posterior_item_group_sd.png" in written
    assert (tmp_path / "prior_posterior_item_group_sd.png").stat().st_size > 5000
    report = (tmp_path / "report.md").read_text()
    assert sensitivity_text(sensitivity, reported=True) in report
    assert f"item_group_sd[{DIMENSION}, politics]" in report
