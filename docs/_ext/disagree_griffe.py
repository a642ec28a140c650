"""Griffe extension for the documentation build (``mkdocs.yml`` loads it).

The docstrings are numpydoc with Sphinx cross-reference roles (``:func:`fit```); MkDocs renders
Markdown. After griffe has loaded the ``disagree`` package this extension

- turns each role into a link to the object's API entry where the site renders it, and into
  code where it does not (a private module, another package); a role whose target does not
  exist at all (a typo, a renamed function) is logged as a warning, which fails
  ``mkdocs build --strict``;
- logs a warning for every public function, class or method of a public module without a
  docstring, so that a missing docstring fails the strict build too;
- gives a constant the ``#:`` comment above it as its docstring, as Sphinx does;
- writes the glossary's definition list (``term`` then an indented definition) in the
  Markdown ``def_list`` syntax, which would otherwise render as a code block.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|attr|data|exc|obj|const):`(~?)([^`<>]+)`")
HEADING = re.compile(r"^(\S[^\n]*)\n-{3,}[ \t]*$", re.M)
NUMPYDOC_SECTIONS = {
    "parameters", "other parameters", "returns", "yields", "receives", "raises", "warns",
    "warnings", "see also", "notes", "references", "examples", "attributes", "methods",
    "functions", "classes", "modules", "deprecated",
}


def _public(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """Yield ``obj`` and every object defined under it (not the aliases it imports)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


def _lookup(collection: Any, path: str) -> griffe.Object | griffe.Alias | None:
    try:
        return collection[path]
    except (KeyError, ValueError, griffe.AliasResolutionError):
        return None


def _lazy_exports(pkg: griffe.Module) -> dict[str, str]:
    """``{"disagree.train.train": "disagree.train.run.train", ...}`` for lazy packages.

    A package whose ``__getattr__`` imports its names on first use (``disagree.train``: torch)
    lists them in a ``_EXPORTS = {name: submodule}`` literal, which griffe does not follow.
    """
    lazy: dict[str, str] = {}
    for module in _objects(pkg):
        exports = module.members.get("_EXPORTS") if module.is_module else None
        if exports is None or exports.is_alias or exports.value is None:
            continue
        try:
            names = ast.literal_eval(str(exports.value))
        except (ValueError, SyntaxError):
            continue
        for name, submodule in names.items():
            lazy[f"{module.path}.{name}"] = f"{module.path}.{submodule}.{name}"
    return lazy


def _resolve(obj: griffe.Object, target: str, lazy: dict[str, str]) -> str | None:
    """Return the canonical path of ``target`` in ``obj``'s docstring, or None."""
    collection = obj.modules_collection
    head = target.partition(".")[0]
    candidates = [target]
    scope: griffe.Object | None = obj
    while scope is not None:  # the docstring's own scope, then its parents'
        if head in scope.members or f"{scope.path}.{head}" in lazy:
            candidates.insert(0, f"{scope.path}.{target}")
            break
        scope = scope.parent
    for i, candidate in enumerate(candidates):
        for name, path in lazy.items():
            if candidate == name or candidate.startswith(name + "."):
                candidates[i] = path + candidate[len(name):]
    for path in candidates:
        found = _lookup(collection, path)
        if found is not None:
            try:
                return found.canonical_path
            except griffe.AliasResolutionError:
                return found.path
    return None


def _link(obj: griffe.Object, match: re.Match[str], lazy: dict[str, str]) -> str:
    """One role as an optional cross-reference (a link where the site renders the target)."""
    _, short, target = match.groups()
    target = re.sub(r"\s+", "", target)
    shown = target.rsplit(".", 1)[-1] if short else target
    path = _resolve(obj, target, lazy)
    if path is None:
        first = target.split(".", 1)[0]
        if first == "disagree" or ("." not in target and not hasattr(builtins, target)):
            griffe.logger.warning("%s: the docstring refers to %s, which does not exist",
                                  obj.path, match.group(0))
        return f"`{shown}`"
    return f'<autoref identifier="{path}" optional><code>{shown}</code></autoref>'


def _definition_lists(text: str) -> str:
    """Rewrite ``term`` + indented definition to ``term`` + ``:   definition`` (def_list)."""
    out: list[str] = []
    lines = text.split("\n")
    in_definition = False
    for i, line in enumerate(lines):
        previous = lines[i - 1] if i else ""
        if (line.startswith("    ") and previous.strip() and not previous.startswith(" ")
                and not previous.rstrip().endswith("::")):
            out.append(":   " + line[4:])  # the first line of a term's definition
            in_definition = True
        elif in_definition and line.strip() and not line.startswith(" "):
            out += ["", line]  # the next term: def_list needs a blank line between entries
            in_definition = False
        else:
            out.append(line)
    return "\n".join(out)


def _free_sections(value: str) -> str:
    """Apply :func:`_definition_lists` to the sections numpydoc does not define."""
    parts = HEADING.split(value)
    if len(parts) == 1:
        return value
    rebuilt = [parts[0]]
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        if title.strip().lower() not in NUMPYDOC_SECTIONS:
            body = _definition_lists(body)
        rebuilt.append(f"{title}\n{'-' * len(title)}{body}")
    return "".join(rebuilt)


def _comment_docstring(obj: griffe.Object, loader: griffe.GriffeLoader) -> None:
    """Give an attribute the ``#:`` comment lines above it as its docstring (as Sphinx does)."""
    if obj.lineno is None or obj.parent is None:
        return
    lines = obj.parent.module.lines
    comment: list[str] = []
    i = obj.lineno - 2
    while i >= 0 and lines[i].lstrip().startswith("#:"):
        comment.insert(0, lines[i].lstrip()[2:].strip())
        i -= 1
    if comment:
        obj.docstring = griffe.Docstring("\n".join(comment), lineno=i + 2, parent=obj,
                                         parser=loader.docstring_parser,
                                         parser_options=loader.docstring_options)


class DisagreeDocstrings(griffe.Extension):
    """Roles to links, definition lists to Markdown, and a warning per missing docstring."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader,
                   **kwargs: Any) -> None:
        """Rewrite the package's docstrings and check that public objects have one."""
        lazy = _lazy_exports(pkg)
        for obj in _objects(pkg):
            if obj.docstring is None and obj.is_attribute:
                _comment_docstring(obj, loader)
            if obj.docstring is not None:
                value = ROLE.sub(lambda m, o=obj: _link(o, m, lazy), obj.docstring.value)
                obj.docstring.value = _free_sections(value)
            elif self._needs_docstring(obj):
                griffe.logger.warning("%s (%s:%s) has no docstring", obj.path,
                                      obj.relative_filepath, obj.lineno)

    @staticmethod
    def _needs_docstring(obj: griffe.Object) -> bool:
        if not (obj.is_function or obj.is_class) or not _public(obj.path):
            return False
        if obj.parent is not None and obj.parent.is_function:
            return False
        if obj.name.startswith("__") and obj.name.endswith("__"):
            return False
        # an override whose def line tells ruff it needs none (a noqa comment for D102)
        definition = next((line for line in obj.lines if line.lstrip().startswith(
            ("def ", "async def ", "class "))), "")
        return not re.search(r"#\s*noqa:.*\bD1", definition)
