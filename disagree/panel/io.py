"""Save and load a :class:`~disagree.panel.state.PanelState`: ``scorer.json`` + ``arrays.npz``.

``arrays.npz`` holds the numpy arrays (head parameters, active columns, cell counts, the
encoder's arrays); ``scorer.json`` everything else and the SHA-256 of ``arrays.npz``. Each file
is written atomically, ``scorer.json`` last, so a crash leaves either the old pair or the new
one, and :func:`load_state` refuses a mismatched or damaged pair, naming the file.

Format 3 adds the group-by-text weights (``v.<i>``, with ``interaction_factors``) and the reward
guard (``guard.*`` arrays, its settings under ``guard``). Format 2 names the rater factors
``factors`` and records the options under ``options``; format 1 (``attributes``, ``settings``)
is still read. Scorers of formats 1 and 2 load as they were fitted: without group-by-text
weights and without a guard (their options say ``interactions=False, guard=False``), so they
predict and score exactly as before; refit one to get both.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from disagree._io import atomic_path, write_json
from disagree.errors import PanelError
from disagree.panel.encoders import encoder_from_state
from disagree.panel.guard import SupportGuard
from disagree.panel.options import PanelOptions
from disagree.panel.state import PanelState

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
KIND = "RatingPanelScorer"
META_FILE = "scorer.json"
ARRAYS_FILE = "arrays.npz"


def save_state(state: PanelState, path: str | os.PathLike[str]) -> Path:
    """Write the panel into the directory ``path`` (``scorer.json`` and ``arrays.npz``).

    Parameters
    ----------
    state : PanelState
        A fitted panel.
    path : path
        Directory to create, or to overwrite the two files in.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PanelError
        If ``path`` is a file.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PanelError(f"cannot save the scorer to {out}: it is a file, expected a "
                         "directory")
    arrays = {"active": state.active, "cell_counts": state.cell_counts}
    meta_encoder = {}
    for key, value in state.encoder.state().items():
        if isinstance(value, np.ndarray):
            arrays[f"encoder.{key}"] = value
        else:
            meta_encoder[key] = value
    for i, d in enumerate(state.dimensions):
        for name, value in state.params[d].items():
            arrays[f"{name}.{i}"] = value
    guard = state.guard
    if guard is not None:
        arrays.update({"guard.words": guard.words, "guard.sentences": guard.sentences})
        for i, d in enumerate(state.dimensions):
            main, inter = guard.reference[d]
            arrays[f"guard.main.{i}"] = main
            if inter is not None:
                arrays[f"guard.inter.{i}"] = inter
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    with atomic_path(out / ARRAYS_FILE) as tmp:
        tmp.write_bytes(payload)
    meta = {
        "format_version": FORMAT_VERSION, "kind": KIND,
        "encoder": meta_encoder, "head": state.head, "factors": list(state.factors),
        "levels": {f: list(v) for f, v in state.levels.items()},
        "text_columns": list(state.text_columns), "dimensions": list(state.dimensions),
        "scales": dict(state.scales), "cells": state.cells.to_numpy().tolist(),
        "majority": dict(state.majority), "data_hash": state.data_hash,
        "metrics": state.metrics, "options": state.options.to_dict(),
        "interaction_factors": list(state.interaction_factors),
        "guard": None if guard is None else {"settings": dict(guard.settings)},
        "arrays_sha256": hashlib.sha256(payload).hexdigest(),
    }
    write_json(out / META_FILE, meta)
    return out


def load_state(path: str | os.PathLike[str]) -> PanelState:
    """Read a panel written by :func:`save_state` (the directory, or its ``scorer.json``).

    Parameters
    ----------
    path : path
        The directory, or its ``scorer.json``.

    Returns
    -------
    PanelState
        Predicts exactly as the saved one did.

    Raises
    ------
    PanelError
        For a missing file, a file of another kind or format, or a damaged or mismatched
        file (the message names it).
    """
    folder = Path(path)
    if folder.name == META_FILE:
        folder = folder.parent
    meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
    for p in (meta_path, arrays_path):
        if not p.is_file():
            raise PanelError(f"cannot load a scorer from {folder}: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PanelError(f"{meta_path} is damaged (not valid JSON: {err}); save the scorer "
                         "again") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND or \
            meta.get("format_version") not in READABLE_VERSIONS:
        raise PanelError(f"{meta_path} is not a {KIND} file of format "
                         f"{' or '.join(map(str, READABLE_VERSIONS))}")
    payload = arrays_path.read_bytes()
    if hashlib.sha256(payload).hexdigest() != meta.get("arrays_sha256"):
        raise PanelError(f"{arrays_path} is damaged or does not match {meta_path} (its "
                         "SHA-256 differs: an interrupted or mixed save); save the scorer "
                         "again")
    try:
        with np.load(io.BytesIO(payload)) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as err:
        raise PanelError(f"{arrays_path} is damaged ({err}); save the scorer again") from None
    try:
        return _state(meta, arrays)
    except (KeyError, TypeError, ValueError) as err:
        raise PanelError(f"{meta_path} is damaged or inconsistent with {arrays_path.name} "
                         f"({type(err).__name__}: {err}); save the scorer again") from None


def _state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> PanelState:
    """Build the state from the parsed files (raises KeyError etc. on a bad entry)."""
    version = meta["format_version"]
    if version == 1:
        factors = list(meta["attributes"])
        s = meta["settings"]
        options = PanelOptions(encoder=s["encoder"], head=meta["head"], factors=factors,
                               text_columns=meta["text_columns"], l2=s["l2"],
                               epochs=s["epochs"], lr=s["lr"], seed=s["seed"],
                               batch_size=s["batch_size"], interactions=False, guard=False)
    elif version == 2:  # fitted before group-by-text weights and the guard
        factors = list(meta["factors"])
        options = PanelOptions(**{**meta["options"], "interactions": False, "guard": False})
    else:
        factors = list(meta["factors"])
        options = PanelOptions(**meta["options"])
    inter_factors = tuple(meta["interaction_factors"]) if version >= 3 else ()
    enc_state = dict(meta["encoder"])
    enc_state.update({k.split(".", 1)[1]: v for k, v in arrays.items()
                      if k.startswith("encoder.")})
    dims = list(meta["dimensions"])
    head = meta["head"]
    names = ("w", "a", "c") if head == "ordinal" else ("w", "a", "b")
    if inter_factors:
        names = (*names, "v")
    guard = None
    if version >= 3 and meta["guard"] is not None:
        guard = SupportGuard(
            words=arrays["guard.words"], sentences=arrays["guard.sentences"],
            reference={d: (arrays[f"guard.main.{i}"], arrays.get(f"guard.inter.{i}"))
                       for i, d in enumerate(dims)},
            settings={k: float(v) for k, v in meta["guard"]["settings"].items()})
    return PanelState(
        head=head, factors=tuple(factors),
        levels={f: tuple(meta["levels"][f]) for f in factors},
        cells=pd.DataFrame(meta["cells"], columns=factors, dtype=object),
        cell_counts=arrays["cell_counts"], params={d: {n: arrays[f"{n}.{i}"] for n in names}
                                                   for i, d in enumerate(dims)},
        encoder=encoder_from_state(enc_state), active=arrays["active"], dimensions=tuple(dims),
        scales={d: int(k) for d, k in meta["scales"].items()},
        text_columns=tuple(meta["text_columns"]),
        majority={d: int(v) for d, v in meta["majority"].items()}, options=options,
        data_hash=meta["data_hash"], metrics=meta["metrics"],
        interaction_factors=inter_factors, guard=guard)


__all__ = ["ARRAYS_FILE", "FORMAT_VERSION", "META_FILE", "load_state", "save_state"]
