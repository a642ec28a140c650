"""The documentation site builds in strict mode (mkdocs.yml, docs/).

A broken link or cross-reference, a page left out of the nav, or a public function or class
without a docstring fails ``mkdocs build --strict`` (the last through the griffe extension
docs/_ext/disagree_griffe.py); these tests build the site into a temporary folder.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "docs" / "_ext" / "disagree_griffe.py"
# the packages whose __all__ the API reference documents (docs/reference/)
PACKAGES = ["disagree", "disagree.data", "disagree.describe", "disagree.model", "disagree.labels",
            "disagree.pairs", "disagree.panel", "disagree.train", "disagree.evaluate",
            "disagree.demo"]


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(site)], cwd=config.parent, capture_output=True, text=True,
                          env=env, timeout=300)


def inventory(site: Path) -> set[str]:
    """The object names of the site's ``objects.inv`` (Sphinx inventory v2)."""
    data = (site / "objects.inv").read_bytes()
    start = 0
    for _ in range(4):  # four header lines, then zlib
        start = data.index(b"\n", start) + 1
    return {line.split(" ", 1)[0] for line in zlib.decompress(data[start:]).decode().splitlines()}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return out


def test_site_builds_strictly_with_every_notebook(site):
    assert (site / "index.html").is_file()
    assert (site / "getting-started" / "index.html").is_file()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = site / "notebooks" / notebook.stem / "index.html"
        assert page.is_file(), f"{notebook.name} is not rendered"
    model = (site / "reference" / "model" / "index.html").read_text()
    # the API entry of dg.fit, with its numpydoc parameters rendered as a table
    assert 'id="disagree.model.fit"' in model
    assert "reference" in model and "<table" in model


def test_every_public_function_and_class_has_an_api_entry(site):
    names = inventory(site)
    missing = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            if package == "disagree.train":  # loaded lazily (torch): any module of the stage
                found = any(n.startswith("disagree.train.") and n.endswith(f".{name}")
                            for n in names)
            else:
                obj = getattr(module, name)
                if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                    continue
                found = (f"{package}.{name}" in names
                         or f"{obj.__module__}.{obj.__qualname__}" in names)
            if not found:
                missing.append(f"{package}.{name}")
    assert not missing, f"public names without an API entry: {missing}"


def test_getting_started_gives_the_readme_commands_verbatim():
    readme = (ROOT / "README.md").read_text()
    page = (ROOT / "docs" / "getting-started.md").read_text()
    commands = [c for c in re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
                if c.startswith("python3.11 -m venv .venv")]
    assert len(commands) == 2
    for command in commands:
        assert f"```bash\n{command}\n```" in page


PACKAGE = '''
"""A package for the docs test.

See :func:`documented`, :class:`Thing` and :func:`{missing}`.

Glossary
--------
rating
    One rater's score.
"""


def documented(x: int) -> int:
    """Return ``x``.

    Parameters
    ----------
    x : int
        A number.
    """
    return x


class Thing:
    """A thing."""

    def method(self) -> None:{method_doc}
        return None
'''


def small_project(root: Path, *, broken: bool) -> Path:
    """A one-package site built with the project's griffe extension."""
    (root / "pkgx").mkdir(parents=True)
    (root / "pkgx" / "__init__.py").write_text(PACKAGE.format(
        missing="vanished" if broken else "documented",
        method_doc="" if broken else '\n        """Do nothing."""'))
    (root / "docs").mkdir()
    (root / "docs" / "index.md").write_text("::: pkgx\n")
    (root / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: pkgx
        markdown_extensions: [def_list]
        plugins:
          - mkdocstrings:
              handlers:
                python:
                  paths: [.]
                  options:
                    docstring_style: numpy
                    extensions: ["{EXTENSION}:DisagreeDocstrings"]
        """))
    return root / "mkdocs.yml"


def test_a_missing_docstring_or_a_broken_reference_fails_the_build(tmp_path):
    proc = build(small_project(tmp_path / "bad", broken=True), tmp_path / "bad-site")
    assert proc.returncode != 0
    assert "pkgx.Thing.method (pkgx/__init__.py:27) has no docstring" in proc.stderr
    assert "pkgx: the docstring refers to :func:`vanished`, which does not exist" in proc.stderr
    assert "pkgx.documented" not in proc.stderr

    proc = build(small_project(tmp_path / "good", broken=False), tmp_path / "good-site")
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "good-site" / "index.html").read_text()
    assert re.search(r'<a [^>]*href="#pkgx\.documented"[^>]*><code>documented</code></a>', html)
    assert re.search(r'<a [^>]*href="#pkgx\.Thing"[^>]*><code>Thing</code></a>', html)
    assert "<dt>rating</dt>" in html  # the glossary's definition list, not a code block


def test_the_reference_lists_every_top_level_name():
    import disagree

    page = (ROOT / "docs" / "reference" / "index.md").read_text()
    missing = [name for name in disagree.__all__ if f"[`dg.{name}`][" not in page]
    assert not missing, f"docs/reference/index.md does not list: {missing}"
