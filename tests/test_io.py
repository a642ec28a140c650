"""Shared pieces of every stage: reading tables, group strings, the prompt split, versions."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from disagree._io import read_table, same_table_file, versions, write_table
from disagree.data.groups import format_group, parse_group
from disagree.data.splits import split_prompts
from disagree.errors import DataError, DisagreeError, ModelError


def test_read_table_reads_what_write_table_writes(tmp_path):
    frame = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    for suffix in (".csv", ".tsv", ".parquet"):
        path = write_table(tmp_path / f"t{suffix}", frame)
        pd.testing.assert_frame_equal(read_table(path), frame)


def test_same_table_file_compares_parquet_by_content_and_other_files_by_bytes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    ours = write_table(tmp_path / "ours.parquet", frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # the same table as another pandas version writes it: only the metadata differs
    meta = table.schema.metadata | {b"pandas": table.schema.metadata[b"pandas"].replace(
        pd.__version__.encode(), b"0.0.0")}
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "theirs.parquet")
    assert (tmp_path / "theirs.parquet").read_bytes() != ours.read_bytes()
    assert same_table_file(ours, tmp_path / "theirs.parquet")
    changed = write_table(tmp_path / "changed.parquet", frame.assign(b=[1, 3]))
    assert not same_table_file(ours, changed)
    csv = write_table(tmp_path / "t.csv", frame)
    assert same_table_file(csv, write_table(tmp_path / "u.csv", frame))
    assert not same_table_file(csv, write_table(tmp_path / "v.csv", frame.assign(b=[1, 3])))


def test_read_table_names_the_problem_with_the_stage_error(tmp_path):
    with pytest.raises(ModelError, match=re.escape(f"{tmp_path / 'x.csv'}: no such file")):
        read_table(tmp_path / "x.csv", error=ModelError)
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'; expected \.csv, "
                                         r"\.tsv or \.parquet"):
        read_table(tmp_path / "t.xlsx", error=DataError)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DisagreeError, match="is not a readable Parquet file"):
        read_table(tmp_path / "bad.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DisagreeError, match=r"is empty \(expected a header row and pairs\)"):
        read_table(tmp_path / "empty.csv", what="pairs")


def test_group_strings_round_trip_in_one_form():
    group = {"gender": "female", "politics": "conservative"}
    assert format_group(group) == "gender=female,politics=conservative"
    assert parse_group("gender=female, politics=conservative") == group
    assert parse_group(format_group(group)) == group
    assert format_group(None) == format_group({}) == "population"
    assert parse_group("population") == {}
    with pytest.raises(DataError, match="'politics' is not factor=level"):
        parse_group("gender=female,politics")
    with pytest.raises(DataError, match="factor 'gender' is named twice"):
        parse_group("gender=female,gender=male")


def test_the_prompt_split_by_hand():
    """Ten prompts, 0.8/0.1/0.1: the seed-0 shuffle of the sorted ids, cut at 8 and 9."""
    import numpy as np

    ids = [f"p{i}" for i in range(10)]
    shuffled = np.array(sorted(ids), dtype=object)[np.random.default_rng(0).permutation(10)]
    split = split_prompts(ids * 3, (0.8, 0.1, 0.1), seed=0)  # repeats count once
    assert [split[p] for p in shuffled] == ["train"] * 8 + ["validation", "test"]
    assert split == split_prompts(reversed(ids), seed=0)  # order of the input does not matter
    with pytest.raises(DataError, match="sum to 1"):
        split_prompts(ids, (0.5, 0.1, 0.1))


def test_versions_read_package_metadata_only():
    found = versions("numpy", "no-such-distribution")
    assert set(found) == {"python", "numpy"}
