"""File I/O shared by every stage: tables, figures, JSON, file hashes, library versions.

Writes go to a temporary file next to the target that is renamed onto it only on success, so a
crash never leaves a half-written file under the final name. Tables are read and written by
suffix in one place each (:func:`read_table`, :func:`write_table`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from disagree.errors import DisagreeError

#: Suffixes :func:`read_table` and :func:`write_table` understand, by kind.
TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".tsv": "tsv", ".csv": "csv",
                  ".jsonl": "jsonl", ".json": "json"}
#: Compression suffixes a text table may carry (``ratings.csv.gz``).
COMPRESSED = (".gz", ".bz2", ".xz", ".zip")
_KIND_NAMES = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "jsonl": "JSON-lines",
               "json": "JSON"}
#: Distributions recorded by :func:`versions` when no names are given.
CORE_PACKAGES = ("disagree-toolkit", "numpy", "pandas", "pymc", "nutpie", "arviz")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    A crash or exception leaves no partial file at ``path`` (the temporary file is removed).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make outputs private
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (byte-stable for equal objects)."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_table(path: str | os.PathLike[str], frame: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV, TSV or Parquet (by suffix), atomically and without the index."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    if suffix == ".tsv":
        return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, sep="\t"))
    if suffix == ".csv":
        return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    raise ValueError(f"cannot write {path}: unsupported suffix {suffix!r} "
                     "(use .csv, .tsv or .parquet)")


def same_table_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two table files hold the same table: Parquet by content, other files by bytes.

    A Parquet file records the versions of the libraries that wrote it (pandas 3.1.1 and 3.1.2
    write the same survey to different bytes), so two writes of one table in different
    environments are compared by their columns, types and values, not by their metadata.
    """
    if table_kind(a) == "parquet" and table_kind(b) == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(a).equals(pq.read_table(b))
    return Path(a).read_bytes() == Path(b).read_bytes()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def table_kind(path: str | os.PathLike[str]) -> str | None:
    """Return the table kind of ``path`` by suffix (``"csv"``, ``"parquet"``...), or None.

    A compressed text table (``ratings.csv.gz``) counts as its inner kind.
    """
    suffixes = [s.lower() for s in Path(path).suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:1]
    return TABLE_SUFFIXES.get(suffixes[-1]) if suffixes else None


def read_table(path: str | os.PathLike[str], *, encoding: str = "utf-8",
               error: type[DisagreeError] = DisagreeError,
               kinds: Iterable[str] = ("csv", "tsv", "parquet"),
               what: str = "rows") -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSON-lines table chosen by suffix.

    Parameters
    ----------
    path : path-like
        The file.
    encoding : str
        Text encoding of CSV/TSV files.
    error : type
        The :class:`~disagree.errors.DisagreeError` subclass raised on a missing, unreadable
        or malformed file (each stage raises its own).
    kinds : iterable of str
        The kinds accepted here (of ``csv``, ``tsv``, ``parquet``, ``jsonl``, ``json``).
    what : str
        What the rows are, for the message about an empty file ("ratings", "pairs"...).

    Returns
    -------
    pandas.DataFrame
        The table, without an index column. Text cells of JSON files stay strings.

    Raises
    ------
    DisagreeError
        (``error``) naming the file and what is wrong with it: missing, a folder, an
        unsupported suffix, not Parquet, binary data in a text table, rows longer than the
        header, undecodable bytes (with the ``encoding`` hint), empty.
    """
    p = Path(path)
    kinds = tuple(kinds)
    names = [_KIND_NAMES[k] for k in kinds]
    if not p.exists():
        raise error(f"{p}: no such file")
    if p.is_dir():
        raise error(f"{p}: is a directory, expected a {_or(names)} file")
    kind = table_kind(p)
    if kind not in kinds:
        raise error(f"{p}: unsupported file type {p.suffix!r}; expected "
                    f"{_or(['.' + k for k in kinds])}")
    if kind == "parquet":
        try:
            return pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises several types for non-Parquet input
            raise error(f"{p}: is not a readable Parquet file ({exc})") from None
    if kind in ("jsonl", "json"):
        try:
            return pd.read_json(p, lines=kind == "jsonl", dtype=False, precise_float=True)
        except ValueError as exc:
            raise error(f"{p}: is not a readable {kind.upper()} table ({exc})") from None
    with open(p, "rb") as fh:
        head = fh.read(8192)
    if p.suffix.lower() not in COMPRESSED and b"\x00" in head:
        raise error(f"{p}: is not a text table (it contains binary data); "
                    f"expected a {kind.upper()} file with a header row")
    try:
        with warnings.catch_warnings():  # rows longer than the header would lose data
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(p, sep="\t" if kind == "tsv" else ",", encoding=encoding,
                               index_col=False)
    except pd.errors.ParserWarning:
        raise error(f"{p}: is not a well-formed {kind.upper()} table: some rows have more "
                    f"fields than the header") from None
    except UnicodeDecodeError as exc:
        raise error(
            f"{p}: cannot be decoded as {encoding} (byte {exc.object[exc.start:exc.start + 1]!r}"
            f" at position {exc.start}); pass the file's encoding, e.g. encoding='latin-1' "
            f"(CLI: --encoding latin-1)"
        ) from None
    except pd.errors.EmptyDataError:
        raise error(f"{p}: is empty (expected a header row and {what})") from None
    except pd.errors.ParserError as exc:
        raise error(f"{p}: is not a well-formed {kind.upper()} table: {exc}") from None


def write_figure(path: str | os.PathLike[str], fig: Any, *, dpi: int = 120,
                 close: bool = True) -> Path:
    """Save a matplotlib figure atomically, in the format of the suffix (PNG, PDF, SVG).

    The figure is closed afterwards unless ``close=False``, so that loops over many figures
    do not accumulate open figures.
    """
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".") or "png"
    write_atomic(target, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return target


def versions(*names: str) -> dict[str, str]:
    """Return the installed versions of Python and the named distributions (package metadata).

    Reads ``importlib.metadata`` only, so it imports none of the packages (and not
    ``disagree``'s stages). Distributions that are not installed are left out. With no names,
    the core analysis stack (:data:`CORE_PACKAGES`) is recorded.
    """
    out = {"python": platform.python_version()}
    for name in names or CORE_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"
