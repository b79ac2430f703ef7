"""Model names, the bundled models, the hub probe and loading (``load_model``, ``load_tokenizer``).

A model name is ``"tiny"`` (the random test model of :mod:`coursekit.tiny`), ``"nano"`` or
another model bundled under ``data/models/``, a preset name of :mod:`coursekit.presets` (its
hub id), a hub id, or a checkpoint directory. Used by Phase 1
(``notebooks/phase1_baseline.ipynb``) to load the model that is fine-tuned.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Literal

import torch
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, Qwen2ForCausalLM

from coursekit.errors import CoursekitError, ModelNotFoundError
from coursekit.presets import PRESETS, count_parameters
from coursekit.tiny import tiny_qwen2

DEFAULT_HUB_ID = "Qwen/Qwen2.5-Coder-0.5B-Instruct"


def cache_root() -> Path:
    """Return coursekit's cache directory (``$XDG_CACHE_HOME/coursekit`` or ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "coursekit"


def repo_root() -> Path:
    """Return the directory that holds the ``coursekit`` package and ``data/``."""
    return Path(__file__).resolve().parent.parent


NANO = "qwen2.5-coder-nano"
"""Directory name of the bundled default model under ``data/models/`` (alias ``nano``): the
pretrained model after its instruct stage, as Qwen2.5-Coder-0.5B-Instruct is."""
NANO_BASE = "qwen2.5-coder-nano-base"
"""The pretrained model before the instruct stage (alias ``nano-base``)."""
ALIASES: dict[str, str] = {"nano": NANO, "nano-instruct": NANO, "nano-base": NANO_BASE}
"""Short model names accepted by ``--model`` (``nano-instruct`` is another name of ``nano``)."""
DEFAULT_MODEL = "nano"
"""The model notebooks and the CLI use unless told otherwise."""


def models_root() -> Path:
    """Return ``data/models/``, where the bundled models live (one directory each)."""
    return repo_root() / "data" / "models"


def bundled_models() -> dict[str, Path]:
    """Map the name of each bundled model under ``data/models/`` to its directory."""
    root = models_root()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()}


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """Turn a model name into what ``from_pretrained`` takes: a directory or a hub id.

    ``"tiny"`` builds (once, in the cache) the random 2-layer model; ``"nano"`` and the name
    of a bundled model (a directory under ``data/models/``) and a preset name such as
    ``"qwen2.5-coder-0.5b"`` (its hub id) are translated; anything else is returned as is.

    Raises:
        CoursekitError: ``"nano"`` or ``"nano-base"`` while its directory is missing.
    """
    name = ALIASES.get(os.fspath(name_or_path), os.fspath(name_or_path))
    if name == "tiny":
        target = cache_root() / "models" / "tiny-qwen2-v1"
        if not (target / "model.safetensors").is_file():
            staging = Path(tempfile.mkdtemp(prefix="tiny-", dir=_ensure(target.parent)))
            tiny_qwen2(staging)
            _replace_dir(staging, target)
        return str(target)
    bundled = bundled_models()
    if name in bundled:
        return str(bundled[name])
    if name in (NANO, NANO_BASE):
        raise CoursekitError(
            f"the bundled model {models_root() / name} is missing; restore it "
            "with `git checkout -- data/models` or rebuild it with `coursekit nano build`"
        )
    if name in PRESETS:
        return PRESETS[name].hub_id
    return name


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _replace_dir(staging: Path, target: Path) -> None:
    """Move a fully written directory into place; a concurrent winner is kept."""
    try:
        os.rename(staging, target)
    except OSError:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)


def hub_reachable(host: str = "huggingface.co", timeout_s: float = 3.0) -> bool:
    """Return whether a TCP connection to the hub opens within ``timeout_s`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _not_found(name: str, error: OSError) -> ModelNotFoundError:
    if not hub_reachable():
        return ModelNotFoundError(
            f"model {name!r} is not a local directory nor in the Hugging Face cache, and the "
            f"hub is unreachable: on a machine with network run `hf download {name}` (e.g. "
            f"`hf download {DEFAULT_HUB_ID}`), or use a bundled model: --model tiny"
        )
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelNotFoundError(f"model {name!r} could not be loaded from the hub: {first_line}")


Quantization = Literal["nf4"] | None

LOAD_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    SafetensorError,
    StrictDataclassError,
)
"""What ``from_pretrained`` raises for a checkpoint it cannot read (a bad config value, a
weights file safetensors refuses): reported as one line naming the checkpoint."""


def _nf4_config(dtype: torch.dtype) -> Any:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.float32,
    quantization: Quantization = None,
    device: str | torch.device = "cpu",
) -> Qwen2ForCausalLM:
    """Load a causal LM through ``AutoModelForCausalLM.from_pretrained``.

    Args:
        name_or_path: ``"tiny"``, a bundled model's name, a preset name, a hub id
            (``"Qwen/Qwen2.5-Coder-0.5B-Instruct"``) or a local checkpoint directory.
        dtype: dtype of the weights (and the compute dtype of an NF4 base).
        quantization: ``None`` or ``"nf4"``: 4-bit NormalFloat with double quantization
            through bitsandbytes (QLoRA, arXiv 2305.14314 §3).
        device: where to put the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).

    Returns:
        The model in eval mode.

    Raises:
        ModelNotFoundError: not local, not cached and the hub is unreachable.
        CoursekitError: a directory that is not a complete checkpoint (``check_checkpoint``).
        ValueError: an unknown ``quantization``.

    Example:
        >>> model = load_model("tiny")  # doctest: +SKIP
    """
    if quantization not in (None, "nf4"):
        raise ValueError(f"load_model quantization must be None or 'nf4' (got {quantization!r})")
    source = resolve_model(name_or_path)
    kwargs: dict[str, Any] = {"dtype": dtype}
    if quantization == "nf4":
        kwargs["quantization_config"] = _nf4_config(dtype)
        kwargs["device_map"] = {"": str(device)}
    if Path(source).is_dir():
        check_checkpoint(source)
    else:
        kwargs["local_files_only"] = not hub_reachable()
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except LOAD_ERRORS as error:
        if Path(source).is_dir():
            raise CoursekitError(
                f"{source}: not a loadable checkpoint ({_one_line(error)}); re-save it with "
                "save_pretrained or download it again"
            ) from error
        if not isinstance(error, OSError):
            raise
        raise _not_found(source, error) from error
    if quantization is None:
        model.to(device)
    return model.eval()


def load_tokenizer(name_or_path: str | os.PathLike[str]) -> Any:
    """Load the tokenizer that goes with a model (see :func:`load_model` for the names).

    A checkpoint directory without tokenizer files gets the offline Qwen2.5 tokenizer.
    """
    from transformers import AutoTokenizer

    source = resolve_model(name_or_path)
    if Path(source).is_dir() and not (Path(source) / "tokenizer_config.json").is_file():
        from coursekit.tokenizer import QWEN25_SPECIAL_TOKENS, load_qwen25_tokenizer

        vocab = _config_vocab_size(Path(source))
        if vocab is not None and vocab <= max(QWEN25_SPECIAL_TOKENS.values()):
            raise CoursekitError(
                f"{source}: no tokenizer files, and its vocabulary ({vocab}) is smaller than "
                "Qwen2.5's, so Qwen2.5's tokenizer would not fit; copy the tokenizer files "
                "(tokenizer.json, tokenizer_config.json) of the model it was trained from into it"
            )
        return load_qwen25_tokenizer()
    local = Path(source).is_dir()
    try:
        return AutoTokenizer.from_pretrained(
            source, local_files_only=not local and not hub_reachable()
        )
    except OSError as error:
        raise _not_found(source, error) from error


def _config_vocab_size(directory: Path) -> int | None:
    """Return ``vocab_size`` from a checkpoint's config.json (None: absent or unreadable)."""
    try:
        return int(read_config(directory)["vocab_size"])
    except (CoursekitError, ValueError, KeyError, TypeError):
        return None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the parsed ``config.json`` of a checkpoint directory.

    Raises:
        CoursekitError: the file is missing, unreadable, not JSON, or not a JSON object;
            the message names the file.
    """
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CoursekitError(
            f"{directory}: no config.json, so not a transformers checkpoint; point --model at a "
            "directory written by save_pretrained (config.json + *.safetensors)"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CoursekitError(
            f"{path}: not a valid JSON model config ({_one_line(error)}); restore the file "
            "(download the model again or re-save it with save_pretrained)"
        ) from None
    if not isinstance(config, dict):
        raise CoursekitError(
            f"{path}: holds a JSON {type(config).__name__}, not an object of settings; restore "
            "the file (download the model again or re-save it with save_pretrained)"
        )
    return config


def check_checkpoint(directory: str | os.PathLike[str]) -> Path:
    """Check that a checkpoint directory's config and safetensors files are complete.

    Reads ``config.json`` (:func:`read_config`) and the header of every ``*.safetensors``
    file (not the weights), so a truncated download or an interrupted save is named before
    ``from_pretrained`` fails deep inside safetensors.

    Returns:
        ``directory`` as a Path.

    Raises:
        CoursekitError: the config is missing or broken, or a weights file is shorter or longer
            than its header says; the message names the file.
    """
    directory = Path(directory)
    read_config(directory)
    for weights in sorted(directory.glob("*.safetensors")):
        _check_safetensors(weights)
    return directory


def _check_safetensors(path: Path) -> None:
    """Raise CoursekitError unless ``path``'s size is what its safetensors header describes.

    The format is an 8-byte little-endian header length N, N bytes of JSON mapping each tensor
    to its ``data_offsets`` in the data that follows, then exactly that data.
    """
    size = path.stat().st_size
    fix = "download the model again or re-save it with save_pretrained"
    try:
        with path.open("rb") as handle:
            prefix = handle.read(8)
            length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
            if not 0 <= length <= size - 8:
                raise CoursekitError(f"{path}: truncated safetensors file ({size} bytes); {fix}")
            header = json.loads(handle.read(length))
        ends = [
            int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"
        ]
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        raise CoursekitError(
            f"{path}: corrupt safetensors header ({_one_line(error)}); {fix}"
        ) from None
    expected = 8 + length + max(ends, default=0)
    if size != expected:
        state = "truncated" if size < expected else "oversized"
        raise CoursekitError(
            f"{path}: {state} safetensors file ({size} bytes, its header describes "
            f"{expected}); {fix}"
        )


def model_summary(model: torch.nn.Module, tokenizer: Any = None) -> dict[str, Any]:
    """Return the architecture numbers of a loaded Qwen2 model (and its tokenizer's size).

    Example:
        >>> model_summary(load_model("tiny"))["num_hidden_layers"]  # doctest: +SKIP
        2
    """
    config = model.config
    summary: dict[str, Any] = {
        "model_type": config.model_type,
        "num_hidden_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.num_key_value_heads,
        "intermediate_size": config.intermediate_size,
        "vocab_size": config.vocab_size,
        "tie_word_embeddings": config.tie_word_embeddings,
        "total_parameters": count_parameters(model),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
    }
    if tokenizer is not None:
        summary["tokenizer_size"] = len(tokenizer)
    return summary
