"""Qwen2.5-Coder presets, model loading and the tiny random test model.

Used by Phase 1 (``notebooks/phase1_baseline.ipynb``) to load the model that is fine-tuned,
and by Phase 2 to read the real architecture of each size.

Every preset is a :class:`transformers.Qwen2Config` whose numbers are copied from the
published ``config.json`` of ``Qwen/Qwen2.5-Coder-<size>-Instruct`` on the Hugging Face hub
(cited per preset). Qwen2 hard-codes a bias on the q/k/v projections (and none on o/gate/
up/down), so "q/k/v bias" is a property of the architecture, not of the config.

Shape legend: ``d`` hidden size, ``n_h`` attention heads, ``n_kv`` key/value heads,
``h_d = d / n_h`` head dimension, ``d_ff`` intermediate (SwiGLU) size, ``V`` vocabulary.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

from coursekit.errors import CoursekitError, ModelNotFoundError

HUB_PREFIX = "https://huggingface.co/Qwen/"
DEFAULT_HUB_ID = "Qwen/Qwen2.5-Coder-0.5B-Instruct"


@dataclass(frozen=True, kw_only=True)
class Preset:
    """The published architecture numbers of one Qwen2.5-Coder size."""

    hub_id: str
    """The instruct checkpoint the numbers come from (``<hub_id>/config.json``)."""
    hidden_size: int
    """d: width of the residual stream."""
    num_hidden_layers: int
    """Number of decoder layers."""
    num_attention_heads: int
    """n_h: query heads."""
    num_key_value_heads: int
    """n_kv: key/value heads (grouped-query attention shares each across n_h / n_kv queries)."""
    intermediate_size: int
    """d_ff: SwiGLU width of gate_proj and up_proj."""
    vocab_size: int
    """V: rows of the embedding matrix (padded beyond the tokenizer's 151,665 tokens)."""
    tie_word_embeddings: bool
    """Whether lm_head shares the embedding matrix (the small sizes do)."""
    rope_theta: float = 1_000_000.0
    """RoPE base frequency."""
    max_position_embeddings: int = 32768
    """Context length of the config (YaRN extends it at inference; not modelled here)."""
    rms_norm_eps: float = 1e-6
    """RMSNorm epsilon."""

    def source(self) -> str:
        """Return the URL of the ``config.json`` this preset copies."""
        return f"https://huggingface.co/{self.hub_id}/blob/main/config.json"


# Source of every row: https://huggingface.co/<hub_id>/blob/main/config.json (Qwen2.5-Coder
# release, Nov 2024). The 0.5B count (494,032,768 parameters) is checked in the tests.
PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "qwen2.5-coder-0.5b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            hidden_size=896,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            intermediate_size=4864,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
        "qwen2.5-coder-1.5b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            hidden_size=1536,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            intermediate_size=8960,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
        "qwen2.5-coder-3b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-3B-Instruct",
            hidden_size=2048,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            intermediate_size=11008,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
        "qwen2.5-coder-7b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-7B-Instruct",
            hidden_size=3584,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            intermediate_size=18944,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
        "qwen2.5-coder-14b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-14B-Instruct",
            hidden_size=5120,
            num_hidden_layers=48,
            num_attention_heads=40,
            num_key_value_heads=8,
            intermediate_size=13824,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
        "qwen2.5-coder-32b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-32B-Instruct",
            hidden_size=5120,
            num_hidden_layers=64,
            num_attention_heads=40,
            num_key_value_heads=8,
            intermediate_size=27648,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
    }
)

# Token ids of Qwen2.5-Coder-Instruct (its config.json / generation_config.json).
BOS_TOKEN_ID = 151643
EOS_TOKEN_ID = 151645


def qwen2_config(preset: Preset, **overrides: Any) -> Qwen2Config:
    """Build the :class:`~transformers.Qwen2Config` of a preset.

    Args:
        preset: one of :data:`PRESETS`' values.
        **overrides: fields to replace (for experiments, e.g. ``num_hidden_layers=2``).

    Returns:
        The config; ``head_dim = hidden_size / num_attention_heads``.

    Example:
        >>> qwen2_config(PRESETS["qwen2.5-coder-0.5b"]).num_key_value_heads
        2
    """
    fields: dict[str, Any] = {
        "hidden_size": preset.hidden_size,
        "num_hidden_layers": preset.num_hidden_layers,
        "num_attention_heads": preset.num_attention_heads,
        "num_key_value_heads": preset.num_key_value_heads,
        "intermediate_size": preset.intermediate_size,
        "vocab_size": preset.vocab_size,
        "tie_word_embeddings": preset.tie_word_embeddings,
        "max_position_embeddings": preset.max_position_embeddings,
        "rms_norm_eps": preset.rms_norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": preset.rope_theta},
        "hidden_act": "silu",
        "use_sliding_window": False,
        "bos_token_id": BOS_TOKEN_ID,
        "eos_token_id": EOS_TOKEN_ID,
    }
    fields.update(overrides)
    return Qwen2Config(**fields)


def preset_config(name: str, **overrides: Any) -> Qwen2Config:
    """Return the config of the preset called ``name`` (e.g. ``"qwen2.5-coder-7b"``).

    Raises:
        ValueError: ``name`` is not a preset; the message lists the presets.

    Example:
        >>> preset_config("qwen2.5-coder-7b").tie_word_embeddings
        False
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return qwen2_config(PRESETS[name], **overrides)


def count_parameters(model: torch.nn.Module) -> int:
    """Count the distinct parameters of ``model`` (tied tensors once)."""
    return sum(p.numel() for p in model.parameters())


def meta_model(config: Qwen2Config) -> Qwen2ForCausalLM:
    """Instantiate ``config`` on the meta device: shapes without memory, for counting.

    Example:
        >>> count_parameters(meta_model(preset_config("qwen2.5-coder-0.5b")))
        494032768
    """
    with torch.device("meta"):
        return Qwen2ForCausalLM(config)


def tiny_qwen2_config(**overrides: Any) -> Qwen2Config:
    """Return a 2-layer Qwen2 config with Qwen2.5's vocabulary for smoke tests.

    d = 64, n_h = 4, n_kv = 2 (grouped-query attention, h_d = 16), d_ff = 128, V = 151,936
    (so the offline Qwen2.5 tokenizer fits), tied embeddings, RoPE θ = 1e6 as in the real model.
    """
    fields: dict[str, Any] = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 2048,
    }
    fields.update(overrides)
    return qwen2_config(PRESETS["qwen2.5-coder-0.5b"], **fields)


def tiny_qwen2(
    out_dir: str | os.PathLike[str], *, seed: int = 0, with_tokenizer: bool = True
) -> Path:
    """Write a randomly initialised tiny Qwen2 checkpoint that loads like a real one.

    The directory holds ``config.json`` and ``model.safetensors`` (``save_pretrained``) and,
    with ``with_tokenizer``, the offline Qwen2.5 tokenizer, so that
    ``AutoModelForCausalLM.from_pretrained(out_dir)`` and ``AutoTokenizer.from_pretrained``
    take exactly the path a downloaded checkpoint takes. Its weights are random: it is for
    smoke tests and CPU demos, and its generations are noise.

    Args:
        out_dir: where to write (created; files in it are replaced).
        seed: torch seed for the initialisation (the same seed gives the same weights).
        with_tokenizer: also save the offline Qwen2.5 tokenizer into ``out_dir``.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Example:
        >>> path = tiny_qwen2(tmp_path / "tiny")  # doctest: +SKIP
        >>> load_model(path).config.num_hidden_layers  # doctest: +SKIP
        2
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(tiny_qwen2_config())
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(out)
    if with_tokenizer:
        from coursekit.tokenizer import load_qwen25_tokenizer

        load_qwen25_tokenizer().save_pretrained(out)
    return out


def cache_root() -> Path:
    """Return coursekit's cache directory (``$XDG_CACHE_HOME/coursekit`` or ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "coursekit"


def repo_root() -> Path:
    """Return the directory that holds the ``coursekit`` package and ``data/``."""
    return Path(__file__).resolve().parent.parent


NANO = "qwen2.5-coder-nano"
"""Directory name of the bundled pretrained model under ``data/models/`` (alias ``nano``)."""
ALIASES: dict[str, str] = {"nano": NANO}
"""Short model names accepted by ``--model``."""
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
        CoursekitError: ``"nano"`` while ``data/models/qwen2.5-coder-nano`` is missing.
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
    if name == NANO:
        raise CoursekitError(
            f"the bundled model {models_root() / NANO} is missing; restore it "
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
    if not Path(source).is_dir():
        kwargs["local_files_only"] = not hub_reachable()
    if Path(source).is_dir() and not (Path(source) / "config.json").is_file():
        raise CoursekitError(
            f"{source}: no config.json, so not a transformers checkpoint; point --model at a "
            "directory written by save_pretrained (config.json + *.safetensors)"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as error:
        if Path(source).is_dir():
            raise CoursekitError(f"{source}: not a loadable checkpoint ({error})") from error
        if isinstance(error, ValueError):
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
    import json

    try:
        return int(
            json.loads((directory / "config.json").read_text(encoding="utf-8"))["vocab_size"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
