"""Qwen2.5-Coder-nano: the small pretrained Qwen2 bundled for offline, CPU-only lessons.

Guide: docs/nano.md.
"""

from coursekit.nano.config import NanoConfig

__all__ = ["NanoConfig"]
