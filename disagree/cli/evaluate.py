"""``disagree figure2``: group-trained models next to the survey, and the alignment matrix."""

from __future__ import annotations

import argparse
from pathlib import Path

from disagree.cli.args import command


def add_figure2(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree figure2``."""
    p = command(sub, "figure2", run_figure2,
                "train one model per group (and seed) of each comparison, judge them on "
                "held-out prompts, and write figure2.csv/png/pdf and the group alignment "
                "matrix next to the survey's contrasts (needs the 'train' extra)")
    p.add_argument("config", type=Path, help="study config (see configs/tiny-figure2.yaml)")
    p.add_argument("--out", type=Path, default=None, help="output folder (overrides 'out')")
    p.add_argument("--check", action="store_true", help="only check the config")


def run_figure2(args: argparse.Namespace) -> int:
    """Check the study config, then run it (finished runs are reused)."""
    from disagree.evaluate import figure2, load_figure2_config

    cfg = load_figure2_config(args.config)
    if args.out is not None:
        cfg = cfg.model_copy(update={"out": args.out})
    if args.check:
        print(f"config ok: {len(cfg.comparisons)} comparisons x {len(cfg.seeds)} seeds -> "
              f"{cfg.out}")
        return 0
    result = figure2(cfg)
    print(result.summary())
    return 0
