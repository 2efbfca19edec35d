"""Benchmarks: ``python -m benchmarks.memory``."""
