"""Generation speed: one prompt at a time against length-sorted batches, in the same run.

Greedy decoding of ``--max-new-tokens`` for the test split's verified functions (prompts
longer than ``--max-prompt`` tokens left out: they exceed nano's context), with
``generate_test`` one prompt at a time and ``generate`` in batches; new tokens per second,
per round, alternated so that load drift hits both alike.

    .venv/bin/python benchmarks/generation_speed.py --threads 1 --rounds 2
"""

from __future__ import annotations

import argparse
import time

import torch

from coursekit.data.corpus import default_corpus_dir, load_splits
from coursekit.data.prompts import prompt_text
from coursekit.evaluate.generate import Decoding, generate, generate_test
from coursekit.loading import load_model, load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="nano")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-prompt", type=int, default=1800)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--batch-sizes", default="4,8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model).eval(), load_tokenizer(args.model)
    verified = [s for s in load_splits(default_corpus_dir())["test"] if s.verified]
    prompts = [prompt_text(s, tokenizer) for s in verified]
    prompts = [p for p in prompts if len(tokenizer(p)["input_ids"]) < args.max_prompt]
    prompts = prompts[: args.prompts]
    rates: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        start, tokens = time.perf_counter(), 0
        for prompt in prompts:
            text = generate_test(model, tokenizer, prompt, max_new_tokens=args.max_new_tokens)
            tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
        rates.setdefault("one at a time", []).append(tokens / (time.perf_counter() - start))
        for size in (int(s) for s in args.batch_sizes.split(",")):
            decoding = Decoding(max_new_tokens=args.max_new_tokens, stop=(), batch_size=size)
            start = time.perf_counter()
            generated = generate(model, tokenizer, prompts, decoding)
            tokens = sum(g[0].new_tokens for g in generated)
            rates.setdefault(f"batch {size}", []).append(tokens / (time.perf_counter() - start))
    print(f"{len(prompts)} prompts, {args.threads} thread(s), tokens/s per round:")
    for name, values in rates.items():
        ratio = [v / one for v, one in zip(values, rates["one at a time"], strict=True)]
        shown = ", ".join(f"{v:.0f} ({r:.2f}x)" for v, r in zip(values, ratio, strict=True))
        print(f"  {name:<14} {shown}")


if __name__ == "__main__":
    main()
