"""A trained policy and its implicit reward: ``beta * (log pi(y|x) - log pi_ref(y|x))``.

DPO trains a policy ``pi`` whose preference between two responses to a prompt is the sign of the
difference of their implicit rewards; the rewards need no generation, only two forward passes
(policy and reference) over each prompt-response pair. :class:`Policy` finds the policy, its
reference model, ``beta`` and the chat setting in a run folder of :func:`disagree.train.train`
(``run.json``; the tiny base model is in ``base-model/``, a LoRA adapter's base is loaded
under it), or stands for an un-tuned base model (its implicit reward is zero everywhere: no
preference). The log-probabilities are summed over the response's tokens given the prompt,
on exactly the tokens TRL's ``DPOTrainer`` (the pinned ``trl~=1.16.0``) trains on:

* plain text: the prompt, and the prompt followed by the response and the end-of-sequence
  token, each tokenised with the tokenizer's own special tokens (a BOS where it adds one);
* ``chat``: the prompt as a user message with the generation prompt, and the prompt plus the
  response as an assistant message, each through the tokenizer's chat template;
* the response's tokens are those of the full sequence after the prompt's; the prompt's tokens
  must be a prefix of the full sequence (else :class:`~disagree.errors.TrainError`: TRL would
  train that pair on a shorter prompt);
* DPOConfig's ``max_length`` and ``truncation_mode`` of the run cut the sequence as TRL's
  collator does (``keep_start``: its first ``max_length`` tokens).

tests/test_policy_tokens.py checks the sums against TRL's own log-probabilities (its
tokenisation, collator and fused LM head) on a tiny model with a chat template.

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
#: TRL DPOConfig's defaults of ``max_length`` and ``truncation_mode``.
DEFAULT_MAX_LENGTH, DEFAULT_TRUNCATION = 1024, "keep_start"


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
    max_length : int or None
        Tokens kept of each prompt + response (TRL DPOConfig's ``max_length``); ``None`` keeps
        all.
    truncation_mode : {"keep_start", "keep_end"}
        Which end :attr:`max_length` keeps (DPOConfig's ``truncation_mode``).
    """

    name: str
    model_path: str
    reference_path: str | None
    beta: float = DEFAULT_BETA
    chat: bool = False
    max_length: int | None = DEFAULT_MAX_LENGTH
    truncation_mode: str = DEFAULT_TRUNCATION

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
        training = config.get("training", {})
        beta = training.get("beta")
        max_length = training.get("max_length", DEFAULT_MAX_LENGTH)
        if config.get("method") == "grpo":
            beta = beta if beta else 1.0
            max_length = None  # GRPOConfig has no max_length over prompt + completion
        base = str(record["base_model"])
        if config.get("model") not in (None, "tiny") and not Path(base).exists():
            from disagree.train.models import resolve_model

            base = resolve_model(config["model"])  # a de-quantised GGUF: made again, same path
        return cls(name=name or run_dir.name, model_path=str(run_dir / "model"),
                   reference_path=base,
                   beta=float(DEFAULT_BETA if beta is None else beta),
                   chat=bool(config.get("chat", False)), max_length=max_length,
                   truncation_mode=training.get("truncation_mode", DEFAULT_TRUNCATION))

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
        options = {"chat": self.chat, "batch_size": batch_size, "device": device,
                   "max_length": self.max_length, "truncation_mode": self.truncation_mode}
        policy = sequence_logprobs(self.model_path, prompts, responses, **options)
        reference = sequence_logprobs(self.reference_path, prompts, responses, **options)
        return self.beta * (policy - reference)


def sequence_logprobs(model_path: str, prompts: Sequence[str], responses: Sequence[str], *,
                      chat: bool = False, batch_size: int = 16, device: str | None = None,
                      max_length: int | None = DEFAULT_MAX_LENGTH,
                      truncation_mode: str = DEFAULT_TRUNCATION) -> np.ndarray:
    """Sum of the log-probabilities of each response's tokens given its prompt, as TRL's DPO.

    The tokens are those of :func:`dpo_token_ids`, cut as TRL's preference collator cuts them.

    Parameters
    ----------
    model_path : str
        A causal LM folder or hub id, or a LoRA adapter folder.
    prompts, responses : sequences of str
    chat : bool
        Apply the tokenizer's chat template (user prompt, assistant response).
    batch_size : int
    device : str, optional
    max_length : int or None
        Tokens kept of each prompt + response (DPOConfig's ``max_length``); ``None``: all.
    truncation_mode : {"keep_start", "keep_end"}
        DPOConfig's ``truncation_mode``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, float64.

    Raises
    ------
    TrainError
        A prompt whose tokens are not a prefix of its prompt + response (see
        :func:`dpo_token_ids`), a prompt of ``max_length`` tokens or more under ``keep_start``
        (TRL drops such pairs: no response token is left), or an unknown truncation mode.
    """
    import torch

    if truncation_mode not in ("keep_start", "keep_end"):
        raise TrainError(f"truncation_mode: expected 'keep_start' or 'keep_end', got "
                         f"{truncation_mode!r}")
    model, tokenizer = load_model(model_path, device)
    rows = []
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        try:
            head, tail = dpo_token_ids(tokenizer, prompt, response, chat=chat)
        except TrainError as err:
            raise TrainError(f"row {i}: {err}") from None
        rows.append(_truncate(head, tail, max_length, truncation_mode, i))
    out = np.empty(len(rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            target = torch.zeros((len(batch), width), dtype=torch.bool)
            for i, (row, completion) in enumerate(batch):  # right padding, as TRL's collator
                ids[i, :len(row)] = torch.tensor(row)
                mask[i, :len(row)] = 1
                target[i, :len(row)] = torch.tensor(completion, dtype=torch.bool)
            ids, mask, target = ids.to(model.device), mask.to(model.device), target.to(model.device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
            out[start:start + len(batch)] = (logp * target[:, 1:]).sum(-1).cpu().numpy()
    return out


def dpo_token_ids(tokenizer: Any, prompt: str, response: str, *,
                  chat: bool = False) -> tuple[list[int], list[int]]:
    """Return the prompt's and the response's token ids as TRL's ``DPOTrainer`` makes them.

    As ``DPOTrainer._prepare_dataset`` of trl 1.16: a plain-text response gets the EOS token
    (unless it ends with it) and the prompt and the prompt + response are tokenised with the
    tokenizer's special tokens; under ``chat`` the prompt is a user message rendered with the
    generation prompt and the full sequence adds the response as an assistant message, both
    through the tokenizer's chat template. The response's tokens are the full sequence's after
    the prompt's.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
    prompt, response : str
    chat : bool
        Apply the chat template (as TRL does for conversational examples).

    Returns
    -------
    prompt_ids, response_ids : list of int

    Raises
    ------
    TrainError
        When the prompt's tokens are not a prefix of the full sequence's (tokens merged across
        the boundary, or a chat template that renders the prompt differently alone).
    """
    if chat:
        messages = [{"role": "user", "content": prompt}]
        head = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                             add_generation_prompt=True)["input_ids"]
        full = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": response}], tokenize=True,
            return_dict=True)["input_ids"]
    else:
        eos = tokenizer.eos_token
        if eos is not None and not response.endswith(eos):
            response = response + eos
        head = tokenizer(text=prompt)["input_ids"]
        full = tokenizer(text=prompt + response)["input_ids"]
    head, full = list(head), list(full)
    if full[:len(head)] != head:
        same = 0
        while same < min(len(head), len(full)) and head[same] == full[same]:
            same += 1
        raise TrainError(
            f"the prompt's {len(head)} tokens are not a prefix of the prompt + response's "
            f"tokens: from token {same} the prompt has {tokenizer.decode(head[same:])!r}, the "
            f"full sequence {tokenizer.decode(full[same:len(head)])!r}; TRL trains such a pair "
            "on a shorter prompt, so this log-probability would not be the trained one. "
            + ("Use a chat template that renders the prompt alone as it renders it before a "
               "response" if chat else "End the prompt on a token boundary (e.g. with a "
               "punctuation mark, without a trailing space)"))
    return head, full[len(head):]


_MODELS: dict[tuple[str, str], Any] = {}


def load_model(model_path: str, device: str | None = None) -> tuple[Any, Any]:
    """Load (once per process) a causal LM or LoRA adapter and its tokenizer, in eval mode.

    ``model_path`` is any model spec of :func:`disagree.train.models.load_causal_lm` (a
    folder, a LoRA adapter folder, a hub id, ``smollm2-135m-instruct`` or a ``.gguf`` file).
    """
    import torch
    from transformers.utils import logging as transformers_logging

    from disagree.train.models import load_causal_lm

    transformers_logging.disable_progress_bar()  # one bar per model load drowns the progress
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (str(model_path), device)
    if key not in _MODELS:
        if len(_MODELS) >= 4:  # keep memory bounded over a grid of runs
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = load_causal_lm(str(model_path), device)
    return _MODELS[key]


def _truncate(head: list[int], tail: list[int], max_length: int | None, mode: str,
              row: int) -> tuple[list[int], list[int]]:
    """Return the sequence and its completion mask, cut as TRL's preference collator does."""
    ids, completion = head + tail, [0] * len(head) + [1] * len(tail)
    if max_length is None:
        return ids, completion
    if mode == "keep_start":
        if len(head) >= max_length:
            raise TrainError(f"row {row}: the prompt has {len(head)} tokens, max_length "
                             f"{max_length} leaves none of the response (TRL drops such pairs)")
        return ids[:max_length], completion[:max_length]
    return ids[-max_length:], completion[-max_length:]
