"""Seeded completions of a policy, for the judges that score generated text.

:func:`generate` samples ``n`` completions per prompt from a :class:`Policy`'s model (a LoRA
adapter is loaded over its base), with the settings of a :class:`GenerationSettings`; the same
seed and settings give the same completions on the same device and library versions.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from disagree.evaluate.policy import Policy, load_model


class GenerationSettings(BaseModel):
    """How completions are sampled (fields as in ``transformers``' ``generate``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(4, ge=1, description="completions per prompt")
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int = 0
    batch_size: int = Field(8, ge=1, description="prompts per generate call")


def generate(policy: Policy, prompts: Sequence[str],
             settings: GenerationSettings | None = None) -> list[list[str]]:
    """Sample ``settings.n`` completions of each prompt.

    Parameters
    ----------
    policy : Policy
        The model to sample from (``policy.model_path``).
    prompts : sequence of str
    settings : GenerationSettings, optional

    Returns
    -------
    list of list of str
        Per prompt, its completions (the prompt itself not included).
    """
    import torch

    settings = settings or GenerationSettings()
    model, tokenizer = load_model(policy.model_path)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    tokenizer.padding_side = "left"
    texts = [_prompt_text(tokenizer, p, policy.chat) for p in prompts]
    torch.manual_seed(settings.seed)
    out: list[list[str]] = []
    for start in range(0, len(texts), settings.batch_size):
        batch = tokenizer(texts[start:start + settings.batch_size], return_tensors="pt",
                          padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            ids = model.generate(**batch, do_sample=True, temperature=settings.temperature,
                                 top_p=settings.top_p, max_new_tokens=settings.max_new_tokens,
                                 num_return_sequences=settings.n, pad_token_id=pad)
        new = ids[:, batch["input_ids"].shape[1]:]
        decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
        out.extend(decoded[i:i + settings.n] for i in range(0, len(decoded), settings.n))
    return out


def _prompt_text(tokenizer: object, prompt: str, chat: bool) -> str:
    if not chat:
        return prompt
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}],  # type: ignore[attr-defined]
                                         tokenize=False, add_generation_prompt=True)
