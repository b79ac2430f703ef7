"""Evaluation of generated Rust tests: compile and run them with rustc."""
