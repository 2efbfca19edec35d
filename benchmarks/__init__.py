"""Benchmarks for genrenet. Run one with ``python -m benchmarks.<name>`` from the repository root.

Every benchmark measures genrenet against a peer in the same process, interleaved, and prints ratios with the
machine it ran on: absolute seconds on a shared 2-core CPU say little, ratios measured side by side say more.
"""
