"""Exceptions and warnings raised by disagree.

Each stage has one exception type, all deriving from :class:`DisagreeError`, so that callers can
catch one stage or everything. The command line turns any :class:`DisagreeError` into a message
and exit code 2. Messages name the file, the row(s), the column, the bad value and what was
expected.
"""

from __future__ import annotations

import warnings


class DisagreeError(ValueError):
    """Base class of every error disagree raises on bad input."""


class DataError(DisagreeError):
    """Ratings data that cannot be read or does not satisfy the ratings contract."""


class DisagreeWarning(UserWarning):
    """Something in the input that is suspicious but not fatal (e.g. a one-category dimension)."""


class ModelError(DisagreeError):
    """A model specification or fit that cannot be used (bad factor, missing fit files...)."""


class ConvergenceError(ModelError):
    """A fit whose diagnostics are not ok, where the caller asked for a converged one."""


class PanelError(DisagreeError):
    """A rating-panel scorer that cannot be fitted, used or loaded (unknown factor, level...)."""


class TrainError(DisagreeError):
    """A training config or pairs file that cannot be used (unknown key, bad weights...)."""


class EvaluateError(DisagreeError):
    """An evaluation config, judge or run folder that cannot be used (unknown group...)."""


def renamed(new_value: object, old_value: object, old: str, new: str,
            stacklevel: int = 3) -> object:
    """Return the value of a renamed argument, warning when the old spelling was used.

    Old spellings keep working for one release with a :class:`DeprecationWarning` naming the
    new one. Giving both raises :class:`DisagreeError`.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise DisagreeError(f"{old} is the old name of {new}; give only {new}")
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)
    return old_value
