"""Fitting the model: recovery of known truth, determinism, files, contrasts, PPC, CLI.

One small joint fit (2 dimensions, 300 raters) is shared by most tests; sampling is short, so
these tests check properties that hold at this size, not the paper-size figures (those are in
benchmarks/).
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from disagree.cli import main
from disagree.data import save_ratings, simulate_survey
from disagree.errors import DisagreeError, ModelError
from disagree.labels import soft_labels
from disagree.model import fit, load_fit

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]
FACTORS = ["gender", "politics", "ethnicity"]
REFERENCE = {"gender": "female", "politics": "liberal", "ethnicity": "White"}
DIMS = ["toxicity", "emotional_awareness"]
SETTINGS = dict(draws=500, tune=500, chains=2, seed=7, progress=False)


@pytest.fixture(scope="module")
def survey():
    # the model without interactions, on data from that model (the default survey has
    # group-by-response deviations, which a model without them would absorb into its contrasts)
    return simulate_survey(seed=11, n_raters=300, n_prompts=20, interactions={})


@pytest.fixture(scope="module")
def fitted(survey, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    result = fit(survey.table, FACTORS, REFERENCE, DIMS, out_dir=out, **SETTINGS)
    return result, out


def truth_frame(survey) -> pd.DataFrame:
    eff = pd.DataFrame(survey.truth["effects"]).assign(measure="log_odds")
    eff = eff.rename(columns={"log_odds": "truth"})
    con = pd.DataFrame(survey.truth["contrasts"]).rename(columns={"estimate": "truth"})
    keys = ["dimension", "factor", "level", "measure"]
    return pd.concat([eff[keys + ["truth"]], con[keys + ["truth"]]])


def test_recovers_the_simulated_effects(survey, fitted):
    result, _ = fitted
    c = result.contrasts().merge(truth_frame(survey), on=["dimension", "factor", "level",
                                                          "measure"])
    log_odds = c[c.measure == "log_odds"]
    inside = (log_odds.lower <= log_odds.truth) & (log_odds.truth <= log_odds.upper)
    assert len(log_odds) == 2 * 8
    assert inside.mean() >= 0.85, log_odds[~inside]
    for dim, level in [("toxicity", "male"), ("emotional_awareness", "conservative"),
                       ("emotional_awareness", "Black")]:
        row = c[(c.dimension == dim) & (c.level == level) & (c.measure == "relative_pct")]
        row = row.iloc[0]
        assert row.lower <= row.truth <= row.upper
        sd = (row.upper - row.lower) / 3.92
        assert abs(row.estimate - row.truth) < 2.5 * sd


def test_diagnostics_file_and_posterior_dims(fitted):
    result, out = fitted
    diag = json.loads((out / "diagnostics.json").read_text())
    assert {"ok", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "sampler",
            "seconds", "parameters"} <= set(diag)
    assert diag["sampler"] == "nutpie" and diag["divergences"] == 0
    assert diag["rhat_max"] < 1.05
    post = result.idata.posterior
    assert post["beta"].dims == ("chain", "draw", "dimension", "factor_level")
    assert post["cutpoints"].dims == ("chain", "draw", "dimension", "cutpoint")
    assert post["rater_effect"].dims == ("chain", "draw", "rater", "dimension")
    assert post["item_effect"].dims == ("chain", "draw", "item", "dimension")
    assert list(post["dimension"].values) == DIMS
    model = json.loads((out / "model.json").read_text())
    assert model["spec"]["levels"]["gender"][0] == "female"
    assert model["data_hash"] == simulate_survey(seed=11, n_raters=300, n_prompts=20,
                                                 interactions={}).table.data_hash


def test_same_seed_gives_identical_draws(survey, fitted):
    again = fit(survey.table, FACTORS, REFERENCE, DIMS, **SETTINGS)
    np.testing.assert_array_equal(again.idata.posterior["beta"].values,
                                  fitted[0].idata.posterior["beta"].values)
    assert again.diagnostics["seconds"]["compile"] < 0.5  # the same model: nutpie's compile kept


def test_load_round_trip_and_resume_without_sampling(survey, fitted, monkeypatch):
    result, out = fitted
    loaded = load_fit(out)
    np.testing.assert_array_equal(loaded.idata.posterior["beta"].values,
                                  result.idata.posterior["beta"].values)
    assert loaded.spec == result.spec
    assert list(loaded.spec.levels) == FACTORS  # order matters: it defines the design
    pd.testing.assert_frame_equal(loaded.raters, result.raters)
    pd.testing.assert_frame_equal(loaded.contrasts(), result.contrasts())

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled although a complete fit was there")
    monkeypatch.setattr("disagree.model.fitting.run_sampler", no_sampling)
    resumed = fit(survey.table, FACTORS, REFERENCE, DIMS, out_dir=out, **SETTINGS)
    np.testing.assert_array_equal(resumed.idata.posterior["beta"].values,
                                  result.idata.posterior["beta"].values)


def test_poststratifying_to_the_sample_mix_changes_nothing(fitted):
    result, _ = fitted
    mix = result.raters.value_counts().rename("proportion").reset_index()
    default = result.contrasts()
    post = result.contrasts(population=mix)
    np.testing.assert_allclose(post["estimate"], default["estimate"], rtol=1e-9, atol=1e-9)
    only_men = pd.DataFrame({"gender": ["male"], "proportion": [1.0]})
    shifted = result.contrasts(population=only_men)
    assert not np.allclose(shifted["estimate"], default["estimate"])


def test_threshold_and_mean_options(fitted):
    result, _ = fitted
    high5 = result.contrasts(threshold=5)
    mean = result.contrasts(on="mean")
    assert set(mean["measure"]) == {"log_odds", "mean_rating"}  # no percent of a 1..K mean
    tox = high5[(high5.dimension == "toxicity") & (high5.level == "male")]
    assert set(tox["measure"]) == {"log_odds", "relative_pct", "pp"}
    # the log-odds coefficient does not depend on the threshold
    pd.testing.assert_frame_equal(
        high5[high5.measure == "log_odds"].reset_index(drop=True),
        result.contrasts()[lambda d: d.measure == "log_odds"].reset_index(drop=True))


def test_posterior_predictive_table_matches_the_data(survey, fitted):
    result, _ = fitted
    ppc = result.ppc(n_draws=50)
    overall = ppc[ppc.factor == "all"]
    sums = overall.groupby("dimension")[["observed", "predicted"]].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-9)
    tox = survey.table.ratings.query("dimension == 'toxicity'")["rating"]
    observed = overall[overall.dimension == "toxicity"].set_index("rating")["observed"]
    np.testing.assert_allclose(observed.to_numpy(), tox.value_counts(normalize=True)
                               .sort_index().to_numpy())
    # a calibrated model covers most observed shares with its 95% predictive interval
    cover = ((ppc.observed >= ppc.lower) & (ppc.observed <= ppc.upper)).mean()
    assert cover > 0.85


def test_advi_is_close_to_nuts(survey, fitted):
    nuts = fitted[0].idata.posterior["beta"]
    advi = fit(survey.table, FACTORS, REFERENCE, DIMS, sampler="advi", draws=500,
               seed=3, progress=False).idata.posterior["beta"]
    diff = np.abs(advi.mean(("chain", "draw")) - nuts.mean(("chain", "draw")))
    # mean-field ADVI: means within 0.15 log-odds (about one posterior sd here) of NUTS
    assert float(diff.max()) < 0.15


def test_cli_contrasts_diagnose_and_strict(fitted, tmp_path, capsys):
    _, out = fitted
    assert main(["contrasts", str(out), "--out", str(tmp_path / "c.csv")]) == 0
    table = pd.read_csv(tmp_path / "c.csv")
    assert list(table.columns) == ["dimension", "factor", "level", "reference", "rater",
                                   "measure", "estimate", "lower", "upper"]
    assert (tmp_path / "c.png").stat().st_size > 5000
    assert main(["diagnose", str(out), "--out", str(tmp_path)]) == 0
    assert {"trace.png", "ppc_all.png", "ppc_gender.png", "ppc.csv"} <= {
        p.name for p in tmp_path.iterdir()}
    bad = tmp_path / "bad_fit"
    shutil.copytree(out, bad)
    diag = json.loads((bad / "diagnostics.json").read_text())
    diag.update(ok=False, failures=["R-hat of beta[toxicity, gender[male]] is 1.2 (> 1.01)"])
    (bad / "diagnostics.json").write_text(json.dumps(diag))
    capsys.readouterr()
    assert main(["contrasts", str(bad), "--out", str(tmp_path / "x.csv"), "--strict"]) == 3
    assert "R-hat of beta[toxicity, gender[male]] is 1.2" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_cli_fit_bad_arguments_exit_2(survey, tmp_path, capsys):
    path = survey.save(tmp_path)
    cases = {
        "--factors religion": "unknown factor 'religion'",
        "--factors gender --reference gender=woman": "reference level 'woman' for 'gender' "
                                                     "does not exist",
        "--factors prompt_id": "factor 'prompt_id' is an item attribute",
    }
    for args, message in cases.items():
        assert main(["fit", str(path), "--out", str(tmp_path / "f"), *args.split()]) == 2
        assert message in capsys.readouterr().err
    assert main(["contrasts", str(tmp_path / "nope"), "--out", "x.csv"]) == 2
    assert "no such fit directory" in capsys.readouterr().err


def test_cli_fit_writes_the_fit_directory(survey, tmp_path, capsys):
    path = survey.save(tmp_path)
    assert main(["fit", str(path), "--out", str(tmp_path / "fit"), "--factors",
                 "gender,politics", "--reference", "gender=female,politics=liberal",
                 "--dimensions", "toxicity", "--sampler", "advi", "--draws", "200",
                 "--advi-iterations", "2000"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "sampler advi: ok=False" in out
    assert {"posterior.nc", "diagnostics.json", "model.json"} <= {
        p.name for p in (tmp_path / "fit").iterdir()}
    model = json.loads((tmp_path / "fit" / "model.json").read_text())
    assert model["spec"]["dimensions"] == ["toxicity"]
    assert model["sampler"]["sampler"] == "advi" and model["sampler"]["draws"] == 200
    assert model["sampler"]["advi_iterations"] == 2000


def test_cli_softlabels_and_fit_method(fitted, tmp_path, capsys):
    result, out = fitted
    path = tmp_path / "groups.parquet"
    assert main(["softlabels", str(out), "--unit", "group", "--factors", "gender", "--draws",
                 "50", "--out", str(path)]) == 0
    labels = pd.read_parquet(path)
    n_items = result.idata.posterior.sizes["item"]
    assert len(labels) == n_items * len(DIMS) * 3
    assert list(labels.columns) == ["item_id", "dimension", "gender", "p_1", "p_2", "p_3", "p_4",
                                    "p_5", "mean", "sd"]
    np.testing.assert_allclose(labels.filter(like="p_").sum(axis=1), 1.0, atol=1e-9)
    same = soft_labels(result, "group", factors=["gender"], draws=50)
    pd.testing.assert_frame_equal(same.reset_index(drop=True), labels.reset_index(drop=True))


def test_cli_rater_labels_stream_the_prompts_items(survey, fitted, tmp_path, capsys):
    result, out = fitted
    ratings = save_ratings(survey.table, tmp_path / "ratings.parquet")
    path = tmp_path / "raters.parquet"
    assert main(["softlabels", str(out), "--unit", "rater", "--items", "prompts", "--ratings",
                 str(ratings), "--draws", "40", "--out", str(path)]) == 0
    labels = pd.read_parquet(path)
    prompt = survey.table.items["prompt_id"]
    seen = survey.table.ratings.assign(prompt=lambda t: t["item_id"].map(prompt))
    expected = seen[["rater_id", "prompt"]].drop_duplicates().merge(
        prompt.rename("prompt").reset_index(), on="prompt")
    assert len(labels) == len(expected) * len(DIMS)
    assert f"wrote {path}: {len(labels):,} rows (unit rater, items prompts)" in \
        capsys.readouterr().out
    memory = soft_labels(result, "rater", draws=40).merge(labels[["rater_id", "item_id",
                                                                   "dimension"]])
    pd.testing.assert_frame_equal(
        labels.sort_values(["rater_id", "item_id", "dimension"], ignore_index=True),
        memory.sort_values(["rater_id", "item_id", "dimension"], ignore_index=True)[
            labels.columns], rtol=1e-10, atol=1e-12)


def test_cli_pairs_soft_and_hash_mismatch(survey, fitted, tmp_path, capsys):
    _, out = fitted
    path = survey.save(tmp_path / "data")
    assert main(["pairs", str(path), "--fit", str(out), "--dimension", "toxicity",
                 "--strategy", "soft", "--margin", "0.05", "--out", str(tmp_path / "p")]) == 0
    assert re.search(r"wrote \d+ pairs \(train: \d+, validation: \d+, test: \d+\) to ",
                     capsys.readouterr().out)
    frame = pd.read_parquet(tmp_path / "p" / "pairs.parquet")
    assert list(frame.columns) == ["prompt", "chosen", "rejected", "weight", "prompt_id",
                                   "chosen_id", "rejected_id", "dimension", "strategy", "unit",
                                   "split"]
    assert (frame["weight"] >= 0.55).all() and (frame["weight"] <= 1).all()
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["strategy"] == "soft"
    other = simulate_survey(seed=12, n_raters=300, n_prompts=20).save(tmp_path / "other")
    assert main(["pairs", str(other), "--fit", str(out), "--dimension", "toxicity",
                 "--strategy", "soft", "--out", str(tmp_path / "q")]) == 2
    assert "different ratings" in capsys.readouterr().err


def test_a_damaged_fit_directory_is_named(fitted, tmp_path):
    _, out = fitted
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    posterior = bad / "posterior.nc"
    posterior.write_bytes(posterior.read_bytes()[:4096])  # truncated
    with pytest.raises(ModelError, match=re.escape(
            f"{bad}: damaged fit directory, refit (posterior.nc does not match the SHA-256 "
            "recorded in model.json: truncated or overwritten)")):
        load_fit(bad)
    (bad / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="damaged fit directory, refit"):
        load_fit(bad)


def test_old_argument_names_still_work_with_a_deprecation_warning(survey, fitted):
    result, out = fitted
    with pytest.warns(DeprecationWarning, match="covariates is deprecated; use factors"):
        resumed = fit(survey.table, covariates=FACTORS, reference=REFERENCE, dimensions=DIMS,
                      out_dir=out, **SETTINGS)  # reuses the saved fit: nothing is sampled
    assert resumed.spec == result.spec
    with pytest.warns(DeprecationWarning, match="level is deprecated; use unit"):
        old = soft_labels(result, level="group", by=["gender"], draws=20)
    pd.testing.assert_frame_equal(old, soft_labels(result, "group", ["gender"], draws=20))
    with pytest.raises(DisagreeError, match="give only factors"):
        fit(survey.table, FACTORS, covariates=FACTORS)


def test_demo_trains_soft_dpo_on_the_fits_pairs(survey, fitted, tmp_path, capsys):
    """Fit -> soft pairs -> dpo-soft run: the demo's steps 6 and 7 on a real (small) fit."""
    pytest.importorskip("trl")
    from disagree import demo

    step = demo.counter(7, print, start=6)
    demo.pairs_step(survey.table, fitted[0], tmp_path, step, print)
    demo.train_step(tmp_path, step, print)
    text = capsys.readouterr().out
    assert "6/7 pairs: soft toxicity pairs" in text and "7/7 train" in text
    run = json.loads((tmp_path / "train" / "run.json").read_text())
    assert run["status"] == "complete" and run["config"]["method"] == "dpo-soft"
    accuracy = run["final_metrics"]["eval"]["eval_rewards/accuracies"]
    assert accuracy > 0.6, text
