"""Where the grid's cells run: one after another here (``local``) or as Ray tasks (``ray``).

A cell (:class:`~disagree.evaluate.grid_cells.Cell`) is trained with
:func:`disagree.train.train` into ``OUT/cells/<key>/run``, then its policy is judged on the
held-out prompts for every (judge, dimension, unit) it needs. A judge that generates
(``panel``, ``classifier``) also judges the cell's un-tuned base model with the same sampling
seed (``control`` in ``cell.json``): with tiny models every seed has its own base. The record
keeps the run's budget: steps, epochs, training examples (pairs, or prompts for GRPO).
``OUT/cells/<key>/cell.json`` (written last and atomically) marks the cell complete: a complete
cell is never trained again, and an interrupted grid resumes with the cells that lack it (a
cell stopped mid-training resumes from its last checkpoint). A complete cell that lacks an
evaluation (a unit, dimension or judge added to the config) is judged again without training.

``ray`` submits each cell as a Ray task with the config's ``num_cpus`` and ``num_gpus``, to
the running Ray instance, or to ``ray.init(address=...)`` (``auto`` or ``ray://host:10001``
joins a cluster; none starts a local instance). The task is :func:`run_cell`, the same
function the local executor calls, so both give the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from disagree._io import write_json
from disagree.data import load_ratings
from disagree.data.groups import parse_group
from disagree.data.simulate import load_default_survey
from disagree.errors import EvaluateError
from disagree.evaluate.grid_cells import Cell
from disagree.evaluate.grid_config import Executor, GridConfig
from disagree.evaluate.heldout import held_out_items
from disagree.evaluate.judges import make_judge
from disagree.evaluate.policy import Policy
from disagree.model import load_fit

Say = Callable[[str], None]


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to train and judge one cell (plain, picklable values).

    ``judges`` maps each judge key of ``evaluations`` to its ``make_judge`` keywords
    (``name`` included).
    """

    key: str
    digest: str
    config: dict[str, Any]
    folder: str
    entries: tuple[tuple[str, str, int], ...]
    evaluations: tuple[tuple[str, str, str], ...]
    ratings: str
    fit: str
    split: tuple[float, float, float]
    split_seed: int
    judges: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, cell: Cell, cfg: GridConfig, ratings: str,
           judges: Mapping[str, Mapping[str, Any]]) -> CellJob:
        """Return the job of ``cell`` in the grid ``cfg``.

        ``ratings``: the cells' ratings; ``judges``: judge key -> options (see
        :meth:`~disagree.evaluate.grid_cells.GridInputs.judges`).
        """
        return cls(cell.key, cell.digest, cell.config, str(cell.folder), cell.entries,
                   cell.evaluations, ratings, str(cfg.fit), cfg.split, cfg.split_seed,
                   {k: dict(judges[k]) for k in dict.fromkeys(e[0] for e in cell.evaluations)})

    @property
    def label(self) -> str:
        """``disagreement/majority seed 0`` (and the other entries that share the cell)."""
        return ", ".join(f"{e}/{v} seed {s}" for e, v, s in self.entries)

    def missing(self) -> list[tuple[str, str, str]]:
        """Return the evaluations that ``cell.json`` lacks (all of them when there is none)."""
        record = read_cell(Path(self.folder))
        done = set(record["scores"]) if record else set()
        return [e for e in self.evaluations if score_key(*e) not in done]


def score_key(judge: str, dimension: str, unit: str) -> str:
    """Key of an evaluation in ``cell.json``: ``posterior|toxicity|population``."""
    return f"{judge}|{dimension}|{unit}"


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


def judge_scores(policy: Policy, evaluations: Sequence[tuple[str, str, str]],
                 cache: dict[str, Any], judges: Mapping[str, Mapping[str, Any]]
                 ) -> dict[str, dict[str, list]]:
    """Score ``policy`` with the judge of every (judge key, dimension, unit).

    Parameters
    ----------
    policy : Policy
        The posterior judge reads its implicit rewards (computed once for all evaluations);
        the generating judges sample from it.
    evaluations : sequence of (judge key, dimension, unit)
    cache : dict
        ``fit`` and ``items`` (the held-out items); the judges are kept in it, so that their
        soft labels (or scorers) are built once per process.
    judges : mapping
        Judge key -> ``make_judge`` keywords, ``name`` included.

    Returns
    -------
    dict
        ``score_key -> {"prompt_id": [...], "score": [...], "score_mix": [...]}``
        (``score_mix`` for the posterior judge only).
    """
    rewards = CachedRewards(policy) if policy.reference_path is not None else policy
    out = {}
    for key, dimension, unit in evaluations:
        judge = judge_of(cache, key, dimension, unit, judges[key])
        is_posterior = judges[key]["name"] == "posterior"
        frame = judge.score(rewards if is_posterior else policy, cache["items"])
        scores = {"prompt_id": [str(p) for p in frame["prompt_id"]],
                  "score": [float(v) for v in frame["score"]]}
        if is_posterior:
            scores["score_mix"] = [float(v) for v in frame["score_mix"]]
        out[score_key(key, dimension, unit)] = scores
    return out


def judge_of(cache: dict[str, Any], key: str, dimension: str, unit: str,
             options: Mapping[str, Any]) -> Any:
    """Return the cached judge of a judge key, dimension and unit (built on first use)."""
    cached = ("judge", key, dimension, unit)
    if cached not in cache:
        options = dict(options)
        name = options.pop("name")
        group = None if unit == "population" else parse_group(unit)
        if name == "posterior":
            options["fit"] = cache["fit"]
        if name != "classifier":
            options["group"] = group
        cache[cached] = make_judge(name, dimension=dimension, **options)
    return cache[cached]


def run_cell(job: CellJob, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (unless complete) and judge one cell; write and return its ``cell.json`` record.

    Parameters
    ----------
    job : CellJob
    cache : dict, optional
        Shared by the cells of one process: the loaded fit, held-out items and judges.
    """
    folder = Path(job.folder)
    record = read_cell(folder)
    missing = job.missing()
    if record is not None and not missing:
        return record
    if record is None:
        from disagree.train import train

        result = train(job.config, progress=False)
        record = {"key": job.key, "digest": job.digest, "config": job.config,
                  "train": budget_spent(folder / "run", result.global_step,
                                        result.wall_seconds),
                  "scores": {}, "control": {}}
    cache = {} if cache is None else cache
    if "fit" not in cache:
        table = (load_default_survey() if job.ratings == "default"
                 else load_ratings(job.ratings))
        cache["fit"] = load_fit(job.fit)
        cache["items"] = held_out_items(table, job.split, job.split_seed)
    policy = Policy.from_run(folder / "run")
    scores = judge_scores(policy, missing, cache, job.judges)
    generating = [e for e in missing if job.judges[e[0]]["name"] != "posterior"]
    control = {}
    if generating:
        run = json.loads((folder / "run" / "run.json").read_text())
        base = Policy.base(run["base_model"], chat=policy.chat)
        control = judge_scores(base, generating, cache, job.judges)
    record = {**record, "scores": {**record["scores"], **scores},
              "control": {**record.get("control", {}), **control}}
    write_json(folder / "cell.json", record)
    return record


def budget_spent(run_dir: Path, steps: int | None, seconds: float | None) -> dict[str, Any]:
    """Return what a finished run spent: steps, epochs, training examples, their visits.

    ``examples`` are the run's training pairs (prompts for GRPO, ``run.json``); ``epochs`` is
    the trainer's own count at the end (``metrics.jsonl``); ``visits`` is ``epochs x
    examples``.
    """
    run = json.loads((run_dir / "run.json").read_text())
    inputs = run.get("inputs", {})
    examples = inputs.get("n_train", inputs.get("n_prompts"))
    epochs = None
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            row = json.loads(line)
            if row.get("epoch") is not None:
                epochs = float(row["epoch"])
    visits = round(epochs * examples) if epochs is not None and examples else None
    return {"global_step": steps, "wall_seconds": seconds, "examples": examples,
            "epochs": epochs, "visits": visits}


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
