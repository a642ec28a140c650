"""The :class:`PairSet`: preference pairs, their manifest and their TRL-ready exports.

Depends on pandas and :mod:`disagree._io`; ``datasets`` is imported only inside
:meth:`PairSet.to_hf_dataset`. Every file is written atomically, and the same pairs give the
same bytes (fixed row order and column order, ``json.dumps`` without ASCII escaping, no
timestamps in the manifest).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from disagree._io import write_atomic, write_json, write_table

#: The columns of a pair file, in order (TRL's preference columns first).
COLUMNS = ("prompt", "chosen", "rejected", "weight", "prompt_id", "chosen_id", "rejected_id",
           "dimension", "strategy", "unit", "split")
SPLITS = ("train", "validation", "test")
#: Rows serialised at a time by :meth:`PairSet.to_jsonl`.
JSONL_CHUNK = 10_000


@dataclass
class PairSet:
    """Preference pairs with the record of how they were made.

    Attributes
    ----------
    frame : DataFrame
        One row per pair, exactly the columns :data:`COLUMNS`:

        ``prompt``, ``chosen``, ``rejected``
            The prompt text and the texts of the preferred and the other response (TRL's
            preference format).
        ``weight``
            Posterior probability (``soft``) that ``chosen`` is better for the unit, ties
            counted half; 1.0 for ``majority`` and ``all``.
        ``prompt_id``, ``chosen_id``, ``rejected_id``
            The prompt's and the responses' ids (``item_id`` of the ratings).
        ``dimension``
            The dimension, or the dimensions joined by ``+``.
        ``strategy``
            ``majority``, ``all`` or ``soft``.
        ``unit``
            Whose preference the pair is: ``population``, a group such as
            ``politics=conservative`` (several factors joined by ``,``), or ``rater:<id>``.
        ``split``
            ``train``, ``validation`` or ``test``, by prompt.

        Rows are sorted by ``prompt_id``, ``chosen_id``, ``rejected_id`` and ``unit``.
    manifest : dict
        Inputs' hashes, options, counts kept and dropped with reasons, splits, seed and
        library versions (written as ``manifest.json``).
    """

    frame: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        """Return the number of pairs."""
        return len(self.frame)

    def __repr__(self) -> str:
        """Short description: size, strategy, dimension and split counts."""
        by_split = self.frame["split"].value_counts().to_dict()
        return (f"PairSet({len(self)} pairs, strategy={self.manifest.get('strategy')!r}, "
                f"dimension={self.manifest.get('dimension')!r}, splits={by_split})")

    def split(self, name: str) -> pd.DataFrame:
        """Return the rows of one split (``train``, ``validation`` or ``test``)."""
        return self.frame[self.frame["split"] == name].reset_index(drop=True)

    def to_jsonl(self, path: str | os.PathLike[str], split: str | None = None) -> Path:
        """Write the pairs (or one split) as JSON Lines, one object per pair, atomically.

        Parameters
        ----------
        path : path
            Output file.
        split : str, optional
            Only this split.

        Returns
        -------
        Path
            ``path``.
        """
        frame = (self.frame if split is None else self.split(split))[list(COLUMNS)]

        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                for start in range(0, len(frame), JSONL_CHUNK):  # bounded memory
                    rows = frame.iloc[start:start + JSONL_CHUNK].itertuples(index=False,
                                                                            name=None)
                    fh.write("".join(json.dumps(dict(zip(COLUMNS, row, strict=True)),
                                                ensure_ascii=False) + "\n" for row in rows))

        return write_atomic(path, write)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write the pairs as Parquet (same columns), atomically; returns ``path``."""
        return write_table(path, self.frame[list(COLUMNS)])

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``pairs.jsonl``, ``pairs.parquet``, ``manifest.json`` and the split files.

        The split files ``train.jsonl``, ``validation.jsonl`` and ``test.jsonl`` are written
        when splits were asked for, one per split with a positive fraction (possibly empty).

        Parameters
        ----------
        out_dir : path
            Output directory (created if needed).

        Returns
        -------
        Path
            ``out_dir``.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.to_jsonl(out / "pairs.jsonl")
        self.to_parquet(out / "pairs.parquet")
        fractions = self.manifest.get("options", {}).get("split")
        if fractions:
            for name in SPLITS:
                if fractions.get(name, 0) > 0:
                    self.to_jsonl(out / f"{name}.jsonl", split=name)
        write_json(out / "manifest.json", self.manifest)
        return out

    def to_hf_dataset(self) -> Any:
        """Return a ``datasets.DatasetDict`` with one ``Dataset`` per non-empty split.

        Requires the ``datasets`` package (the ``train`` extra); the columns are those of
        :attr:`frame`, so ``prompt``, ``chosen`` and ``rejected`` are ready for TRL's
        ``DPOTrainer``.
        """
        from datasets import Dataset, DatasetDict

        parts = {name: self.split(name)[list(COLUMNS)] for name in SPLITS}
        return DatasetDict({name: Dataset.from_pandas(part, preserve_index=False)
                            for name, part in parts.items() if len(part)})
