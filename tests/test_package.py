"""Packaging promises: the analysis half imports without torch; README and CI agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_analysis_half_imports_without_torch():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'trl', 'transformers', 'datasets'):\n"
            "            raise ImportError(f'blocked: {name}')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import disagree, disagree.data, disagree.describe, disagree.cli, disagree.ordinal\n"
            "import disagree.model, disagree.labels, disagree.pairs, disagree.demo\n"
            "from disagree.panel import RatingPanelScorer, PanelState, split_items\n"
            "disagree.simulate_survey(seed=0, n_raters=20, n_prompts=4)\n"
            "assert 'torch' not in sys.modules and 'disagree.train' not in sys.modules\n"
            "assert 'jax' not in sys.modules  # a second of every command's start\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    commands = [b for b in blocks if b.startswith("python3.11 -m venv .venv")]
    assert len(commands) == 2, "README must give exactly two set-up commands"
    marker = readme.split("<!-- test-command -->", 1)[1]
    assert re.search(r"```bash\n(.*?)\n```", marker, flags=re.S).group(1) == commands[1]
    assert "<!-- test-command -->" in (ROOT / ".ci" / "run").read_text()
