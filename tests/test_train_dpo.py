"""Weighted and soft DPO: loss identities against TRL and a hand computation."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

from disagree.errors import TrainError  # noqa: E402
from disagree.train.dpo import (  # noqa: E402
    WeightedDPOTrainer,
    importance_dpo_loss,
    soft_dpo_loss,
)
from disagree.train.tiny import build_tiny_model  # noqa: E402

PAIRS = [
    {"prompt": "How do I fix a leaky tap?", "chosen": " Turn off the water and replace the washer.",
     "rejected": " Stop whining and call someone."},
    {"prompt": "My coworker ignores me.", "chosen": " That sounds hard; try a short direct chat.",
     "rejected": " Honestly, nobody cares."},
    {"prompt": "Is it OK to feel sad?", "chosen": " Yes, sadness is a normal feeling.",
     "rejected": " Grow a thicker skin."},
    {"prompt": "How to start running?", "chosen": " Begin with short easy runs three times a week.",
     "rejected": " No idea, figure it out."},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)
    return path, AutoTokenizer.from_pretrained(path)


def _trainer(cls, path, tokenizer, tmp_path, weights, **kw):
    rows = [dict(p, weight=w) for p, w in zip(PAIRS, weights, strict=True)]
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to=[],
                     beta=0.3, use_cpu=True, seed=0, **kw.pop("config", {}))
    model = AutoModelForCausalLM.from_pretrained(path)
    ref = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():  # a policy that differs from the reference, so that delta != 0
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return cls(model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
               processing_class=tokenizer, **kw)


def _loss(trainer):
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    return trainer.compute_loss(trainer.model, trainer._prepare_inputs(batch))


def test_hand_computed_losses():
    delta = torch.tensor([2.0, -1.0, 0.5])
    w = torch.tensor([0.9, 0.25, 1.0])
    beta = 0.5

    def log_sig(x):
        return -math.log1p(math.exp(-x))

    soft = -sum(wi * log_sig(beta * d) + (1 - wi) * log_sig(-beta * d)
                for d, wi in zip([2.0, -1.0, 0.5], [0.9, 0.25, 1.0], strict=True)) / 3
    imp = -sum(wi * log_sig(beta * d) for d, wi in zip([2.0, -1.0, 0.5], [0.9, 0.25, 1.0],
                                                        strict=True)) / (0.9 + 0.25 + 1.0)
    assert soft_dpo_loss(delta, w, beta).item() == pytest.approx(soft, rel=1e-6)
    assert importance_dpo_loss(delta, w, beta).item() == pytest.approx(imp, rel=1e-6)
    # By hand: beta*delta = (1, -0.5, 0.25); -log sigmoid = (0.31326, 0.97408, 0.57594) and at
    # minus those (1.31326, 0.47408, 0.82594). soft = (0.9*0.31326 + 0.1*1.31326
    # + 0.25*0.97408 + 0.75*0.47408 + 0.57594) / 3; importance = (0.9*0.31326 + 0.25*0.97408
    # + 0.57594) / 2.15.
    assert soft == pytest.approx(0.529426, abs=1e-6)
    assert imp == pytest.approx(0.512276, abs=1e-6)
    # The soft loss is minimal where sigmoid(beta delta) equals the weight.
    d = torch.linspace(-10, 10, 20001)
    best = d[torch.argmin(torch.stack([soft_dpo_loss(x[None], torch.tensor([0.8]), 1.0)
                                       for x in d]))]
    assert best.item() == pytest.approx(math.log(0.8 / 0.2), abs=1e-3)
    assert importance_dpo_loss(delta, torch.zeros(3), beta).item() == 0.0


@pytest.mark.parametrize("mode", ["soft", "importance"])
@pytest.mark.parametrize("precompute", [False, True])
def test_unit_weights_equal_trl_sigmoid_loss(tiny, tmp_path, mode, precompute):
    path, tok = tiny
    config = {"precompute_ref_log_probs": precompute}
    plain = _loss(_trainer(DPOTrainer, path, tok, tmp_path / "a", [1.0] * 4, config=config))
    weighted = _loss(_trainer(WeightedDPOTrainer, path, tok, tmp_path / "b", [1.0] * 4,
                              weight_mode=mode, config=config))
    assert plain.item() > 0.0
    torch.testing.assert_close(weighted, plain, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["soft", "importance"])
def test_weighted_trainer_matches_the_formula_on_a_batch(tiny, tmp_path, mode):
    path, tok = tiny
    weights = [0.9, 0.6, 0.3, 1.0]
    trainer = _trainer(WeightedDPOTrainer, path, tok, tmp_path, weights, weight_mode=mode)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    # delta recomputed independently of TRL's fused head: full logits, log-softmax, gather.
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)

    def seq_logps(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        lp = torch.log_softmax(logits[:, :-1].float(), -1)
        lab = labels[:, 1:]
        tok_lp = lp.gather(-1, lab.clamp(min=0)[..., None])[..., 0] * (lab != -100)
        return tok_lp.sum(1)

    with torch.no_grad():
        pol, ref = seq_logps(trainer.model), seq_logps(trainer.ref_model)
    delta = (pol[:4] - ref[:4]) - (pol[4:] - ref[4:])
    assert sorted(batch["weight"].tolist()) == pytest.approx(sorted(weights))  # shuffled batch
    loss = soft_dpo_loss if mode == "soft" else importance_dpo_loss
    expected = loss(delta, batch["weight"], 0.3)
    trainer.model.train()
    got = trainer.compute_loss(trainer.model, batch)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_weighted_modes_reject_undefined_loss_variants(tiny, tmp_path):
    path, tok = tiny
    with pytest.raises(TrainError, match=r"loss_type=\['hinge'\] is not supported by the weighted"):
        _trainer(WeightedDPOTrainer, path, tok, tmp_path, [1.0] * 4, weight_mode="soft",
                 config={"loss_type": "hinge"})
    with pytest.raises(TrainError, match="weight_mode must be one of"):
        WeightedDPOTrainer(model=None, weight_mode="hard")


def test_loss_weights_other_than_one_are_refused_before_a_model_loads(tiny, tmp_path):
    path, tok = tiny
    # Why: TRL adds loss_weights[0] times its sigmoid term, which the weighted loss replaces once.
    plain = _loss(_trainer(DPOTrainer, path, tok, tmp_path / "a", [1.0] * 4))
    doubled = _loss(_trainer(DPOTrainer, path, tok, tmp_path / "b", [1.0] * 4,
                             config={"loss_weights": [2.0]}))
    torch.testing.assert_close(doubled, 2 * plain, rtol=1e-6, atol=1e-7)
    message = ("loss_weights=[2.0] is not supported by the weighted DPO modes (expected None "
               "or [1.0]); use method 'dpo' (plain TRL DPO) for it")
    args = DPOConfig(output_dir=str(tmp_path / "c"), report_to=[], use_cpu=True,
                     loss_weights=[2.0])
    with pytest.raises(TrainError) as by_keyword:  # no such model: the check comes first
        WeightedDPOTrainer(model="no/such/model", args=args, weight_mode="soft")
    with pytest.raises(TrainError) as by_position:
        WeightedDPOTrainer("no/such/model", None, args, weight_mode="importance")
    assert str(by_keyword.value) == str(by_position.value) == message
    one = _loss(_trainer(WeightedDPOTrainer, path, tok, tmp_path / "d", [1.0] * 4,
                         weight_mode="soft", config={"loss_weights": [1]}))
    torch.testing.assert_close(one, plain, rtol=1e-6, atol=1e-7)


def test_lora_reference_by_adapter_switching_and_gradient_accumulation(tiny, tmp_path):
    """With PEFT the reference is the same module with the adapter off: the hook sees both."""
    from peft import LoraConfig

    path, tok = tiny
    weights = [0.9, 0.6, 0.3, 1.0]
    rows = [dict(p, weight=w) for p, w in zip(PAIRS, weights, strict=True)]
    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, report_to=[],
                     beta=0.3, use_cpu=True, bf16=False, gradient_checkpointing=False,
                     gradient_accumulation_steps=2, max_steps=3, learning_rate=1e-2,
                     logging_steps=1, save_strategy="no", seed=0, disable_tqdm=True)
    trainer = WeightedDPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(path), args=args,
        train_dataset=Dataset.from_list(rows), processing_class=tok, weight_mode="importance",
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    assert trainer.ref_model is None
    trainer.train()  # three optimizer steps of two micro-batches each
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 3 and logged[-1]["rewards/margins"] != 0.0
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)[:, 1:]

    def seq_logps(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        lp = torch.log_softmax(logits[:, :-1].float(), -1)
        return (lp.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * (labels != -100)).sum(1)

    with torch.no_grad():
        pol = seq_logps(trainer.model)
        with trainer.model.disable_adapter():
            ref = seq_logps(trainer.model)
    delta = (pol[:2] - ref[:2]) - (pol[2:] - ref[2:])
    assert delta.abs().max() > 1e-4  # the adapter has moved the policy away from the reference
    trainer.model.train()
    got = trainer.compute_loss(trainer.model, batch)
    torch.testing.assert_close(got, importance_dpo_loss(delta, batch["weight"], 0.3),
                               rtol=1e-4, atol=1e-5)
