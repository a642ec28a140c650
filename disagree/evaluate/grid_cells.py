"""The grid's cells: resolved train configs, their hashes, and the inputs they share.

:func:`expand_cells` resolves every (experiment, variant, seed) of a
:class:`~disagree.evaluate.grid_config.GridConfig` into a ``disagree train`` config
(:func:`resolve_cell`) and merges the entries whose resolved configs are equal into one
:class:`Cell`, trained once and judged on the union of their evaluations
``(judge key, dimension, unit)``. :class:`GridInputs` holds what the cells share: the ratings,
the fit's hash, the training prompts and reward scorers of GRPO cells, and the panel judge's
scorer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from disagree._io import sha256_file, write_table
from disagree.data import RatingTable
from disagree.data.groups import parse_group
from disagree.data.splits import split_prompts
from disagree.errors import DisagreeError, EvaluateError
from disagree.evaluate.grid_config import GridConfig, budget_problem, merge
from disagree.evaluate.heldout import ratings_of_fit
from disagree.train.schema import ScorerOptions, problems


@dataclass(frozen=True)
class Cell:
    """One training run of the grid and the (experiment, variant, seed) entries that use it.

    ``key`` (the first 16 hex digits of ``digest``) names its folder ``OUT/cells/<key>``;
    ``digest`` is the SHA-256 of the canonical JSON of the resolved train config (without
    ``output_dir``; input files replaced by their content hashes) and the inputs' hashes.
    ``evaluations`` are ``(judge key, dimension, unit)``.
    """

    key: str
    digest: str
    config: dict[str, Any]
    folder: Path
    entries: tuple[tuple[str, str, int], ...]
    evaluations: tuple[tuple[str, str, str], ...]


@dataclass
class GridInputs:
    """The grid's shared inputs: the ratings, their hashes, and files made for the cells."""

    cfg: GridConfig
    table: RatingTable
    ratings: str
    fit_sha256: str
    substitutions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, cfg: GridConfig) -> GridInputs:
        """Load the ratings and read the fit's hashes (``model.json``).

        The ratings are those the fit saw (see
        :func:`disagree.evaluate.heldout.ratings_of_fit`).

        Raises
        ------
        EvaluateError
            ``fit:`` when the fit was made from other ratings.
        """
        table, ratings = ratings_of_fit(cfg.ratings, cfg.fit, cfg.out)
        meta = json.loads((cfg.fit / "model.json").read_text())
        sha = meta.get("posterior_sha256") or sha256_file(cfg.fit / "posterior.nc")
        inputs = cls(cfg, table, ratings, sha)
        if ratings != "default":
            inputs.substitutions[ratings] = f"ratings:{table.data_hash}"
        inputs.substitutions[str(cfg.fit)] = f"fit:{sha}"
        return inputs

    def hashes(self) -> dict[str, str]:
        """Return the inputs' hashes that enter every cell's digest."""
        return {"ratings": self.table.data_hash, "fit": self.fit_sha256}

    def train_prompts(self) -> str:
        """Write (once) the training split's prompts for GRPO; return the file's path."""
        cfg = self.cfg
        tag = canonical_sha({"data": self.table.data_hash, "split": cfg.split,
                             "split_seed": cfg.split_seed})[:12]
        path = cfg.out.absolute() / "inputs" / f"train-prompts-{tag}.csv"
        if not path.is_file():
            items = self.table.items.reset_index()
            items["prompt_id"] = items["prompt_id"].astype(str)
            assignment = split_prompts(items["prompt_id"], cfg.split, cfg.split_seed)
            prompts = (items[items["prompt_id"].map(assignment) == "train"]
                       [["prompt_id", "prompt"]].drop_duplicates("prompt_id")
                       .sort_values("prompt_id"))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_table(path, prompts)
        self.substitutions[str(path)] = f"prompts:{tag}"
        return str(path)

    def scorer(self, options: Mapping[str, Any], seed: int, *, every_item: bool = False) -> str:
        """Fit (once) a rating-panel scorer; return its folder.

        Parameters
        ----------
        options : mapping
            :class:`~disagree.panel.RatingPanelScorer` keywords.
        seed : int
        every_item : bool
            Fit on every rating (the panel judge) instead of the training prompts' ratings
            only (a GRPO reward, which must not see the held-out prompts).
        """
        from disagree.panel import RatingPanelScorer, split_items

        cfg = self.cfg
        tag = canonical_sha({"options": dict(options), "seed": seed, "split": cfg.split,
                             "data": self.table.data_hash, "split_seed": cfg.split_seed,
                             **({"every_item": True} if every_item else {})})[:12]
        name = "judge-scorer" if every_item else "scorer"
        path = cfg.out.absolute() / "inputs" / f"{name}-{tag}"
        if not (path / "scorer.json").is_file():
            items = None if every_item else split_items(self.table, cfg.split,
                                                        cfg.split_seed)[0]
            RatingPanelScorer(seed=seed, **options).fit(self.table, items).save(path)
        self.substitutions[str(path)] = f"{name}:{tag}"
        return str(path)

    def shared_pairs(self, pairs: Mapping[str, Any]) -> str:
        """Build (once) the pairs of a resolved ``pairs:`` mapping; return their folder.

        The seeds of a variant train on the same pairs (the grid fixes the prompt split), so
        they are made once, as :func:`disagree.train.train` would make them, into
        ``OUT/inputs/pairs-<hash>`` (written to a temporary folder, then renamed).
        """
        from disagree.data import load_ratings
        from disagree.pairs import make_pairs

        tag = canonical_sha({"pairs": substitute(dict(pairs), self.substitutions),
                             "inputs": self.hashes()})[:16]
        path = self.cfg.out.absolute() / "inputs" / f"pairs-{tag}"
        if not (path / "manifest.json").is_file():
            options = dict(pairs)
            ratings, fit = options.pop("ratings"), options.pop("fit", None)
            table = self.table if ratings == self.ratings else load_ratings(ratings)
            pairset = make_pairs(table, fit, seed=options.pop("split_seed"), **options)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            pairset.save(tmp)
            tmp.replace(path)
        return str(path)

    def judges(self, cells: list[Cell]) -> dict[str, dict[str, Any]]:
        """Return the options of every judge the cells use (key -> ``make_judge`` keywords).

        The panel judge's scorer is fitted here (once, on every rating, with
        ``judge.panel.seed``): the GRPO reward's scorers see the training prompts only and are
        seeded by the cell, so the judge is not the reward the GRPO cells maximise.
        """
        cfg, out = self.cfg, {}
        generation = cfg.judge.generation.model_dump()
        for key, dim, _unit in dict.fromkeys(e for c in cells for e in c.evaluations):
            name = key.split("-")[0]
            if name == "posterior":
                out[key] = {"name": name, "batch_size": cfg.judge.batch_size}
            elif name == "panel":
                path = self.scorer(cfg.judge.panel.scorer.options(), cfg.judge.panel.seed,
                                   every_item=True)
                out[key] = {"name": name, "scorer": path, "generation": generation}
            else:
                model = cfg.judge.classifier[dim]
                out[key] = {"name": name, "model": model.model, "label": model.label,
                            "generation": generation}
        return out


def canonical_sha(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def substitute(obj: Any, paths: Mapping[str, str]) -> Any:
    """Replace every string of ``obj`` that is a key of ``paths`` by its value (recursively)."""
    if isinstance(obj, Mapping):
        return {k: substitute(v, paths) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [substitute(v, paths) for v in obj]
    return paths.get(obj, obj) if isinstance(obj, str) else obj


def resolve_cell(cfg: GridConfig, inputs: GridInputs, experiment: str, variant: str,
                 seed: int) -> tuple[str, dict[str, Any]]:
    """Return a cell's digest and its resolved train config (``output_dir`` in its folder).

    ``training.num_train_epochs`` is ``budget.epochs``: every cell makes the same number of
    passes over its own training examples (pairs; prompts for GRPO).

    Raises
    ------
    EvaluateError
        ``experiments.<experiment>.variants.<variant>: <the train config's problem>``.
    """
    from disagree.train import load_config

    where = f"experiments.{experiment}.variants.{variant}"
    override = cfg.experiments[experiment].variants[variant]
    problem = budget_problem(override.get("training") or {})
    if problem:
        raise EvaluateError(f"{where}: {problem}")
    raw = merge(cfg.train, override)
    raw["seed"] = seed
    raw["output_dir"] = str(cfg.out.absolute() / "cells" / "pending")
    raw["training"] = {**(raw.get("training") or {}), "num_train_epochs": cfg.budget.epochs}
    if raw.get("method") == "grpo":
        if "pairs" in raw:
            raise EvaluateError(f"{where}: pairs: a grpo variant trains on prompts and a reward; "
                                "remove the template's pairs with `pairs: null`")
        raw["prompts"] = inputs.train_prompts()
        reward = dict(raw.get("reward") or {})
        if not isinstance(reward.get("scorer"), str):
            try:
                options = ScorerOptions.model_validate(reward.get("scorer") or {}).options()
            except ValidationError as err:
                raise EvaluateError(f"{where}: reward.scorer: "
                                    f"{problems(err, {'': ScorerOptions})}") from None
            reward["scorer"] = inputs.scorer(options, seed)
            reward.pop("ratings", None)
        raw["reward"] = reward
    else:
        pairs = raw.get("pairs")
        if not isinstance(pairs, Mapping):
            raise EvaluateError(f"{where}: pairs: the grid needs a mapping of make_pairs options "
                                f"(it sets the prompt split), got {pairs!r}")
        pairs = {"ratings": inputs.ratings, **pairs, "split": list(cfg.split),
                 "split_seed": cfg.split_seed}
        if pairs.get("strategy") == "soft" and "fit" not in pairs:
            pairs["fit"] = str(cfg.fit)
        raw["pairs"] = pairs
    try:
        resolved = load_config(raw).to_dict()
    except DisagreeError as err:
        raise EvaluateError(f"{where}: {err}") from None
    resolved.pop("output_dir")
    digest = canonical_sha({"config": substitute(resolved, inputs.substitutions),
                            "inputs": inputs.hashes()})
    folder = cfg.out.absolute() / "cells" / digest[:16]
    return digest, {**resolved, "output_dir": str(folder / "run")}


def expand_cells(cfg: GridConfig, inputs: GridInputs) -> list[Cell]:
    """Resolve every (experiment, variant, seed); merge entries whose configs are equal.

    A cell used by several experiments (the same resolved config and seed) is trained once and
    judged on the union of their evaluations ``(judge key, dimension, unit)``.
    """
    found: dict[str, dict[str, Any]] = {}
    for exp in cfg.experiments:
        evaluations = [(cfg.judge_key(j, d), d, u) for j in cfg.judges_of(exp)
                       for d in cfg.dimensions_of(exp) for u in cfg.units_of(exp)]
        for variant in cfg.experiments[exp].variants:
            for seed in cfg.seeds:
                digest, config = resolve_cell(cfg, inputs, exp, variant, seed)
                cell = found.setdefault(digest, {"config": config, "entries": [],
                                                 "evaluations": []})
                cell["entries"].append((exp, variant, seed))
                cell["evaluations"] += [e for e in evaluations if e not in cell["evaluations"]]
    return [Cell(d[:16], d, c["config"], Path(c["config"]["output_dir"]).parent,
                 tuple(c["entries"]), tuple(c["evaluations"])) for d, c in found.items()]


def group_of(unit: str) -> dict[str, str] | None:
    """``None`` for ``population``, else the unit's ``{factor: level}``."""
    return None if unit == "population" else parse_group(unit)
