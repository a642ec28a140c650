"""Groups of raters: a selection by factor levels, and its one string form.

A *group* is a mapping from factors (rater attributes) to one level each, e.g.
``{"gender": "female", "politics": "conservative"}``. Its string form, used in column values,
file names, manifests and on the command line, is ``gender=female,politics=conservative``:
``factor=level`` joined by commas, no spaces, in the mapping's order. :func:`format_group` and
:func:`parse_group` are inverses.
"""

from __future__ import annotations

from collections.abc import Mapping

from disagree.errors import DataError

#: The whole sample, as a group label (the empty selection).
POPULATION = "population"


def format_group(group: Mapping[str, object] | None) -> str:
    """Return the string form of a group (``"population"`` for None or an empty mapping).

    Examples
    --------
    >>> format_group({"gender": "female", "politics": "conservative"})
    'gender=female,politics=conservative'
    >>> format_group(None)
    'population'
    """
    if not group:
        return POPULATION
    return ",".join(f"{factor}={level}" for factor, level in group.items())


def parse_group(text: str | Mapping[str, object] | None) -> dict[str, str]:
    """Parse ``"factor=level,factor=level"`` into a group (a mapping is checked and copied).

    ``"population"``, ``""`` and None give the empty group.

    Raises
    ------
    DataError
        For a part that is not ``factor=level`` or a factor named twice.
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return {str(k): str(v) for k, v in text.items()}
    text = text.strip()
    if text in ("", POPULATION):
        return {}
    group: dict[str, str] = {}
    for part in text.split(","):
        factor, sep, level = (s.strip() for s in part.partition("="))
        if not sep or not factor or not level:
            raise DataError(f"group {text!r}: {part.strip()!r} is not factor=level "
                            "(expected e.g. politics=conservative,gender=female)")
        if factor in group:
            raise DataError(f"group {text!r}: factor {factor!r} is named twice")
        group[factor] = level
    return group
