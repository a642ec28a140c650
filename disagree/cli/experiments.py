"""``disagree experiments``: the paper's experiment grid (training runs and their evaluation)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from disagree.cli.args import command

if TYPE_CHECKING:
    from disagree.evaluate.grid_config import GridConfig


def add_experiments(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree experiments``."""
    p = command(sub, "experiments", run_experiments,
                "train every variant of the grid's experiments (disagreement handling, rating "
                "scale, optimiser, group) for every seed, judge each against the un-tuned "
                "model, and write results.csv, summary.csv and figures; finished cells are "
                "reused, an interrupted grid resumes (needs the 'train' extra; 'ray' for "
                "--executor ray)")
    p.add_argument("config", type=Path, help="grid config (see configs/tiny-grid.yaml)")
    p.add_argument("--out", type=Path, default=None, help="output folder (overrides 'out')")
    p.add_argument("--executor", choices=["local", "ray"], default=None,
                   help="run cells here one after another (local) or as Ray tasks (ray); "
                        "default: the config's executor.name")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join, e.g. auto or ray://head:10001 (implies --executor "
                        "ray; default: the config's, or a local Ray instance)")
    p.add_argument("--check", action="store_true",
                   help="only check the config (and resolve every cell's train config)")


def run_experiments(args: argparse.Namespace) -> int:
    """Check the grid config, then run it (complete cells are reused)."""
    from disagree.evaluate.grid import run_grid
    from disagree.evaluate.grid_cells import GridInputs, expand_cells
    from disagree.evaluate.grid_config import load_grid_config

    cfg = with_flags(load_grid_config(args.config), args)
    if args.check:
        cells = expand_cells(cfg, GridInputs.load(cfg))
        print(f"config ok: {len(cfg.experiments)} experiments x {len(cfg.seeds)} seeds, "
              f"{len(cells)} distinct cells -> {cfg.out}")
        return 0
    print(run_grid(cfg).summary.round(3).to_string(index=False))
    return 0


def with_flags(cfg: GridConfig, args: argparse.Namespace) -> GridConfig:
    """Return the config with ``--out``, ``--executor`` and ``--address`` applied."""
    executor = {k: v for k, v in {"name": "ray" if args.address else args.executor,
                                  "address": args.address}.items() if v is not None}
    return cfg.model_copy(update={"out": args.out or cfg.out,
                                  "executor": cfg.executor.model_copy(update=executor)})
