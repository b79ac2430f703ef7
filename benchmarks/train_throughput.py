"""Training throughput: coursekit's loop against HF ``Trainer`` + peft, same LoRA fine-tune.

    python benchmarks/train_throughput.py [--model tiny] [--steps 12] [--batch-size 4]
        [--seq-len 384] [--rank 8] [--lr 2e-3] [--threads 2]

Both engines fine-tune the same model on the same split (the seed set by default) with the
same LoRA (rank, alpha, q/v targets), optimizer (AdamW, constant lr, clip 1.0), micro-batch
size, steps and seed. Each runs in its own subprocess, so each peak RSS is its own. Reported:

- target tokens/s: tokens the loss is computed on, divided by the training time (HF: the
  ``train_runtime`` of ``Trainer.train``; coursekit: the summed step times);
- peak RSS of the process (``ru_maxrss``);
- the final validation loss, measured the same way for both (mean loss per target token over
  the validation split, ``coursekit.train.loss.TargetLoss``).

coursekit packs several samples per row (no padding waste) and runs the LM head on target
positions only; HF pads every sample to the longest of its batch and computes logits
everywhere. With packing a coursekit step holds more samples than an HF step, so it also
sees more data in the same number of steps: compare the validation losses with that in mind.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def encoded(args):
    from coursekit.data.corpus import load_splits, seed_dir
    from coursekit.data.tokenized import TokenCache
    from coursekit.loading import load_tokenizer

    tokenizer = load_tokenizer(args.model)
    splits = load_splits(Path(args.data) if args.data else seed_dir())
    cache = TokenCache()
    train = cache.encode(splits["train"], tokenizer, args.seq_len)
    val = cache.encode(splits["val"], tokenizer, args.seq_len)
    return tokenizer, train, val


@torch.no_grad()
def val_loss(model, val, pad_id: int) -> float:
    from coursekit.data.batching import collate, target_count
    from coursekit.train.loss import TargetLoss

    loss, total = TargetLoss(model).eval(), 0.0
    for start in range(0, len(val), 4):
        total += loss(**collate([[e] for e in val[start : start + 4]], pad_id)).item()
    return total / sum(target_count([e]) for e in val)


def run_coursekit(args) -> dict:
    from coursekit.adapters import AdapterConfig
    from coursekit.train.config import TrainConfig
    from coursekit.train.run import prepare_output, train_run
    from coursekit.train.spec import RunSpec

    tokenizer, train, val = encoded(args)
    spec = RunSpec(
        model=args.model,
        adapter=AdapterConfig(rank=args.rank, alpha=2 * args.rank, targets="qv"),
        train=TrainConfig(
            max_steps=args.steps, micro_batch_size=args.batch_size, learning_rate=args.lr,
            schedule="constant", seq_len=args.seq_len, packing=True, eval_every=0,
            seed=args.seed,
        ),
    )  # fmt: skip
    from coursekit.adapters import apply
    from coursekit.loading import load_model
    from coursekit.train.run import seed_everything

    with tempfile.TemporaryDirectory() as out:
        prepare_output(out, spec, resume=False)
        seed_everything(args.seed)
        model = apply(load_model(args.model), spec.adapter_config)
        summary = train_run(model, train, val, spec.train, out, pad_id=tokenizer.pad_token_id)
    return {
        "target_tokens": summary["target_tokens"],
        "train_seconds": summary["train_seconds"],
        "val_loss": val_loss(model, val, tokenizer.pad_token_id),
    }


def run_hf(args) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from coursekit.loading import load_model

    tokenizer, train, val = encoded(args)
    torch.manual_seed(args.seed)
    lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(load_model(args.model), lora)
    counted = {"target_tokens": 0}

    def collate(features):
        width = max(len(f.input_ids) for f in features)
        pad = tokenizer.pad_token_id
        ids = [list(f.input_ids) + [pad] * (width - len(f.input_ids)) for f in features]
        labels = [list(f.labels) + [-100] * (width - len(f.labels)) for f in features]
        mask = [[1] * len(f.input_ids) + [0] * (width - len(f.input_ids)) for f in features]
        return {k: torch.tensor(v) for k, v in
                {"input_ids": ids, "labels": labels, "attention_mask": mask}.items()}  # fmt: skip

    def count(module, positional, kwargs):
        if module.training:  # the batches trained on, not prefetched or evaluated ones
            counted["target_tokens"] += int((kwargs["labels"][:, 1:] != -100).sum())

    model.register_forward_pre_hook(count, with_kwargs=True)
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
            learning_rate=args.lr, lr_scheduler_type="constant", weight_decay=0.0,
            max_grad_norm=1.0, save_strategy="no", eval_strategy="no", report_to=[],
            use_cpu=True, seed=args.seed, logging_steps=args.steps, remove_unused_columns=False,
            dataloader_num_workers=0, disable_tqdm=True,
        )  # fmt: skip
        trainer = Trainer(model=model, args=arguments, train_dataset=train, data_collator=collate)
        metrics = trainer.train().metrics
    return {
        "target_tokens": counted["target_tokens"],
        "train_seconds": metrics["train_runtime"],
        "val_loss": val_loss(model, val, tokenizer.pad_token_id),
    }


ENGINES = {"coursekit": run_coursekit, "hf": run_hf}


def child(args) -> None:
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result = ENGINES[args.engine](args)
    result["tokens_per_s"] = result["target_tokens"] / result["train_seconds"]
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["wall_seconds"] = time.perf_counter() - started
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--data", default="")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=384)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=sorted(ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        child(args)
        return
    results = {}
    for engine in ("hf", "coursekit"):
        command = [sys.executable, __file__, *sys.argv[1:], "--engine", engine]
        output = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [x for x in output.stdout.splitlines() if x.startswith("RESULT ")]
        if not lines:
            sys.exit(f"{engine} failed:\n{output.stderr[-3000:]}")
        results[engine] = json.loads(lines[-1][len("RESULT ") :])
    print(f"{'engine':>10} {'target tok/s':>13} {'target tokens':>14} {'train s':>8} "
          f"{'peak RSS MiB':>13} {'val loss':>9}")  # fmt: skip
    for engine, r in results.items():
        print(f"{engine:>10} {r['tokens_per_s']:>13.1f} {r['target_tokens']:>14} "
              f"{r['train_seconds']:>8.1f} {r['peak_rss_bytes'] / 2**20:>13.0f} "
              f"{r['val_loss']:>9.4f}")  # fmt: skip
    speedup = results["coursekit"]["tokens_per_s"] / results["hf"]["tokens_per_s"]
    print(f"coursekit / HF target tokens/s: {speedup:.2f}x")


if __name__ == "__main__":
    main()
