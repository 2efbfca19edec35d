"""Nearest neighbours of unit vectors by cosine similarity (their dot product).

Exact search (one matrix product in NumPy) answers small indexes; an index larger than :data:`EXACT_MAX`
vectors also carries a faiss HNSW graph, searched instead. ``benchmarks/index_libraries.py`` compares faiss-cpu,
usearch and voyager on the same vectors and settings (docs/library.md gives the figures and the reasons).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..errors import MissingDependencyError

# Up to this many vectors, exact search answers a query in a few milliseconds (benchmarks/index_libraries.py).
EXACT_MAX = 50_000
# HNSW settings: links per node, candidates while building and while searching (recall@10 1.000 at 10^5 vectors
# and 0.946 at 10^6 in benchmarks/index.py).
CONNECTIVITY, EF_CONSTRUCTION, EF_SEARCH = 16, 128, 64


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple:
    """``(ids [Q, k], scores [Q, k])``: the ``k`` most similar rows of ``vectors`` to each query, best first."""
    k = min(k, len(vectors))
    scores = queries @ vectors.T
    if k < len(vectors):
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.tile(np.arange(len(vectors)), (len(queries), 1))
    best = np.take_along_axis(scores, top, 1)
    order = np.argsort(-best, axis=1, kind="stable")
    return np.take_along_axis(top, order, 1), np.take_along_axis(best, order, 1)


def require_faiss():
    """The faiss module, or a :class:`MissingDependencyError` saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError(f"an index of more than {EXACT_MAX} songs is searched with faiss: "
                                     "pip install 'genrenet[library]'") from None
    return faiss


def build_graph(vectors: np.ndarray, path: str):
    """Write the HNSW graph of ``vectors`` (ids = row numbers, inner product) to ``path``."""
    faiss = require_faiss()
    graph = faiss.IndexHNSWFlat(vectors.shape[1], CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    graph.add(np.ascontiguousarray(vectors, np.float32))
    faiss.write_index(graph, path)


class Neighbours:
    """Search over an index's vectors: exact, or the HNSW graph at ``graph_path`` when given."""

    def __init__(self, vectors: np.ndarray, graph_path: Optional[str] = None):
        self.vectors = vectors
        self.graph = None
        if graph_path and os.path.isfile(graph_path):
            self.graph = require_faiss().read_index(graph_path)
            self.graph.hnsw.efSearch = EF_SEARCH

    @property
    def method(self) -> str:
        return "hnsw (faiss)" if self.graph is not None else "exact"

    def search(self, queries: np.ndarray, k: int) -> tuple:
        """``(ids [Q, k'], scores [Q, k'])`` best first (k' ≤ k: fewer when the index holds fewer; HNSW may
        give id -1 for a slot it could not fill)."""
        queries = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.vectors.shape[1]))
        if self.graph is None:
            return exact_search(self.vectors, queries, k)
        scores, ids = self.graph.search(queries, min(k, len(self.vectors)))
        return ids.astype(np.int64), scores
