"""The measurement logic of ``benchmarks/*.py``: loops, summaries and tables, importable.

Each module builds what its benchmark compares, runs the measurement loop and turns the
measurements into the printed table; the scripts under ``benchmarks/`` parse the flags, set
the torch threads and print. Benchmarks are measurements, never timed unit tests: the tests
(``tests/recipes/bench/``) check the logic on tiny models, not the speed.

Modules:
    ``adapter_step``: coursekit LoRA/DoRA vs peft LoRA/DoRA step time, round-robin.
    ``multi_adapter``: one joint multi-adapter run vs N separate runs, seconds per round.
    ``nano_vs_random``: the Phase 1 fine-tune from pretrained nano vs a random nano.
    ``nf4_memory``: NF4 storage of a Qwen2's linear weights vs bf16.
    ``suite``, ``suite_report``, ``flops``: ``coursekit bench``, engines (coursekit, HF
    ``Trainer`` + peft, TRL ``SFTTrainer``) × methods × repeats, medians, ratios and the
    achieved fraction of the fp32 matmul peak; ``bench.json``, ``bench.md``.
    ``budget``: the equal-steps or equal-samples budget and the samples each engine was fed.
    ``child``: one (method, engine, repeat) run in its own process, JSON back.
    ``coursekit_engine``: coursekit's runs, ``qat`` and the joint ``multi`` included.
    ``train_throughput``, ``trl_peer``: the HF and TRL peers (``peer_arguments``, ``peer_run``).
    ``profile``: ``--profile``, where coursekit's step time goes, by group.
    ``gpu``, ``gpu_memory``, ``gpu_report``: ``coursekit bench --gpu`` (docs/gpu.md).
"""
