"""Settings of a rating-panel scorer (:class:`PanelOptions`), checked when they are made."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from disagree.errors import PanelError
from disagree.panel.encoders import ENCODERS

HEADS = ("ordinal", "multinomial")
#: Defaults chosen by held-out evaluation on the default survey (see ``RatingPanelScorer``).
DEFAULT_L2 = 1e-4
DEFAULT_EPOCHS = 200
DEFAULT_LR = 0.05
DEFAULT_BATCH_SIZE = 65536
#: Ridge penalty on the group-by-text weights (see ``RatingPanelScorer``, Notes).
DEFAULT_INTERACTION_L2 = 1e-3


@dataclass(frozen=True)
class PanelOptions:
    """What to fit: encoder, head, factors, text columns and the optimiser's settings.

    The fields are those of :class:`~disagree.panel.scorer.RatingPanelScorer` (see there);
    ``factors`` and ``text_columns`` are tuples or None (resolved against the table by
    :func:`~disagree.panel.fitting.fit_panel`); ``interactions`` is True (every factor),
    False (none) or a tuple of factor names.

    Raises
    ------
    PanelError
        For an unknown encoder or head, a single string where a sequence of names is
        expected, a negative or non-finite ``l2`` or ``interaction_l2``, or a non-positive
        ``epochs``, ``lr`` or ``batch_size``.
    """

    encoder: str = "hashing"
    head: str = "ordinal"
    factors: tuple[str, ...] | None = None
    text_columns: tuple[str, ...] | None = None
    l2: float = DEFAULT_L2
    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    seed: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE
    interactions: bool | tuple[str, ...] = True
    interaction_l2: float = DEFAULT_INTERACTION_L2
    guard: bool = True

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise PanelError(f"unknown encoder {self.encoder!r}; valid encoders are: "
                             f"{', '.join(ENCODERS)}")
        if self.head not in HEADS:
            raise PanelError(f"unknown head {self.head!r}; valid heads are: {', '.join(HEADS)}")
        if any(isinstance(v, str) for v in (self.factors, self.text_columns,
                                            self.interactions)):
            raise PanelError("factors, text_columns and interactions must be sequences of "
                             "names, not a single string")
        for name in ("l2", "interaction_l2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                    not (value >= 0 and math.isfinite(value)):
                raise PanelError(f"{name}={value!r}: expected a finite number >= 0")
        if int(self.epochs) < 1 or int(self.batch_size) < 1 or not self.lr > 0:
            raise PanelError(f"epochs={self.epochs!r}, batch_size={self.batch_size!r} and "
                             f"lr={self.lr!r} must be positive")
        normal = {"factors": _names(self.factors), "text_columns": _names(self.text_columns),
                  "l2": float(self.l2), "epochs": int(self.epochs), "lr": float(self.lr),
                  "seed": int(self.seed), "batch_size": int(self.batch_size),
                  "interactions": _interactions(self.interactions),
                  "interaction_l2": float(self.interaction_l2), "guard": bool(self.guard)}
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the options as JSON-ready values (tuples as lists); ``PanelOptions(**d)``."""
        out = asdict(self)
        for name in ("factors", "text_columns", "interactions"):
            if isinstance(out[name], tuple):
                out[name] = list(out[name])
        return out


def _names(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


def _interactions(value: object) -> bool | tuple[str, ...]:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if not isinstance(value, Sequence):
        raise PanelError(f"interactions={value!r}: expected True, False or a sequence of "
                         "factor names")
    return tuple(str(v) for v in value)


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_EPOCHS", "DEFAULT_INTERACTION_L2", "DEFAULT_L2",
           "DEFAULT_LR", "HEADS", "PanelOptions"]
