"""The command line: each subcommand end to end, and clean exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from disagree.cli import main


def test_simulate_then_validate(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--raters", "60", "--prompts", "12",
                 "--format", "csv", "--seed", "5"]) == 0
    assert "toxicity male vs female: -18.0%" in capsys.readouterr().out
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["seed"] == 5 and truth["config"]["n_raters"] == 60
    assert main(["validate", str(tmp_path / "ratings.csv")]) == 0
    out = capsys.readouterr().out
    assert "ratings: 1,500   raters: 60   items: 60   dimensions: 5" in out
    assert "rater attributes: gender, politics, ethnicity, country, age" in out
    assert "item attributes: prompt_id, prompt, response" in out


def test_validate_bad_file_exits_2_with_the_message(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"rater_id": ["a", "b"], "item_id": ["x", "x"], "dimension": ["t", "t"],
                  "rating": [1, 3.5]}).to_csv(path, index=False)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"disagree: error: {path}: column 'rating' is not a whole number in row 2 "
                   "(3.5); expected an integer 1..K\n")


def test_console_script_has_no_traceback_on_bad_input(tmp_path):
    path = tmp_path / "missing.csv"
    proc = subprocess.run([sys.executable, "-m", "disagree.cli", "validate", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"disagree: error: {path}: no such file\n"


def test_describe_writes_tables_and_figures(tmp_path, capsys):
    main(["simulate", "--out", str(tmp_path / "d"), "--raters", "80", "--prompts", "8"])
    assert main(["describe", str(tmp_path / "d" / "ratings.parquet"), "--out",
                 str(tmp_path / "out"), "--factors", "gender,politics",
                 "--reference", "gender=female,politics=liberal"]) == 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"raw_differences.csv", "agreement.csv", "figure1_conditional.png",
            "figure1_conditional.csv"} <= names
    raw = pd.read_csv(tmp_path / "out" / "raw_differences.csv")
    assert set(raw["reference"]) == {"female", "liberal"}


def test_describe_bad_reference_exits_2(tmp_path, capsys):
    main(["simulate", "--out", str(tmp_path), "--raters", "30", "--prompts", "6"])
    assert main(["describe", str(tmp_path / "ratings.parquet"), "--out", str(tmp_path / "o"),
                 "--factors", "gender", "--reference", "gender=woman"]) == 2
    assert "reference level 'woman' for 'gender' does not exist; levels are: female, male" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_demo_runs_the_pipeline_on_the_default_survey(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--no-fit"]) == 0
    out = capsys.readouterr().out
    assert "identical to the bundled ratings.parquet: yes" in out
    assert "ratings: 27,375   raters: 1,095   items: 300   dimensions: 5" in out
    assert (tmp_path / "describe" / "figure1_conditional.png").stat().st_size > 10_000
    assert "Simulated default survey: 1,095 raters" in (tmp_path / "report.html").read_text()


def test_demo_on_your_own_ratings_skips_the_simulation(tmp_path, capsys):
    main(["simulate", "--out", str(tmp_path / "d"), "--raters", "40", "--prompts", "6"])
    capsys.readouterr()
    assert main(["demo", "--out", str(tmp_path / "o"), "--data",
                 str(tmp_path / "d" / "ratings.parquet"), "--no-fit"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1/3 validate") and "2/3 describe" in out and "vs truth" not in out
    assert "3/3 report" in out and (tmp_path / "o" / "describe" / "agreement.csv").exists()
    page = (tmp_path / "o" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "40 raters" in page


def test_old_flag_names_still_work_and_say_the_new_one(tmp_path, capsys):
    main(["simulate", "--out", str(tmp_path), "--raters", "30", "--prompts", "6"])
    assert main(["fit", str(tmp_path / "ratings.parquet"), "--out", str(tmp_path / "f"),
                 "--covariates", "religion"]) == 2
    err = capsys.readouterr().err
    assert "disagree: warning: --covariates is deprecated; use --factors" in err
    assert "unknown factor 'religion'" in err
