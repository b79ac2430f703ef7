"""The peers of ``coursekit bench`` and the plumbing of one engine run.

HF ``Trainer`` + peft (``run_hf``) fine-tunes the model coursekit fine-tunes, on the same
data and budget (``coursekit.recipes.bench.budget``), with the same LoRA (rank, alpha =
2 · rank, the same targets: q/v by default), precision, device, optimizer (AdamW, constant
lr, clip 1.0), micro-batch size and seed; every sample is one row, padded to the longest of
its batch, and the logits are computed at every position. ``peer_model``, ``peer_arguments``
and ``FeedCounter`` are shared with the TRL peer (``trl_peer.py``). Measured per engine
(each in its own process, so each peak RSS is its own): target tokens/s = target tokens /
training seconds (``train_runtime`` of ``Trainer.train``; coursekit: its summed step times),
peak RSS (``ru_maxrss``), the samples fed and the final validation loss, measured the same
way for every engine (``budget.val_loss``).
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

from coursekit.recipes.bench.budget import DTYPES, FeedCounter, load_data, val_loss
from coursekit.recipes.bench.coursekit_engine import run_coursekit

RESULT_PREFIX = "RESULT "
"""Marks the line of a child process's stdout that holds its JSON result."""


PEER_METHODS: tuple[str, ...] = ("lora", "dora", "full")
"""The run methods the peers (HF ``Trainer`` + peft, TRL) are benchmarked with."""
CUDA_PEER_METHODS: tuple[str, ...] = ("qlora",)
"""Peer methods that need bitsandbytes' CUDA kernels (``coursekit bench --gpu`` runs them)."""


def peer_model(
    model: str, method: str, rank: int, *, targets: str = "qv", precision: str = "fp32",
    device: str = "cpu",
) -> torch.nn.Module:  # fmt: skip
    """Load ``model`` for a peer: peft LoRA/DoRA (alpha = 2 · rank), or all weights.

    ``targets`` is a preset of ``coursekit.adapters.TARGET_PRESETS`` (q/v by default); the
    weights are loaded in ``DTYPES[precision]`` on ``device``. ``qlora`` loads the base in
    bitsandbytes NF4 with double quantization (``load_model(quantization="nf4")``, CUDA only).

    Raises:
        ValueError: ``method`` is not one of ``PEER_METHODS`` or ``CUDA_PEER_METHODS``.
    """
    from peft import LoraConfig, get_peft_model

    from coursekit.adapters import TARGET_PRESETS
    from coursekit.loading import load_model

    allowed = PEER_METHODS + CUDA_PEER_METHODS
    if method not in allowed:
        raise ValueError(f"peer method must be one of {list(allowed)} (got {method!r})")
    quantization = "nf4" if method == "qlora" else None
    base = load_model(model, dtype=DTYPES[precision], quantization=quantization, device=device)
    if method == "full":
        return base.requires_grad_(True)
    lora = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=list(TARGET_PRESETS[targets]),
        use_dora=method == "dora",
    )  # fmt: skip
    return get_peft_model(base, lora)


def peer_arguments(
    output_dir: str, *, batch_size: int, lr: float, seed: int, steps: int | None,
    precision: str = "fp32", device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Return the ``TrainingArguments`` keywords both peers share, at the bench's budget.

    AdamW at the constant ``lr`` without weight decay, clipping at 1.0, no saving, logging or
    evaluation, no data workers; on the CPU unless ``device`` is not ``cpu``, bf16 autocast
    for ``precision="bf16"``. The budget: ``max_steps=steps``, or (``steps`` None: the
    samples budget) one epoch read in order (``train_sampling_strategy`` ``"sequential"``:
    the budget's order, which the bench shuffled once already).

    Example:
        >>> peer_arguments("out", batch_size=4, lr=1e-3, seed=0, steps=None)["num_train_epochs"]
        1
        >>> args = peer_arguments("out", batch_size=4, lr=1e-3, seed=0, steps=2, device="cuda")
        >>> args["use_cpu"], args["bf16"]
        (False, False)
    """
    if steps is None:
        budget = {"num_train_epochs": 1, "train_sampling_strategy": "sequential"}
    else:
        budget = {"max_steps": steps}
    return {
        "output_dir": output_dir, "per_device_train_batch_size": batch_size,
        "learning_rate": lr, "lr_scheduler_type": "constant", "weight_decay": 0.0,
        "max_grad_norm": 1.0, "save_strategy": "no", "eval_strategy": "no",
        "logging_strategy": "no", "report_to": [], "use_cpu": device == "cpu",
        "bf16": precision == "bf16", "seed": seed,
        "dataloader_num_workers": 0, "disable_tqdm": True, **budget,
    }  # fmt: skip


def peer_run(
    model: torch.nn.Module, trainer: Any, seq_len: int, pad_id: int
) -> Callable[[], dict[str, Any]]:
    """Return a function that trains ``trainer`` and returns a peer's measured numbers.

    Counters are attached first: the samples and target tokens fed (``FeedCounter``) and the
    positions and model FLOPs (``count_model_flops``).
    """
    from coursekit.recipes.bench.flops import count_model_flops

    counter = count_model_flops(model, seq_len)
    feed = FeedCounter(model, pad_id, targets=True)

    def train() -> dict[str, Any]:
        metrics = trainer.train().metrics
        return {"target_tokens": feed.target_tokens, "train_seconds": metrics["train_runtime"],
                "steps": trainer.state.global_step, **feed.summary(), **counter}  # fmt: skip

    return train


def run_hf(
    *, model: str = "tiny", data: str = "", steps: int | None = 12, samples: int | None = None,
    val_samples: int | None = None, batch_size: int = 4, seq_len: int = 384, rank: int = 8,
    lr: float = 2e-3, seed: int = 0, method: str = "lora", adapters: int = 1,
    targets: str = "qv", precision: str = "fp32", device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune with HF ``Trainer`` + peft (padding); return tokens, seconds, samples, val loss.

    ``method`` is one of ``PEER_METHODS`` (``full``: no peft, every weight trained) or, on
    CUDA, ``qlora`` (bitsandbytes NF4); ``targets``, ``precision`` and ``device`` as in
    ``peer_model``. ``adapters`` is accepted for a uniform signature (peers train one).
    """
    from transformers import Trainer, TrainingArguments

    fed = load_data(model=model, data=data, seq_len=seq_len, seed=seed, samples=samples,
                    val_samples=val_samples)  # fmt: skip
    pad = fed.tokenizer.pad_token_id
    torch.manual_seed(seed)
    peft_model = peer_model(model, method, rank, targets=targets, precision=precision,
                            device=device)  # fmt: skip

    def collate(features):
        width = max(len(f.input_ids) for f in features)
        ids = [list(f.input_ids) + [pad] * (width - len(f.input_ids)) for f in features]
        labels = [list(f.labels) + [-100] * (width - len(f.labels)) for f in features]
        mask = [[1] * len(f.input_ids) + [0] * (width - len(f.input_ids)) for f in features]
        return {k: torch.tensor(v) for k, v in
                {"input_ids": ids, "labels": labels, "attention_mask": mask}.items()}  # fmt: skip

    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(
            **peer_arguments(out, batch_size=batch_size, lr=lr, seed=seed,
                             steps=None if fed.one_pass else steps, precision=precision,
                             device=device),
            remove_unused_columns=False,
        )  # fmt: skip
        trainer = Trainer(
            model=peft_model, args=arguments, train_dataset=fed.train, data_collator=collate
        )
        result = peer_run(peft_model, trainer, seq_len, pad)()
    return {**result, "val_loss": val_loss(peft_model, fed.val, pad)}


ENGINES = {"coursekit": run_coursekit, "hf": run_hf}
"""Engine name → its run function."""


def measure_engine(
    engine: str, *, engines: dict[str, Any] | None = None, **settings: Any
) -> dict[str, Any]:
    """Run one engine and add tokens/s = target_tokens / train_seconds, peak RSS, wall time.

    With CUDA present, ``peak_cuda_bytes`` is ``torch.cuda.max_memory_allocated`` too.

    Args:
        engine: ``coursekit`` or ``hf`` (or a key of ``engines``).
        engines: engine name → run function (default ``ENGINES``).
        **settings: ``model``, ``data``, ``steps``, ``samples``, ``val_samples``,
            ``batch_size``, ``seq_len``, ``rank``, ``lr``, ``seed``, ``method``, ``adapters``,
            ``targets``, ``precision``, ``device`` (the run functions' keywords).
    """
    started = time.perf_counter()
    result = (engines or ENGINES)[engine](**settings)
    result["tokens_per_s"] = result["target_tokens"] / result["train_seconds"]
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if torch.cuda.is_available():  # pragma: no cover - GPU only
        result["peak_cuda_bytes"] = int(torch.cuda.max_memory_allocated())
    result["wall_seconds"] = time.perf_counter() - started
    return result


def result_line(result: dict[str, Any]) -> str:
    """Return the stdout line a child process reports its result with."""
    return RESULT_PREFIX + json.dumps(result)


def parse_result(stdout: str) -> dict[str, Any] | None:
    """Return the last result line of a child's stdout as a dict (None when there is none)."""
    lines = [x for x in stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    return json.loads(lines[-1][len(RESULT_PREFIX) :]) if lines else None
