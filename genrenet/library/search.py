"""Nearest neighbours of unit vectors by cosine similarity (their dot product).

Exact search (one matrix product in NumPy) answers small indexes; an index larger than :data:`EXACT_MAX`
vectors also carries a usearch HNSW graph (``benchmarks/index_libraries.py`` compares it with faiss-cpu and
voyager: docs/library.md says why usearch), searched instead.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..errors import MissingDependencyError

# Up to this many vectors, exact search answers a query in milliseconds (benchmarks/index.py).
EXACT_MAX = 50_000
# HNSW settings: links per node, candidates while building and while searching (recall@10 ≥ 0.99 in the
# benchmark at 10^4 to 10^6 vectors).
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 128, 64


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple:
    """``(ids [Q, k], scores [Q, k])``: the ``k`` most similar rows of ``vectors`` to each query, best first."""
    k = min(k, len(vectors))
    scores = queries @ vectors.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < len(vectors) else np.tile(
        np.arange(len(vectors)), (len(queries), 1))
    best = np.take_along_axis(scores, top, 1)
    order = np.argsort(-best, axis=1, kind="stable")
    return np.take_along_axis(top, order, 1), np.take_along_axis(best, order, 1)


def require_usearch():
    """The usearch Index class, or a :class:`MissingDependencyError` saying how to install it."""
    try:
        from usearch.index import Index
    except ImportError:
        raise MissingDependencyError(f"an index of more than {EXACT_MAX} songs is searched with usearch: "
                                     "pip install 'genrenet[library]'") from None
    return Index


def build_graph(vectors: np.ndarray, path: str, threads: int = 0):
    """Write the HNSW graph of ``vectors`` (keys = row numbers) to ``path``."""
    Index = require_usearch()
    graph = Index(ndim=vectors.shape[1], metric="ip", dtype="f32", connectivity=CONNECTIVITY,
                  expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
    graph.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=threads)
    graph.save(path)


class Neighbours:
    """Search over an index's vectors: exact, or the HNSW graph at ``graph_path`` when given."""

    def __init__(self, vectors: np.ndarray, graph_path: Optional[str] = None):
        self.vectors = vectors
        self.graph = None
        if graph_path and os.path.isfile(graph_path):
            self.graph = require_usearch().restore(graph_path, view=True)
            self.graph.expansion_search = EXPANSION_SEARCH

    @property
    def method(self) -> str:
        return "hnsw (usearch)" if self.graph is not None else "exact"

    def search(self, queries: np.ndarray, k: int) -> tuple:
        """``(ids [Q, k'], scores [Q, k'])`` best first (k' ≤ k: fewer when the index holds fewer)."""
        queries = np.asarray(queries, np.float32).reshape(-1, self.vectors.shape[1])
        if self.graph is None:
            return exact_search(self.vectors, queries, k)
        found = self.graph.search(queries, min(k, len(self.vectors)))
        keys = np.asarray(found.keys, np.int64).reshape(len(queries), -1)
        scores = 1.0 - np.asarray(found.distances, np.float32).reshape(len(queries), -1)  # ip distance = 1 - dot
        return keys, scores
