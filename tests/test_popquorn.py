"""The POPQUORN loader on the real offensiveness file in ../shared/data."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from disagree.data import load_popquorn
from disagree.errors import DataError

POPQUORN = Path(__file__).resolve().parents[2] / "shared" / "data" / "popquorn" / \
    "offensiveness.csv"
needs_popquorn = pytest.mark.skipif(not POPQUORN.exists(),
                                    reason=f"POPQUORN file not found at {POPQUORN}")


@needs_popquorn
def test_popquorn_counts_and_demographics():
    table = load_popquorn(POPQUORN)
    assert len(table.ratings) == 13_036
    assert len(table.raters) == 262
    assert len(table.items) == 1_500
    assert table.dimensions == ["offensiveness"] and table.scales == {"offensiveness": 5}
    assert table.ratings["rating"].value_counts().sort_index().tolist() == [
        7516, 2190, 1590, 1039, 701]
    assert list(table.raters.columns) == ["gender", "race", "age", "occupation", "education"]
    assert list(table.items.columns) == ["text"]
    assert (table.raters["race"] == "Arab American").sum() > 0
    # ratings by rater: demographics kept with every rater, none missing
    assert table.raters.notna().all().all()
    assert table.long().groupby("race").size()["Arab American"] == 49


def test_popquorn_rejects_other_files():
    frame = pd.DataFrame({"instance_id": [1], "user_id": [2], "offensiveness": [1]})
    with pytest.raises(DataError, match=re.escape(
            "<DataFrame>: not a POPQUORN offensiveness file: missing column(s) text, gender, "
            "race, age, occupation, education")):
        load_popquorn(frame)
