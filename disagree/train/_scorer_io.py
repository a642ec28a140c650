"""Save and load a fitted RatingPanelScorer (scorer.json + arrays.npz); needs numpy, encoders."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from disagree._io import atomic_path, write_json
from disagree.errors import TrainError
from disagree.train.encoders import encoder_from_state

if TYPE_CHECKING:
    from disagree.train.scorer import RatingPanelScorer

FORMAT_VERSION = 1
META_FILE = "scorer.json"
ARRAYS_FILE = "arrays.npz"


def save_scorer(scorer: RatingPanelScorer, path: str | os.PathLike[str]) -> Path:
    """Write the scorer into the directory ``path`` (``scorer.json`` and ``arrays.npz``).

    Each file is written atomically; ``scorer.json`` (written last) records the SHA-256
    of ``arrays.npz``, so :func:`load_scorer` detects a mismatched pair.

    Parameters
    ----------
    scorer : RatingPanelScorer
        A fitted scorer.
    path : path
        Directory to create or overwrite the two files in.

    Returns
    -------
    Path
        ``path``.
    """
    scorer._check_fitted()
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise TrainError(f"cannot save the scorer to {out}: it is a file, expected a "
                         "directory")
    enc_state = scorer.encoder_.state()
    arrays = {"active": scorer.active_, "cell_counts": scorer.cell_counts_}
    meta_encoder = {}
    for key, value in enc_state.items():
        if isinstance(value, np.ndarray):
            arrays[f"encoder.{key}"] = value
        else:
            meta_encoder[key] = value
    for i, d in enumerate(scorer.dimensions_):
        for name, value in scorer.params_[d].items():
            arrays[f"{name}.{i}"] = value
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    with atomic_path(out / ARRAYS_FILE) as tmp:
        tmp.write_bytes(payload)
    meta = {
        "format_version": FORMAT_VERSION, "kind": "RatingPanelScorer",
        "encoder": meta_encoder, "head": scorer.head_, "attributes": scorer.attributes_,
        "levels": scorer.levels_, "text_columns": list(scorer.text_columns_),
        "dimensions": scorer.dimensions_, "scales": scorer.scales_,
        "cells": scorer.cells_.to_numpy().tolist(), "majority": scorer.majority_,
        "data_hash": scorer.data_hash_, "metrics": scorer.metrics_,
        "settings": {"encoder": scorer.encoder, "l2": scorer.l2, "epochs": scorer.epochs,
                     "lr": scorer.lr, "seed": scorer.seed, "batch_size": scorer.batch_size},
        "arrays_sha256": hashlib.sha256(payload).hexdigest(),
    }
    write_json(out / META_FILE, meta)
    return out


def load_scorer(cls: type[RatingPanelScorer],
                path: str | os.PathLike[str]) -> RatingPanelScorer:
    """Read a scorer written by :func:`save_scorer` (the directory, or its ``scorer.json``).

    Parameters
    ----------
    cls : type
        The class to build (``RatingPanelScorer`` or a subclass).
    path : path
        The directory, or its ``scorer.json``.

    Returns
    -------
    RatingPanelScorer
        Fitted; predicts exactly as the saved one did.

    Raises
    ------
    TrainError
        For a missing or inconsistent file.
    """
    folder = Path(path)
    if folder.name == META_FILE:
        folder = folder.parent
    meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
    for p in (meta_path, arrays_path):
        if not p.is_file():
            raise TrainError(f"cannot load a scorer from {folder}: {p.name} is missing")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("kind") != "RatingPanelScorer" or \
            meta.get("format_version") != FORMAT_VERSION:
        raise TrainError(f"{meta_path} is not a RatingPanelScorer file of format "
                         f"{FORMAT_VERSION}")
    payload = arrays_path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != meta["arrays_sha256"]:
        raise TrainError(f"{arrays_path} does not match {meta_path} (interrupted or mixed "
                         "save); save the scorer again")
    with np.load(io.BytesIO(payload)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    s = meta["settings"]
    scorer = cls(encoder=s["encoder"], head=meta["head"], attributes=meta["attributes"],
                 text_columns=meta["text_columns"], l2=s["l2"], epochs=s["epochs"],
                 lr=s["lr"], seed=s["seed"], batch_size=s["batch_size"])
    enc_state = dict(meta["encoder"])
    enc_state.update({k.split(".", 1)[1]: v for k, v in arrays.items()
                      if k.startswith("encoder.")})
    scorer.encoder_ = encoder_from_state(enc_state)
    scorer.head_ = meta["head"]
    scorer.attributes_ = list(meta["attributes"])
    scorer.levels_ = {a: list(v) for a, v in meta["levels"].items()}
    scorer.text_columns_ = tuple(meta["text_columns"])
    scorer.dimensions_ = list(meta["dimensions"])
    scorer.scales_ = {d: int(k) for d, k in meta["scales"].items()}
    scorer.cells_ = pd.DataFrame(meta["cells"], columns=scorer.attributes_, dtype=object)
    scorer.cell_counts_ = arrays["cell_counts"]
    scorer.active_ = arrays["active"]
    scorer.majority_ = {d: int(v) for d, v in meta["majority"].items()}
    scorer.data_hash_ = meta["data_hash"]
    scorer.metrics_ = meta["metrics"]
    names = ("w", "a", "c") if scorer.head_ == "ordinal" else ("w", "a", "b")
    scorer.params_ = {d: {n: arrays[f"{n}.{i}"] for n in names}
                      for i, d in enumerate(scorer.dimensions_)}
    scorer._fitted = True
    return scorer
