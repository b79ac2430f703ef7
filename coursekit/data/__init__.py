"""Rust test-generation data: the corpus schema and loading, prompts."""
