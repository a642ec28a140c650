"""A trained policy and its implicit reward: ``beta * (log pi(y|x) - log pi_ref(y|x))``.

DPO trains a policy ``pi`` whose preference between two responses to a prompt is the sign of the
difference of their implicit rewards; the rewards need no generation, only two forward passes
(policy and reference) over each prompt-response pair. :class:`Policy` finds the policy, its
reference model, ``beta`` and the chat setting in a run folder of :func:`disagree.train.train`
(``run.json``; the tiny base model is in ``base-model/``, a LoRA adapter's base is loaded
under it), or stands for an un-tuned base model (its implicit reward is zero everywhere: no
preference). The log-probabilities are summed over the response's tokens given the prompt,
tokenised as TRL's DPO trainer does (prompt and response separately, the end-of-sequence token
after a plain-text response; a chat model's template around both).

GRPO runs have no ``beta`` in the DPO sense: their implicit reward uses the config's ``beta``
(TRL's KL coefficient) when it is positive, else 1; the ranking of responses does not depend
on it, only the scale of ``sigmoid(margin)`` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from disagree.errors import TrainError

#: DPO's default ``beta`` (TRL's DPOConfig), used when a run's config does not set one.
DEFAULT_BETA = 0.1


@dataclass(frozen=True)
class Policy:
    """A policy to evaluate: a model, its reference model and the implicit reward's ``beta``.

    Attributes
    ----------
    name : str
        Label in tables (e.g. the group it was trained on).
    model_path : str
        The policy (a folder or hub id; a folder with ``adapter_config.json`` is a LoRA adapter).
    reference_path : str or None
        The reference model; ``None`` for an un-tuned base model (implicit reward zero).
    beta : float
        Scale of the implicit reward.
    chat : bool
        Wrap prompt and response in the model's chat template.
    """

    name: str
    model_path: str
    reference_path: str | None
    beta: float = DEFAULT_BETA
    chat: bool = False

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike[str], name: str | None = None) -> Policy:
        """Return the policy a complete training run folder holds.

        Parameters
        ----------
        run_dir : path
            A folder written by :func:`disagree.train.train`.
        name : str, optional
            Label (default: the folder's name).

        Returns
        -------
        Policy

        Raises
        ------
        TrainError
            When the folder has no ``run.json``, the run is not complete, or ``model/`` is
            missing.
        """
        run_dir = Path(run_dir)
        record_path = run_dir / "run.json"
        if not record_path.is_file():
            raise TrainError(f"{run_dir}: no run.json (not a training run folder)")
        try:
            record = json.loads(record_path.read_text())
        except json.JSONDecodeError as err:
            raise TrainError(f"{record_path}: damaged JSON ({err})") from err
        if record.get("status") != "complete":
            raise TrainError(f"{run_dir}: the run is not complete (status "
                             f"{record.get('status')!r}); run `disagree train` on its config "
                             f"again to finish it")
        if not (run_dir / "model").is_dir():
            raise TrainError(f"{run_dir}: no model/ folder although run.json says complete")
        config = record.get("config", {})
        beta = config.get("training", {}).get("beta")
        if config.get("method") == "grpo":
            beta = beta if beta else 1.0
        return cls(name=name or run_dir.name, model_path=str(run_dir / "model"),
                   reference_path=str(record["base_model"]),
                   beta=float(DEFAULT_BETA if beta is None else beta),
                   chat=bool(config.get("chat", False)))

    @classmethod
    def base(cls, model_path: str | os.PathLike[str], name: str = "base",
             chat: bool = False) -> Policy:
        """Return an un-tuned base model: no preference (implicit reward zero everywhere)."""
        return cls(name=name, model_path=str(model_path), reference_path=None, chat=chat)

    def implicit_rewards(self, prompts: Sequence[str], responses: Sequence[str], *,
                         batch_size: int = 16, device: str | None = None) -> np.ndarray:
        """``beta * (log pi(y|x) - log pi_ref(y|x))`` of each prompt-response pair.

        Parameters
        ----------
        prompts, responses : sequences of str
            Of equal length.
        batch_size : int
            Pairs per forward pass.
        device : str, optional
            Torch device (default: CUDA when available, else the CPU).

        Returns
        -------
        numpy.ndarray
            Shape ``(n,)``, float64; zeros for a base model.
        """
        if len(prompts) != len(responses):
            raise TrainError(f"implicit_rewards: {len(prompts)} prompts but "
                             f"{len(responses)} responses")
        if self.reference_path is None:
            return np.zeros(len(prompts))
        policy = sequence_logprobs(self.model_path, prompts, responses, chat=self.chat,
                                   batch_size=batch_size, device=device)
        reference = sequence_logprobs(self.reference_path, prompts, responses, chat=self.chat,
                                      batch_size=batch_size, device=device)
        return self.beta * (policy - reference)


def sequence_logprobs(model_path: str, prompts: Sequence[str], responses: Sequence[str], *,
                      chat: bool = False, batch_size: int = 16,
                      device: str | None = None) -> np.ndarray:
    """Sum of the log-probabilities of each response's tokens given its prompt.

    Parameters
    ----------
    model_path : str
        A causal LM folder or hub id, or a LoRA adapter folder.
    prompts, responses : sequences of str
    chat : bool
        Apply the tokenizer's chat template (user prompt, assistant response).
    batch_size : int
    device : str, optional

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, float64.
    """
    import torch

    model, tokenizer = load_model(model_path, device)
    rows = [_token_ids(tokenizer, p, r, chat) for p, r in zip(prompts, responses, strict=True)]
    limit = getattr(model.config, "max_position_embeddings", None) or 10**9
    out = np.empty(len(rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = [_truncate(p, r, limit) for p, r in rows[start:start + batch_size]]
            width = max(len(p) + len(r) for p, r in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            target = torch.zeros((len(batch), width), dtype=torch.bool)
            for i, (p, r) in enumerate(batch):
                ids[i, :len(p) + len(r)] = torch.tensor(p + r)
                mask[i, :len(p) + len(r)] = 1
                target[i, len(p):len(p) + len(r)] = True
            ids, mask, target = ids.to(model.device), mask.to(model.device), target.to(model.device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            out[start:start + len(batch)] = (logp * target[:, 1:]).sum(-1).cpu().numpy()
    return out


_MODELS: dict[tuple[str, str], Any] = {}


def load_model(model_path: str, device: str | None = None) -> tuple[Any, Any]:
    """Load (once per process) a causal LM or LoRA adapter and its tokenizer, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one bar per model load drowns the progress
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (str(model_path), device)
    if key not in _MODELS:
        folder = Path(model_path)
        if (folder / "adapter_config.json").is_file():
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(str(folder))
        else:
            model = AutoModelForCausalLM.from_pretrained(str(model_path))
        tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        if len(_MODELS) >= 4:  # keep memory bounded over a grid of runs
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = (model.to(device).eval(), tokenizer)
    return _MODELS[key]


def _token_ids(tokenizer: Any, prompt: str, response: str, chat: bool) -> tuple[list, list]:
    if chat:
        head = tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                             tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                              {"role": "assistant", "content": response}],
                                             tokenize=False)
        prompt, response, eos = head, full[len(head):], []
    else:
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"] + eos
    return p, r


def _truncate(p: list, r: list, limit: int) -> tuple[list, list]:
    if len(p) + len(r) <= limit:
        return p, r
    r = r[:limit - 1]
    return p[len(p) - (limit - len(r)):], r
