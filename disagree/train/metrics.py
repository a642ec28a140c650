"""``metrics.jsonl``: one JSON object per TRL logging step, kept consistent across resumes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from disagree._io import write_atomic


class MetricsLog(TrainerCallback):
    """Append every log of the trainer to a JSON Lines file.

    Each line has ``step``, ``epoch``, ``split`` (``eval`` when the log holds ``eval_*``
    values, ``summary`` for the end-of-training summary, else ``train``) and the logged values
    under TRL's names. When training (re)starts, lines logged after the step it starts from
    are removed (atomically), so a resumed run does not repeat them.

    Parameters
    ----------
    path : path
        The JSON Lines file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Drop lines logged after the step training starts from."""
        if not state.is_world_process_zero:
            return
        kept = [row for row in read_metrics(self.path) if row["step"] <= state.global_step]
        write_atomic(self.path, lambda tmp: tmp.write_text(
            "".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8"))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        """Append one line for this log."""
        if not state.is_world_process_zero or not logs:
            return
        split = ("eval" if any(k.startswith("eval_") for k in logs)
                 else "summary" if "train_runtime" in logs else "train")
        row = {"step": state.global_step, "epoch": state.epoch, "split": split,
               **{k: _jsonable(v) for k, v in logs.items()}}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``metrics.jsonl`` file (empty list when it does not exist)."""
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, int | float | str | bool | type(None)) else str(value)
