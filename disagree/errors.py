"""Exceptions and warnings raised by disagree.

Each stage has one exception type, all deriving from :class:`DisagreeError`, so that callers can
catch one stage or everything. The command line turns any :class:`DisagreeError` into a message
and exit code 2. Messages name the file, the row(s), the column, the bad value and what was
expected.
"""

from __future__ import annotations


class DisagreeError(ValueError):
    """Base class of every error disagree raises on bad input."""


class DataError(DisagreeError):
    """Ratings data that cannot be read or does not satisfy the ratings contract."""


class DisagreeWarning(UserWarning):
    """Something in the input that is suspicious but not fatal (e.g. a one-category dimension)."""


class ModelError(DisagreeError):
    """A model specification or fit that cannot be used (bad covariate, missing fit files...)."""


class TrainError(DisagreeError):
    """A training config, pairs file or scorer that cannot be used (unknown key, bad weights...)."""
