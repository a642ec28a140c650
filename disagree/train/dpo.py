"""DPO that uses the pairs' ``weight``: soft targets and importance weights, on TRL's DPOTrainer.

A pair's ``weight`` is the probability that ``chosen`` is better than ``rejected`` for the unit
(see :mod:`disagree.pairs`). With ``delta`` the usual DPO margin (policy-vs-reference log-ratio
of ``chosen`` minus that of ``rejected``) and ``beta`` TRL's temperature:

``soft``
    the target probability that chosen beats rejected is the weight (a cross-entropy against a
    soft label): ``-w log sigmoid(beta delta) - (1 - w) log sigmoid(-beta delta)``, averaged over
    the batch. Its minimum is at ``sigmoid(beta delta) = w``: a pair the raters split on 60/40
    pulls the margin to a small positive value instead of to infinity.
``importance``
    each pair's usual sigmoid loss times its weight, normalised by the batch's weight sum:
    ``sum_i w_i l_i / sum_i w_i``.

With every weight 1 both are TRL's ``sigmoid`` loss. :class:`WeightedDPOTrainer` changes nothing
else: TRL does the tokenisation, the policy and reference forward passes (reference model, PEFT
adapter switching or precomputed reference log-probabilities), bf16, gradient accumulation and
the logged metrics. The trainer records the output of those two forward passes with a forward
hook, sums the per-token log-probabilities exactly as TRL does, and swaps TRL's sigmoid term for
the weighted one; anything else TRL adds to the loss (a mixture-of-experts auxiliary loss) stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from disagree.errors import TrainError

#: Weighting modes of :class:`WeightedDPOTrainer`.
MODES = ("soft", "importance")


def soft_dpo_loss(delta: torch.Tensor, weight: torch.Tensor, beta: float) -> torch.Tensor:
    """Soft-target DPO loss: cross-entropy of ``sigmoid(beta * delta)`` against ``weight``.

    Parameters
    ----------
    delta : torch.Tensor
        Per-pair margins, shape ``(n,)``: ``(log pi(c) - log ref(c)) - (log pi(r) - log ref(r))``.
    weight : torch.Tensor
        Per-pair target probability that ``chosen`` is better, in [0, 1].
    beta : float
        DPO temperature.

    Returns
    -------
    torch.Tensor
        Scalar, the batch mean of ``-w log sigmoid(beta delta) - (1 - w) log sigmoid(-beta delta)``.
    """
    z = beta * delta
    return -(weight * F.logsigmoid(z) + (1.0 - weight) * F.logsigmoid(-z)).mean()


def importance_dpo_loss(delta: torch.Tensor, weight: torch.Tensor, beta: float) -> torch.Tensor:
    """Importance-weighted DPO loss: ``sum_i w_i (-log sigmoid(beta delta_i)) / sum_i w_i``.

    Parameters
    ----------
    delta, weight, beta
        As in :func:`soft_dpo_loss`.

    Returns
    -------
    torch.Tensor
        Scalar; 0 for a batch whose weights are all 0.
    """
    per_pair = -F.logsigmoid(beta * delta)
    return (weight * per_pair).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)


_LOSSES = {"soft": soft_dpo_loss, "importance": importance_dpo_loss}


class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator plus a float ``weight`` tensor (one value per pair)."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: D102
        batch = super().torch_call(examples)
        batch["weight"] = torch.tensor([float(e["weight"]) for e in examples], dtype=torch.float32)
        return batch


class WeightedDPOTrainer(DPOTrainer):
    """TRL's DPOTrainer with the pairs' ``weight`` column as soft targets or importance weights.

    Parameters
    ----------
    *args, **kwargs
        As for :class:`trl.DPOTrainer` (pass ``args`` by keyword); the datasets must have a
        ``weight`` column in [0, 1].
    weight_mode : {"soft", "importance"}
        How the weights enter the loss (see the module docstring).

    Notes
    -----
    Both modes are defined for TRL's ``sigmoid`` loss (with ``loss_weights`` absent or ``[1.0]``)
    with the reverse-KL divergence and without length discounting (``ld_alpha``) or WPO
    weighting; other settings raise
    :class:`~disagree.errors.TrainError` naming the argument (use plain DPO for them). The logged
    metrics are TRL's, plus ``weight`` (the batch's mean weight).
    """

    def __init__(self, *args: Any, weight_mode: str = "soft", **kwargs: Any) -> None:
        if weight_mode not in MODES:
            raise TrainError(f"weight_mode must be one of {list(MODES)}, got {weight_mode!r}")
        given = kwargs.get("args", args[2] if len(args) > 2 else None)  # (model, ref_model, args)
        if given is not None:  # before TRL loads a model
            check_weighted_args(given)
        self.weight_mode = weight_mode
        super().__init__(*args, **kwargs)
        default = self.data_collator
        if type(default) is DataCollatorForPreference:  # TRL's default: add the weight
            self.data_collator = WeightedPreferenceCollator(**dataclasses.asdict(default))

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if "weight" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "weight"]

    def compute_ref_log_probs(self, model, inputs):  # noqa: D102 (TRL's, without the weight)
        return super().compute_ref_log_probs(model, _without_weight(inputs))

    def _compute_loss(self, model, inputs, return_outputs):
        weight = inputs["weight"]
        inputs = _without_weight(inputs)
        policy = self.accelerator.unwrap_model(model)
        with _record_outputs(policy, self.ref_model) as outputs:
            result = super()._compute_loss(model, inputs, return_outputs)
        trl_loss = result[0] if return_outputs else result
        seq_len = inputs["completion_mask"].size(1) - 1
        logps = outputs[0].log_probs[:, -seq_len:].sum(dim=1)
        chosen, rejected = logps.chunk(2, dim=0)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = outputs[1].log_probs[:, -seq_len:].sum(dim=1).chunk(2, dim=0)
        delta = (chosen - ref_chosen) - (rejected - ref_rejected)
        weight = weight.to(delta.dtype)
        sigmoid_term = -F.logsigmoid(self.beta * delta).mean()  # what TRL added for "sigmoid"
        loss = trl_loss - sigmoid_term + _LOSSES[self.weight_mode](delta, weight, self.beta)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["weight"].append(self.accelerator.gather(weight).mean().item())
        return (loss, result[1]) if return_outputs else loss


def check_weighted_args(args: DPOConfig) -> None:
    """Raise :class:`TrainError` when a DPOConfig has options the weighted modes do not define.

    Parameters
    ----------
    args : trl.DPOConfig
        The training arguments.

    Raises
    ------
    TrainError
        Naming the field, the value given and the value accepted: ``loss_type`` other than
        ``sigmoid``, ``f_divergence_type`` other than ``reverse_kl``, ``ld_alpha`` set,
        ``use_weighting`` on, or ``loss_weights`` other than absent or ``[1.0]``.
    """
    loss_type = args.loss_type if isinstance(args.loss_type, list) else [args.loss_type]
    bad = {
        "loss_type": (loss_type != ["sigmoid"], loss_type, "['sigmoid']"),
        "f_divergence_type": (str(getattr(args.f_divergence_type, "value", args.f_divergence_type))
                              != "reverse_kl", args.f_divergence_type, "'reverse_kl'"),
        "ld_alpha": (args.ld_alpha is not None, args.ld_alpha, "None"),
        "use_weighting": (bool(args.use_weighting), args.use_weighting, "False"),
        # TRL adds loss_weights[0] times the sigmoid term; the weighted loss replaces it once
        "loss_weights": (args.loss_weights not in (None, [1.0]), args.loss_weights,
                         "None or [1.0]"),
    }
    for name, (is_bad, value, expected) in bad.items():
        if is_bad:
            raise TrainError(
                f"{name}={value!r} is not supported by the weighted DPO modes "
                f"(expected {expected}); use method 'dpo' (plain TRL DPO) for it"
            )


def _without_weight(inputs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inputs.items() if k != "weight"}


@contextlib.contextmanager
def _record_outputs(*modules: torch.nn.Module | None) -> Iterator[list[Any]]:
    """Collect the outputs of every forward call of ``modules``, in call order."""
    outputs: list[Any] = []
    seen: set[int] = set()
    handles = []
    for module in modules:
        if module is not None and id(module) not in seen:
            seen.add(id(module))
            handles.append(module.register_forward_hook(lambda _m, _i, out: outputs.append(out)))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
