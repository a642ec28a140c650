"""A tiny causal language model and a tokenizer trained on the bundled texts.

Tests, the demo and CPU runs need a model that is built, not downloaded: :func:`build_tiny_model`
trains a byte-level BPE tokenizer on the prompts and responses of the bundled default survey
(or any texts given), builds a small Llama-architecture causal LM from a config with random
weights, and saves both with ``save_pretrained`` so that TRL and transformers load it from a
local path exactly as they would load a hub model. Same seed and texts, same weights.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from disagree.errors import TrainError

#: Architecture of the tiny model (a Llama config; about 0.2 M parameters with its 1,024 tokens).
TINY_DEFAULTS = {
    "vocab_size": 1024,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}

#: TRL settings of a tiny DPO run on the CPU (used by ``disagree demo`` and configs/tiny-dpo.yaml).
TINY_TRAINING = {
    "max_steps": 40, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 32,
    "learning_rate": 1.0e-3, "lr_scheduler_type": "constant", "beta": 0.1, "logging_steps": 10,
    "save_steps": 20, "bf16": False, "gradient_checkpointing": False,
}

EOS = "<|endoftext|>"


def default_texts() -> list[str]:
    """Prompts and responses of the bundled default survey, the tokenizer's training texts."""
    from disagree.data.simulate import load_default_survey

    items = load_default_survey().items
    return sorted(set(items["prompt"])) + list(items["response"])


def train_tokenizer(texts: Sequence[str], vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer on ``texts``.

    Byte-level, so any text (including what a tiny model generates) can be encoded and decoded.
    ``<|endoftext|>`` is the beginning, end and padding token.

    Parameters
    ----------
    texts : sequence of str
        Training texts.
    vocab_size : int
        Size of the vocabulary, special token included.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS, model_max_length=512,
    )


def build_tiny_model(out_dir: str | os.PathLike[str], seed: int = 0,
                     texts: Sequence[str] | None = None, **sizes: int) -> Path:
    """Build and save a tiny causal LM and its tokenizer; return the folder.

    A folder that already holds a complete model (``config.json``, weights and tokenizer) is
    reused as it is, so a resumed run keeps its base model.

    Parameters
    ----------
    out_dir : path
        Folder to write (``save_pretrained`` of the model and the tokenizer).
    seed : int
        Seed of the weight initialisation.
    texts : sequence of str, optional
        Tokenizer training texts; default :func:`default_texts`.
    **sizes
        Overrides of :data:`TINY_DEFAULTS` (e.g. ``hidden_size=128``).

    Returns
    -------
    pathlib.Path
        ``out_dir``, loadable with ``AutoModelForCausalLM.from_pretrained``.
    """
    unknown = sorted(set(sizes) - set(TINY_DEFAULTS))
    if unknown:
        raise TrainError(f"tiny: unknown key(s) {unknown}; valid: {sorted(TINY_DEFAULTS)}")
    out = Path(out_dir)
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file() and (
        (out / "model.safetensors").is_file()
    ):
        return out
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    params = {**TINY_DEFAULTS, **sizes}
    tokenizer = train_tokenizer(texts if texts is not None else default_texts(),
                                params.pop("vocab_size"))
    config = LlamaConfig(
        vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True, **params,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out.exists():  # an incomplete earlier attempt
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out
