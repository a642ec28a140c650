"""Policy log-probabilities on exactly the tokens TRL's DPOTrainer trains on.

TRL's own numbers come from its precomputed reference log-probabilities: ``DPOTrainer`` with
``precompute_ref_log_probs=True`` tokenises the pairs (``_prepare_dataset``), collates and cuts
them (``DataCollatorForPreference``) and sums its fused LM head's per-token log-probabilities
(``compute_ref_log_probs``) for every chosen and rejected response of the dataset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

from disagree.errors import TrainError  # noqa: E402
from disagree.evaluate.policy import (  # noqa: E402
    DEFAULT_BETA,
    DEFAULT_MAX_LENGTH,
    DEFAULT_TRUNCATION,
    Policy,
    dpo_token_ids,
    sequence_logprobs,
)
from disagree.train.tiny import build_tiny_model  # noqa: E402

#: A chat template of the kind instruction models have: role headers, an end-of-turn token.
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|endoftext|>"
            "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
#: A template that renders the prompt alone differently (a thinking block it drops later).
DRIFTING = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|><think></think>{% endif %}")

PAIRS = [
    {"prompt": "How do I fix a leaky tap?", "chosen": "Turn off the water and replace the washer.",
     "rejected": "Stop whining and call someone."},
    {"prompt": "My coworker ignores me.", "chosen": "That sounds hard; try a short direct chat.",
     "rejected": "Honestly, nobody cares."},
    {"prompt": "Is it OK to feel sad?", "chosen": "Yes, sadness is a normal feeling.",
     "rejected": "Grow a thicker skin."},
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny model with a chat template, and a perturbed copy of it (a 'trained' policy)."""
    root = tmp_path_factory.mktemp("policy-tokens")
    base = build_tiny_model(root / "base", seed=0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    assert tokenizer.chat_template is None  # the tiny model has none: the test gives it one
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(base)
    tuned = root / "tuned"
    shutil.copytree(base, tuned)
    model = AutoModelForCausalLM.from_pretrained(base)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    model.save_pretrained(tuned)
    return str(base), str(tuned)


def trl_logps(path, tmp_path, chat, **config):
    """TRL's per-sequence log-probabilities (chosen, then rejected) and its token ids."""
    rows = PAIRS
    if chat:
        rows = [{"prompt": [{"role": "user", "content": r["prompt"]}],
                 "chosen": [{"role": "assistant", "content": r["chosen"]}],
                 "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in PAIRS]
    args = DPOConfig(output_dir=str(tmp_path / "trl"), report_to=[], use_cpu=True, bf16=False,
                     precompute_ref_log_probs=True, precompute_ref_batch_size=2,
                     per_device_train_batch_size=2, **config)
    trainer = DPOTrainer(model=path, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=AutoTokenizer.from_pretrained(path))
    data = trainer.train_dataset
    logps = np.concatenate([data["ref_chosen_logps"], data["ref_rejected_logps"]])
    ids = [(p, c) for p, c in zip(data["prompt_ids"], data["chosen_ids"], strict=True)] + [
        (p, r) for p, r in zip(data["prompt_ids"], data["rejected_ids"], strict=True)]
    return logps, ids


def _texts():
    return ([r["prompt"] for r in PAIRS] * 2,
            [r["chosen"] for r in PAIRS] + [r["rejected"] for r in PAIRS])


@pytest.mark.parametrize("chat", [True, False])
def test_tokens_and_logprobs_are_trls(models, tmp_path, chat):
    path = models[0]
    logps, trl_ids = trl_logps(path, tmp_path, chat, max_length=None)
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompts, responses = _texts()
    ours = [dpo_token_ids(tokenizer, p, r, chat=chat) for p, r in zip(prompts, responses,
                                                                      strict=True)]
    assert ours == trl_ids  # the same tokens, to the id
    if chat:  # the template is around both, its end-of-turn token closes the response
        assert tokenizer.decode(ours[0][0]) == "<|user|>\nHow do I fix a leaky tap?" \
            "<|endoftext|><|assistant|>\n"
        assert tokenizer.decode(ours[0][1]) == "Turn off the water and replace the washer." \
            "<|endoftext|>"
    else:  # no BOS from this tokenizer; TRL appends the EOS to the response
        assert ours[0][1][-1] == tokenizer.eos_token_id and ours[0][0][0] != tokenizer.bos_token_id
    got = sequence_logprobs(path, prompts, responses, chat=chat, max_length=None, batch_size=4)
    assert np.all(got < -5.0)  # random weights: far from certain, so a real comparison
    np.testing.assert_allclose(got, logps, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chat, mode", [(True, "keep_start"), (False, "keep_start"),
                                        (False, "keep_end")])
def test_truncation_is_trls(models, tmp_path, chat, mode):
    path = models[0]
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompts, responses = _texts()
    ids = [dpo_token_ids(tokenizer, p, r, chat=chat) for p, r in zip(prompts, responses,
                                                                     strict=True)]
    max_length = max(len(p) for p, _ in ids) + 3  # every prompt fits; most responses are cut
    cut = np.array([len(p) + len(r) > max_length for p, r in ids])
    assert cut.sum() >= 3
    with pytest.warns(FutureWarning) if mode == "keep_end" else contextlib.nullcontext():
        logps, _ = trl_logps(path, tmp_path, chat, max_length=max_length, truncation_mode=mode)
    got = sequence_logprobs(path, prompts, responses, chat=chat, max_length=max_length,
                            truncation_mode=mode)
    np.testing.assert_allclose(got, logps, rtol=1e-5, atol=1e-5)
    whole = sequence_logprobs(path, prompts, responses, chat=chat, max_length=None)
    if mode == "keep_start":  # the cut responses lose their last tokens, the others none
        assert np.all(got[cut] > whole[cut] + 1.0) and np.all(got[~cut] == whole[~cut])
    # TRL drops a pair whose prompt fills max_length (keep_start); the policy refuses it
    longest = int(np.argmax([len(p) for p, _ in ids]))
    size = len(ids[longest][0])
    if mode == "keep_start":
        with pytest.raises(TrainError, match=re.escape(
                f"row {longest}: the prompt has {size} tokens, max_length {size} leaves none of "
                "the response (TRL drops such pairs)")):
            sequence_logprobs(path, prompts, responses, chat=chat, max_length=size)


def test_implicit_rewards_are_beta_times_trls_log_ratio(models, tmp_path):
    base, tuned = models
    ref, _ = trl_logps(base, tmp_path / "ref", True, max_length=None)
    pol, _ = trl_logps(tuned, tmp_path / "pol", True, max_length=None)
    policy = Policy("tuned", tuned, base, beta=0.3, chat=True, max_length=None)
    got = policy.implicit_rewards(*_texts(), batch_size=4)
    assert np.abs(pol - ref).min() > 1e-3  # the perturbation moved every sequence
    np.testing.assert_allclose(got, 0.3 * (pol - ref), rtol=1e-4, atol=1e-5)


def test_a_prompt_that_is_not_a_prefix_is_refused(models, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(models[0])
    # a trailing space merges with the response's first word: " " + "and" -> " and"
    with pytest.raises(TrainError, match=re.escape(
            "the prompt's 9 tokens are not a prefix of the prompt + response's tokens: from "
            "token 8 the prompt has ' ', the full sequence ' and'; TRL trains such a pair on a "
            "shorter prompt, so this log-probability would not be the trained one. End the "
            "prompt on a token boundary")):
        dpo_token_ids(tokenizer, "a long prompt ", "and a response")
    with pytest.raises(TrainError, match=r"^row 1: the prompt's 9 tokens are not a prefix"):
        sequence_logprobs(models[0], ["Hi?", "a long prompt "], ["Yes.", "and a response"])
    tokenizer.chat_template = DRIFTING
    with pytest.raises(TrainError, match=r"from token \d+ the prompt has '<think></think>', .*"
                                         r"Use a chat template that renders the prompt alone"):
        dpo_token_ids(tokenizer, "Hi?", "Yes.", chat=True)


def test_policy_from_run_reads_trls_settings(tmp_path):
    defaults = {f.name: f.default for f in dataclasses.fields(DPOConfig)}
    assert (DEFAULT_BETA, DEFAULT_MAX_LENGTH, DEFAULT_TRUNCATION) == (
        defaults["beta"], defaults["max_length"], defaults["truncation_mode"])
    assert {f.name for f in dataclasses.fields(Policy)} >= {"max_length", "truncation_mode"}
    (tmp_path / "model").mkdir()

    def record(method, training):
        (tmp_path / "run.json").write_text(json.dumps({
            "status": "complete", "base_model": "base",
            "config": {"method": method, "chat": True, "training": training}}))
        return Policy.from_run(tmp_path)

    policy = record("dpo-soft", {"beta": 0.2, "max_length": 64})
    assert (policy.beta, policy.chat, policy.max_length, policy.truncation_mode) == (
        0.2, True, 64, "keep_start")
    assert record("dpo", {"max_length": None}).max_length is None
    assert record("dpo", {}).max_length == DEFAULT_MAX_LENGTH
    assert record("grpo", {"max_length": 64}).max_length is None

