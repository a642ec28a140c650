"""Scale conversion: hand-computed mappings and converted tables."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from disagree.data import default_cuts, high_threshold, load_ratings, scale_mapping, to_scale
from disagree.errors import DataError


def test_default_mappings_by_hand():
    assert scale_mapping(5, 2) == {1: 1, 2: 1, 3: 1, 4: 2, 5: 2}
    assert scale_mapping(5, 3) == {1: 1, 2: 1, 3: 2, 4: 3, 5: 3}
    assert scale_mapping(7, 3) == {1: 1, 2: 1, 3: 1, 4: 2, 5: 3, 6: 3, 7: 3}
    assert scale_mapping(4, 2) == {1: 1, 2: 1, 3: 2, 4: 2}
    assert scale_mapping(5, 5) == {k: k for k in range(1, 6)}
    assert default_cuts(5, 2) == (3,)
    assert high_threshold(5) == 4 and high_threshold(3) == 3 and high_threshold(2) == 2


def test_custom_cuts():
    assert scale_mapping(5, 2, cuts=[2]) == {1: 1, 2: 1, 3: 2, 4: 2, 5: 2}
    assert scale_mapping(5, 3, cuts=[1, 4]) == {1: 1, 2: 2, 3: 2, 4: 2, 5: 3}


@pytest.mark.parametrize("k_to, cuts, message", [
    (2, [3, 4], "cut points [3, 4] for 5 -> 2 points must be 1 strictly increasing integers "
                "in 1..4"),
    (3, [3, 2], "cut points [3, 2] for 5 -> 3 points must be 2 strictly increasing integers "
                "in 1..4"),
    (2, [5], "cut points [5] for 5 -> 2 points must be 1 strictly increasing integers in 1..4"),
])
def test_bad_cuts(k_to, cuts, message):
    with pytest.raises(DataError, match=re.escape(message)):
        scale_mapping(5, k_to, cuts)


def test_cannot_widen_a_scale():
    with pytest.raises(DataError, match=re.escape(
            "cannot convert a 5-point scale to 7 points; the new scale must have between 2 and 5 "
            "categories")):
        default_cuts(5, 7)


def test_to_scale_converts_every_rating_and_records_the_mapping():
    frame = pd.DataFrame({"rater_id": ["a"] * 5 + ["b"] * 5, "item_id": list("vwxyz") * 2,
                          "dimension": ["toxicity"] * 5 + ["helpfulness"] * 5,
                          "rating": [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]})
    table = load_ratings(frame, scale=5)
    binary = to_scale(table, 2)
    assert binary.ratings["rating"].tolist() == [1, 1, 1, 2, 2, 2, 2, 1, 1, 1]
    assert binary.scales == {"toxicity": 2, "helpfulness": 2}
    assert binary.report[-1] == ("scale conversion: toxicity: 5 -> 2 points {1,2,3}->1, "
                                 "{4,5}->2; helpfulness: 5 -> 2 points {1,2,3}->1, {4,5}->2")
    three = to_scale(table, 3, cuts={"toxicity": [1, 2], "helpfulness": [2, 3]})
    assert three.ratings["rating"].tolist() == [1, 2, 3, 3, 3, 3, 3, 2, 1, 1]
    assert table.ratings["rating"].tolist() == [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]  # unchanged
