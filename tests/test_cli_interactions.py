"""The command line of interactions: fit --interactions, disagreement, compare."""

from __future__ import annotations

import pandas as pd
import pytest

from disagree.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:fit diagnostics")]


@pytest.fixture(scope="module")
def saved(interaction_survey, interaction_fit, interaction_fit_without, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-interactions")
    path = interaction_survey.save(root / "data")
    interaction_fit.save(root / "with")
    interaction_fit_without.save(root / "without")
    return root, path


def test_disagreement_writes_the_items_table_pairs_and_plot(saved, capsys):
    root, data = saved
    out = root / "items.csv"
    assert main(["disagreement", str(root / "with"), "--factor", "politics", "--dimension",
                 "emotional_awareness", "--out", str(out), "--plot", str(root / "items.png"),
                 "--data", str(data), "--pairs", str(root / "pairs.csv"), "--draws", "200"]) == 0
    assert "items.csv" in capsys.readouterr().out
    items = pd.read_csv(out)
    assert items["rank"].iloc[0] == 1 and items["level"].iloc[0] == "liberal"
    assert set(items["level"]) == {"liberal", "conservative", "moderate"}
    assert items["p_order_differs_max"].notna().any()
    assert (root / "items.png").stat().st_size > 10_000
    assert len(pd.read_csv(root / "pairs.csv")) == 24 * 10 * 2  # prompts x pairs x levels


def test_disagreement_names_a_bad_factor(saved, capsys):
    root, _ = saved
    assert main(["disagreement", str(root / "with"), "--factor", "religion", "--dimension",
                 "emotional_awareness", "--out", str(root / "x.csv")]) == 2
    assert "religion" in capsys.readouterr().err


def test_fit_interactions_flag(tmp_path, capsys):
    from disagree.data import simulate_survey

    path = simulate_survey(seed=4, n_raters=60, n_prompts=4, dimensions=("toxicity",)).save(
        tmp_path / "d")
    assert main(["fit", str(path), "--out", str(tmp_path / "f"), "--factors", "gender,politics",
                 "--interactions", "politics", "--effects", "pooled", "--draws", "50", "--tune",
                 "50"]) == 0
    from disagree.model import load_fit

    res = load_fit(tmp_path / "f")
    assert res.spec.interactions == ("politics",) and res.spec.effects == "pooled"
    assert {"item_group_sd", "level_sd"} <= set(res.idata.posterior.data_vars)
    assert main(["fit", str(path), "--out", str(tmp_path / "g"), "--factors", "gender",
                 "--interactions", "politics"]) == 2
    assert "not factors: politics" in capsys.readouterr().err


def test_compare_prints_the_verdict_and_writes_the_table(saved, capsys):
    root, _ = saved
    out = root / "loo.csv"
    assert main(["compare", str(root / "with"), str(root / "without"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "politics: the data support groups disagreeing about items" in text
    table = pd.read_csv(out)
    assert list(table["model"]) == ["with", "without"]  # ranked: the interaction model first
    assert {"elpd_loo", "elpd_diff", "dse", "verdict", "pareto_k_high"} <= set(table.columns)
