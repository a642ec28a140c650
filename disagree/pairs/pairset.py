"""The :class:`PairSet`: preference pairs, their manifest and their TRL-ready exports.

Depends on pandas, :mod:`disagree._io` and :data:`disagree.data.splits.SPLITS`; ``datasets``
is imported only inside :meth:`PairSet.to_hf_dataset`. Every file is written atomically, and
the same pairs give the same bytes (fixed row order and column order, ``json.dumps`` without
ASCII escaping, no timestamps in the manifest). The pairs format has this one owner:
:meth:`PairSet.save` writes it and :meth:`PairSet.load` reads and checks it (the training stage
reads pairs through it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from disagree._io import read_table, sha256_file, write_atomic, write_json, write_table
from disagree.data.splits import SPLITS
from disagree.errors import DataError

#: The columns of a pair file, in order (TRL's preference columns first).
COLUMNS = ("prompt", "chosen", "rejected", "weight", "prompt_id", "chosen_id", "rejected_id",
           "dimension", "strategy", "unit", "split")
#: The columns every pairs file needs (a folder written by :meth:`PairSet.save` has all of
#: :data:`COLUMNS`).
REQUIRED_COLUMNS = ("prompt", "chosen", "rejected", "weight")
#: The pairs files of a folder, in the order :meth:`PairSet.load` prefers them.
PAIR_FILES = ("pairs.parquet", "pairs.jsonl")
#: The ``format`` a manifest written by this version records.
FORMAT = "disagree.pairs/1"
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
        library versions (written as ``manifest.json``); empty for pairs loaded from a bare
        file.
    source : pathlib.Path or None
        The file :meth:`load` read the pairs from; ``None`` for pairs built in memory.
    """

    frame: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    source: Path | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        """Return the number of pairs."""
        return len(self.frame)

    def __repr__(self) -> str:
        """Short description: size, strategy, dimension and split counts."""
        by_split = (self.frame["split"].value_counts().to_dict()
                    if "split" in self.frame.columns else None)
        return (f"PairSet({len(self)} pairs, strategy={self.manifest.get('strategy')!r}, "
                f"dimension={self.manifest.get('dimension')!r}, splits={by_split})")

    def summary(self) -> str:
        """Return ``"<n> pairs (train: a, validation: b, test: c)"``."""
        counts = self.frame["split"].value_counts()
        return f"{len(self):,} pairs (" + ", ".join(
            f"{name}: {int(counts.get(name, 0))}" for name in SPLITS) + ")"

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
        ``manifest.json`` is :attr:`manifest` plus ``files``, the SHA-256 of each file written,
        which :meth:`load` checks.

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
        written = ["pairs.jsonl", "pairs.parquet"]
        fractions = self.manifest.get("options", {}).get("split")
        if fractions:
            for name in SPLITS:
                if fractions.get(name, 0) > 0:
                    self.to_jsonl(out / f"{name}.jsonl", split=name)
                    written.append(f"{name}.jsonl")
        files = {name: sha256_file(out / name) for name in written}
        write_json(out / "manifest.json", {**self.manifest, "files": files})
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PairSet:
        """Read and check pairs: a pairs file, or a folder written by :meth:`save`.

        Parameters
        ----------
        path : path
            A ``.parquet``, ``.jsonl`` or ``.json`` pairs file, or a pairs folder (its
            ``pairs.parquet``, else its ``pairs.jsonl``, and its ``manifest.json``).

        Returns
        -------
        PairSet
            The pairs (``weight`` as float, the :data:`COLUMNS` first and in order when all are
            present), the folder's manifest (without its file hashes; empty for a bare file)
            and :attr:`source`, the file read.

        Raises
        ------
        DataError
            Naming the file (and the row): missing or unreadable, a damaged folder (a file
            whose SHA-256 differs from the one in ``manifest.json``, or a pair count that
            differs from the manifest's), missing columns, no pairs, a weight that is not a
            number in [0, 1], a missing text or a split that is not one of :data:`SPLITS`.
        """
        p = Path(path)
        manifest: dict[str, Any] = {}
        required: tuple[str, ...] = REQUIRED_COLUMNS
        if p.is_dir():
            manifest = _folder_manifest(p)
            found = [p / name for name in PAIR_FILES if (p / name).is_file()]
            if not found:
                raise DataError(f"folder {p} has no {' or '.join(PAIR_FILES)} (a pairs folder "
                                "is written by `disagree pairs`)")
            p = found[0]
            if manifest:
                required = COLUMNS
        frame = read_table(p, error=DataError, kinds=("parquet", "jsonl", "json"), what="pairs")
        frame = _checked(frame, p, required)
        expected = manifest.get("counts", {}).get("pairs")
        if expected is not None and expected != len(frame):
            raise DataError(f"damaged pairs folder {p.parent}: {p.name} has {len(frame)} pairs, "
                            f"manifest.json records {expected}")
        return cls(frame, manifest, source=p)

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


def _folder_manifest(folder: Path) -> dict[str, Any]:
    """Read a pairs folder's ``manifest.json`` (``{}`` when absent) and check its file hashes."""
    path = folder / "manifest.json"
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"damaged pairs folder {folder}: manifest.json is not valid JSON "
                        f"({err})") from None
    if not isinstance(manifest, dict):
        raise DataError(f"damaged pairs folder {folder}: manifest.json holds a "
                        f"{type(manifest).__name__}, not a mapping")
    fmt = manifest.get("format")
    if fmt is not None and fmt != FORMAT:
        raise DataError(f"pairs folder {folder}: manifest.json has format {fmt!r}; this "
                        f"version reads {FORMAT!r} (rebuild the pairs with `disagree pairs`)")
    files = manifest.pop("files", None) or {}
    for name, digest in sorted(files.items()):
        file = folder / name
        if not file.is_file():
            raise DataError(f"damaged pairs folder {folder}: {name} is missing (manifest.json "
                            "lists it)")
        if sha256_file(file) != digest:
            raise DataError(f"damaged pairs folder {folder}: {file} is not the file that was "
                            "written (its SHA-256 differs from manifest.json; it was changed "
                            "or truncated); rebuild the pairs with `disagree pairs`")
    return manifest


def _checked(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Check the columns and values of a pairs table read from ``path``."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}; a pairs file has {list(required)} "
                        "(see `disagree pairs`)")
    if frame.empty:
        raise DataError(f"{path} has no pairs")
    frame = frame.reset_index(drop=True)
    weight = pd.to_numeric(frame["weight"], errors="coerce")
    bad = frame.index[~weight.between(0.0, 1.0)]  # NaN and non-numbers fail too
    if len(bad):
        value = _python(frame["weight"].iloc[bad[0]])
        shown = "no weight" if pd.isna(value) else repr(value)
        raise DataError(f"weight must be a number in [0, 1]; {path} row {bad[0] + 1} has "
                        f"{shown} ({len(bad)} such row(s))")
    for column in ("prompt", "chosen", "rejected"):
        empty = frame.index[frame[column].isna()]
        if len(empty):
            raise DataError(f"{column} must be a text; {path} row {empty[0] + 1} has no "
                            f"{column} ({len(empty)} such row(s))")
    if "split" in frame.columns:
        bad = frame.index[~frame["split"].isin(SPLITS)]
        if len(bad):
            raise DataError(f"split must be one of {', '.join(SPLITS)}; {path} row "
                            f"{bad[0] + 1} has {_python(frame['split'].iloc[bad[0]])!r} "
                            f"({len(bad)} such row(s))")
    if all(c in frame.columns for c in COLUMNS):
        frame = frame[[*COLUMNS, *(c for c in frame.columns if c not in COLUMNS)]]
    return frame.assign(weight=weight.astype(float))


def _python(value: Any) -> Any:
    """Return a numpy scalar as the Python value (for messages)."""
    return value.item() if hasattr(value, "item") else value
