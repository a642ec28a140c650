"""Where the grid's cells run: one after another here (``local``) or as Ray tasks (``ray``).

A cell (:class:`~disagree.evaluate.grid_config.Cell`) is trained with
:func:`disagree.train.train` into ``OUT/cells/<key>/run``, then its policy is judged on the
held-out prompts for every (dimension, unit) it needs. ``OUT/cells/<key>/cell.json`` (the
scores of every prompt, written last and atomically) marks the cell complete: a complete cell
is never trained again, and an interrupted grid resumes with the cells that lack it (a cell
stopped mid-training resumes from its last checkpoint). A complete cell that lacks an
evaluation (a unit or dimension added to the config) is judged again without training.

``ray`` submits each cell as a Ray task with the config's ``num_cpus`` and ``num_gpus``, to
the running Ray instance, or to ``ray.init(address=...)`` (``auto`` or ``ray://host:10001``
joins a cluster; none starts a local instance). The task is :func:`run_cell`, the same
function the local executor calls, so both give the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from disagree._io import write_json
from disagree.data import load_ratings
from disagree.data.groups import parse_group
from disagree.data.simulate import load_default_survey
from disagree.errors import EvaluateError
from disagree.evaluate.grid_config import Cell, Executor, GridConfig
from disagree.evaluate.heldout import held_out_items
from disagree.evaluate.judges import make_judge
from disagree.evaluate.policy import Policy
from disagree.model import load_fit

Say = Callable[[str], None]


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to train and judge one cell (plain, picklable values)."""

    key: str
    digest: str
    config: dict[str, Any]
    folder: str
    entries: tuple[tuple[str, str, int], ...]
    evaluations: tuple[tuple[str, str], ...]
    ratings: str
    fit: str
    split: tuple[float, float, float]
    split_seed: int
    batch_size: int

    @classmethod
    def of(cls, cell: Cell, cfg: GridConfig, ratings: str) -> CellJob:
        """Return the job of ``cell`` in the grid ``cfg`` (``ratings``: the cells' ratings)."""
        return cls(cell.key, cell.digest, cell.config, str(cell.folder), cell.entries,
                   cell.evaluations, ratings, str(cfg.fit), cfg.split, cfg.split_seed,
                   cfg.judge.batch_size)

    @property
    def label(self) -> str:
        """``disagreement/majority seed 0`` (and the other entries that share the cell)."""
        return ", ".join(f"{e}/{v} seed {s}" for e, v, s in self.entries)

    def missing(self) -> list[tuple[str, str]]:
        """Return the evaluations that ``cell.json`` lacks (all of them when there is none)."""
        record = read_cell(Path(self.folder))
        done = set(record["scores"]) if record else set()
        return [e for e in self.evaluations if score_key(*e) not in done]


def score_key(dimension: str, unit: str) -> str:
    """Key of an evaluation in ``cell.json``: ``toxicity|population``."""
    return f"{dimension}|{unit}"


def read_cell(folder: Path) -> dict[str, Any] | None:
    """Return a cell's ``cell.json`` record, or ``None`` when the cell is not complete."""
    path = folder / "cell.json"
    return json.loads(path.read_text()) if path.is_file() else None


class CachedRewards:
    """A policy whose implicit rewards are computed once per set of responses."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.cache: dict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = {}

    def implicit_rewards(self, prompts: Sequence[str], responses: Sequence[str],
                         **kwargs: Any) -> np.ndarray:
        """Return the policy's implicit rewards (see :meth:`Policy.implicit_rewards`)."""
        key = (tuple(prompts), tuple(responses))
        if key not in self.cache:
            self.cache[key] = self.policy.implicit_rewards(prompts, responses, **kwargs)
        return self.cache[key]


def judge_scores(policy: Any, evaluations: Sequence[tuple[str, str]], cache: dict[str, Any],
                 batch_size: int = 16) -> dict[str, dict[str, list]]:
    """Score ``policy`` with the posterior judge of every (dimension, unit).

    Parameters
    ----------
    policy : Policy or CachedRewards
    evaluations : sequence of (dimension, unit)
    cache : dict
        ``fit`` and ``items`` (the held-out items); the judges are kept in it, so that their
        soft labels are computed once per process.
    batch_size : int

    Returns
    -------
    dict
        ``score_key -> {"prompt_id": [...], "score": [...], "score_mix": [...]}``.
    """
    out = {}
    for dimension, unit in evaluations:
        frame = judge_of(cache, dimension, unit, batch_size).score(policy, cache["items"])
        out[score_key(dimension, unit)] = {
            "prompt_id": [str(p) for p in frame["prompt_id"]],
            "score": [float(v) for v in frame["score"]],
            "score_mix": [float(v) for v in frame["score_mix"]]}
    return out


def judge_of(cache: dict[str, Any], dimension: str, unit: str, batch_size: int = 16) -> Any:
    """Return the cached posterior judge of a dimension and unit (built on first use)."""
    key = ("judge", dimension, unit, batch_size)
    if key not in cache:
        group = None if unit == "population" else parse_group(unit)
        cache[key] = make_judge("posterior", fit=cache["fit"], dimension=dimension,
                                group=group, batch_size=batch_size)
    return cache[key]


def run_cell(job: CellJob, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (unless complete) and judge one cell; write and return its ``cell.json`` record.

    Parameters
    ----------
    job : CellJob
    cache : dict, optional
        Shared by the cells of one process: the loaded fit and held-out items.
    """
    folder = Path(job.folder)
    record = read_cell(folder)
    missing = job.missing()
    if record is not None and not missing:
        return record
    if record is None:
        from disagree.train import train

        result = train(job.config, progress=False)
        trained = {"global_step": result.global_step, "wall_seconds": result.wall_seconds}
        record = {"key": job.key, "digest": job.digest, "config": job.config,
                  "train": trained, "scores": {}}
    cache = {} if cache is None else cache
    if "fit" not in cache:
        table = (load_default_survey() if job.ratings == "default"
                 else load_ratings(job.ratings))
        cache["fit"] = load_fit(job.fit)
        cache["items"] = held_out_items(table, job.split, job.split_seed)
    policy = CachedRewards(Policy.from_run(folder / "run"))
    scores = judge_scores(policy, missing, cache, job.batch_size)
    record = {**record, "scores": {**record["scores"], **scores}}
    write_json(folder / "cell.json", record)
    return record


def run_jobs(jobs: Sequence[CellJob], executor: Executor, say: Say,
             cache: dict[str, Any] | None = None) -> dict[str, dict]:
    """Run every job with the executor; return ``key -> cell.json record``.

    ``cache`` (``fit``, ``items``, judges) is shared by the local executor's cells.
    """
    if executor.name == "ray":
        return run_ray(jobs, executor, say)
    return run_local(jobs, say, {} if cache is None else cache)


def run_local(jobs: Sequence[CellJob], say: Say,
              cache: dict[str, Any]) -> dict[str, dict]:
    """Run the jobs one after another in this process."""
    records: dict[str, dict] = {}
    for k, job in enumerate(jobs, 1):
        state = status(job)
        say(f"[{k}/{len(jobs)}] cell {job.key} ({job.label}): {state}")
        records[job.key] = run_cell(job, cache)
    return records


def status(job: CellJob) -> str:
    """``complete``, ``judging`` (trained, an evaluation missing) or ``training``."""
    if read_cell(Path(job.folder)) is None:
        return "training"
    return "judging" if job.missing() else "complete"


def run_ray(jobs: Sequence[CellJob], executor: Executor, say: Say) -> dict[str, dict]:
    """Run each job that is not complete as a Ray task; wait for all, then raise any error."""
    try:
        import ray
    except ImportError as err:
        raise EvaluateError("executor.name: ray needs the 'ray' extra "
                            "(pip install -e \".[ray]\")") from err
    if not ray.is_initialized():
        ray.init(address=executor.address, include_dashboard=False)
        say(f"ray: {ray.cluster_resources()}")
    records: dict[str, dict] = {}
    task = ray.remote(num_cpus=executor.num_cpus, num_gpus=executor.num_gpus)(run_cell)
    pending = {}
    for job in jobs:
        if status(job) == "complete":
            say(f"cell {job.key} ({job.label}): complete")
            records[job.key] = read_cell(Path(job.folder)) or {}
        else:
            pending[task.remote(job)] = job
    say(f"ray: {len(pending)} cells submitted ({executor.num_cpus} CPUs, "
        f"{executor.num_gpus} GPUs each)")
    errors = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(done[0])
        try:
            records[job.key] = ray.get(done[0])
            say(f"cell {job.key} ({job.label}): done, {len(pending)} left")
        except Exception as err:  # noqa: BLE001 - reported after the others finish
            errors.append(err)
            say(f"cell {job.key} ({job.label}): failed: {err}")
    if errors:
        raise errors[0]
    return records
