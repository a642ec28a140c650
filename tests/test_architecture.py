"""The shape of the package: imports flow one way, private names stay private, modules stay small.

The package's imports are read with ``ast`` (nothing is imported), including imports inside
functions, so a lazy import that runs back up the stages is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "disagree"
#: The stages in data-flow order; a module may import its own stage and earlier ones only.
STAGES = ["errors", "_io", "ordinal", "data", "describe", "model", "labels", "pairs", "panel",
          "train", "evaluate", "demo", "cli"]
#: Modules outside the flow that re-export or run everything.
ENTRY_POINTS = {"disagree", "disagree.cli", "disagree.cli.__main__", "disagree.demo"}
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, name: str | None = None) -> list[tuple[str, list[str], int]]:
    """``(module, imported names, line)`` of every import of a ``disagree`` module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names
                      if a.name.split(".")[0] == "disagree"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if base.split(".")[0] == "disagree":
                found.append((base, [a.name for a in node.names], node.lineno))
    return found


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "disagree"


def test_no_module_imports_another_modules_private_names():
    offences = []
    for name, path in modules().items():
        for target, names, line in imports(path):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if private and target != name:
                offences.append(f"{name}:{line} imports {', '.join(private)} from {target}")
    assert not offences, "\n".join(offences)


def test_stages_import_only_earlier_stages():
    offences = []
    for name, path in modules().items():
        if name in ENTRY_POINTS:
            continue
        here = STAGES.index(stage(name))
        for target, _, line in imports(path):
            there = stage(target)
            if there == "disagree":
                offences.append(f"{name}:{line} imports the package namespace `disagree`, "
                                "which imports every stage")
            elif STAGES.index(there) > here:
                offences.append(f"{name}:{line} ({stage(name)}) imports the later stage "
                                f"{target}")
    assert not offences, "\n".join(offences)


def test_there_is_no_import_cycle():
    known = modules()
    graph = {name: set() for name in known}
    for name, path in known.items():
        for target, names, _ in imports(path):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in known and candidate != name:
                    graph[name].add(candidate)
                    break
    # a package's __init__ re-exporting its own modules is not a cycle of the modules
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail
                             else [node, nxt])
                return True
            if nxt not in state and visit(nxt, trail + [node]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if start not in state and visit(start, []):
            break
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_under_500_lines(name):
    lines = len(modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_cli_only_parses_and_calls(path):
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 200  # one module per stage, each small
    tree = ast.parse(source)
    long_runs = [f"{f.name}: {f.end_lineno - f.lineno + 1} lines" for f in tree.body
                 if isinstance(f, ast.FunctionDef) and f.name.startswith("run_")
                 and f.end_lineno - f.lineno + 1 > 15]
    assert not long_runs, long_runs


def test_the_checker_sees_private_and_upward_imports(tmp_path):
    """The walk finds a private-name import and a lazy upward import in a function body."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from disagree.labels.soft import _Posterior\n")
    found = imports(probe, "disagree.model.probe")
    assert found == [("disagree.labels.soft", ["_Posterior"], 2)]
    assert STAGES.index(stage("disagree.labels.soft")) > STAGES.index(stage("disagree.model.x"))
