"""Speed of plain TRL DPO against the weighted modes (soft, importance), in one run.

Same model, same pairs, same batch size, same seed; only the trainer class differs. Two
measurements, each interleaved over the three trainers (plain, soft, importance, plain, ...)
so that drift of the machine hits all three alike:

1. ``step``: the loss, forward and backward of one fixed batch, repeated (``--reps``); the
   median time per repetition.
2. ``train``: ``Trainer.train`` for ``--steps`` optimizer steps, ``--rounds`` times per
   trainer (interleaved); the median time between consecutive steps after ``--warmup``
   steps, and tokens per second (TRL's token count over the timed steps).

Overhead = median time of the weighted mode / median time of plain DPO - 1 (target < 3%). A
second plain trainer ("plain-again") is measured the same way: its overhead is the noise.
On a GPU, peak memory (``torch.cuda.max_memory_allocated``) per trainer is printed too.

Usage::

    python benchmarks/train_speed.py                    # tiny model on the CPU
    python benchmarks/train_speed.py --model gpt2-small # GPT-2-small-sized, built from a config
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, TrainerCallback
from trl import DPOConfig, DPOTrainer

from disagree import make_pairs
from disagree.data.simulate import load_default_survey
from disagree.train.dpo import WeightedDPOTrainer
from disagree.train.tiny import build_tiny_model

#: "plain-again" is a second plain DPOTrainer: its "overhead" is the measurement noise.
MODES = ("plain", "soft", "importance", "plain-again")


class StepTimes(TrainerCallback):
    """Wall-clock time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def model_folder(kind: str, root: Path) -> Path:
    """Save the benchmark model (tiny, or GPT-2-small-sized with the tiny tokenizer)."""
    tiny = build_tiny_model(root / "tiny", seed=0)
    if kind == "tiny":
        return tiny
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=512,
                                       bos_token_id=tokenizer.bos_token_id,
                                       eos_token_id=tokenizer.eos_token_id))
    out = root / "gpt2-small"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def dataset() -> Dataset:
    """Majority toxicity pairs of the bundled survey with weights spread over [0.5, 1]."""
    frame = make_pairs(load_default_survey(), strategy="majority", dimension="toxicity").frame
    weights = 0.5 + 0.5 * (frame.index.to_numpy() % 11) / 10
    frame = frame.assign(weight=weights)[["prompt", "chosen", "rejected", "weight"]]
    return Dataset.from_pandas(frame, preserve_index=False)


def trainer(mode: str, path: Path, data: Dataset, args: argparse.Namespace, out: Path,
            callbacks: list | None = None):
    """A DPOTrainer (plain) or WeightedDPOTrainer (soft / importance) on the same inputs."""
    gpu = torch.cuda.is_available()
    config = DPOConfig(output_dir=str(out / mode), per_device_train_batch_size=args.batch,
                       max_steps=args.steps, learning_rate=1e-4, beta=0.1, report_to=[],
                       save_strategy="no", logging_steps=10_000, disable_tqdm=True,
                       bf16=gpu, use_cpu=not gpu, gradient_checkpointing=False, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(path)
    common = {"model": str(path), "args": config, "train_dataset": data,
              "processing_class": tokenizer, "callbacks": callbacks}
    if mode.startswith("plain"):
        return DPOTrainer(**common)
    return WeightedDPOTrainer(weight_mode=mode, **common)


def time_fixed_batch(trainers: dict, reps: int) -> dict[str, float]:
    """Median seconds of loss + backward on one fixed batch, interleaved over the trainers."""
    batches = {m: t._prepare_inputs(next(iter(t.get_train_dataloader())))
               for m, t in trainers.items()}
    times: dict[str, list[float]] = {m: [] for m in trainers}
    for rep in range(reps + 3):
        for mode, t in trainers.items():
            t.model.train()
            t.model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            t.compute_loss(t.model, batches[mode]).backward()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if rep >= 3:
                times[mode].append(time.perf_counter() - start)
    return {m: statistics.median(v) for m, v in times.items()}


def main() -> None:
    """Run both measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "gpt2-small"], default="tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="trainings per trainer")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = model_folder(args.model, root)
        data = dataset()
        n_params = sum(p.numel() for p in
                       trainer("plain", path, data, args, root).model.parameters())
        print(f"model {args.model} ({n_params / 1e6:.2f} M parameters), device {device}, "
              f"batch {args.batch} pairs, torch threads {torch.get_num_threads()}")

        trainers = {m: trainer(m, path, data, args, root) for m in MODES}
        fixed = time_fixed_batch(trainers, args.reps)
        del trainers

        step_times: dict[str, list[float]] = {m: [] for m in MODES}
        tokens: dict[str, list[float]] = {m: [] for m in MODES}
        memory: dict[str, float] = {}
        for _ in range(args.rounds):  # plain, soft, importance, plain, ...: same seed and data
            for mode in MODES:
                if torch.cuda.is_available():
                    torch.cuda.reset_peak_memory_stats()
                clock = StepTimes()
                t = trainer(mode, path, data, args, root, callbacks=[clock])
                t.train()
                kept = clock.times[args.warmup:]
                step_times[mode] += [b - a for a, b in zip(kept, kept[1:], strict=False)]
                tokens[mode].append(t._total_train_tokens / args.steps
                                    * (len(kept) - 1) / (kept[-1] - kept[0]))
                if torch.cuda.is_available():
                    memory[mode] = torch.cuda.max_memory_allocated() / 2**20
                del t

    base_fixed = fixed["plain"]
    base_step = statistics.median(step_times["plain"])
    print(f"{'trainer':<12}{'fixed batch ms':>16}{'overhead':>10}{'steps/s':>10}"
          f"{'overhead':>10}{'tokens/s':>11}" + (f"{'peak MiB':>10}" if memory else ""))
    for mode in MODES:
        step = statistics.median(step_times[mode])
        row = (f"{mode:<12}{1e3 * fixed[mode]:>16.2f}{fixed[mode] / base_fixed - 1:>10.1%}"
               f"{1 / step:>10.2f}{step / base_step - 1:>10.1%}"
               f"{statistics.median(tokens[mode]):>11.0f}")
        print(row + (f"{memory[mode]:>10.0f}" if memory else ""))


if __name__ == "__main__":
    main()
