"""``disagree train`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from disagree.cli.args import (
    SAMPLERS,
    command,
)


def add_train(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree train``."""
    p = command(sub, "train", run_train,
                 "DPO (plain, soft, importance) or GRPO with TRL from a YAML config; resumes "
                 "from the last checkpoint when re-run (needs the 'train' extra)")
    p.add_argument("config", type=Path, help="run config (see configs/*.yaml)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="run folder (overrides the config's output_dir)")
    p.add_argument("--check", action="store_true",
                   help="only check the config and its inputs; load no model")
    p.add_argument("--quiet", action="store_true", help="no progress bar or stage lines")


def run_train(args: argparse.Namespace) -> int:
    """Check a run config, then train (or resume)."""
    import disagree.train as train

    cfg = train.load_config(args.config)
    if args.output_dir is not None:
        cfg = cfg.with_output_dir(args.output_dir)
    if args.check:
        print(f"config ok: {cfg.method} on {cfg.model} -> {cfg.output_dir}")
        return 0
    print(train.train(cfg, progress=not args.quiet).summary())
    return 0


def add_demo(sub: argparse._SubParsersAction) -> None:
    """Register ``disagree demo``."""
    p = command(sub, "demo", run_demo,
                 "the pipeline on the bundled default survey (or --data): simulate -> "
                 "validate -> describe -> fit -> contrasts -> soft pairs -> tiny soft-DPO run")
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default demo)")
    p.add_argument("--data", type=Path, default=None,
                   help="your own ratings file instead of the simulated survey")
    p.add_argument("--no-fit", action="store_true", help="stop after describe (seconds)")
    p.add_argument("--sampler", default="nutpie", choices=SAMPLERS)


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo pipeline (its steps print as they go)."""
    from disagree.demo import run

    run(args.out, args.data, fit_model=not args.no_fit, sampler=args.sampler,
        progress=sys.stderr.isatty())
    return 0

