"""Approximate nearest-neighbour libraries compared on the same vectors: faiss-cpu (HNSW), usearch (HNSW) and
voyager (HNSW), against exact search (NumPy), for the similar-songs index.

    pip install faiss-cpu usearch voyager      # faiss-cpu comes with genrenet[library]; the peers only for this
    python -m benchmarks.index_libraries [--sizes 10000,100000] [--dim 200] [--queries 200] [--threads 2]

Vectors are synthetic clip embeddings: unit vectors drawn around 1,000 random centres (songs of a genre or an
artist sit close together, as real embeddings do; uniform random vectors would be an unrealistically hard case).
Every library gets the same HNSW settings (M = 16 links, 128 candidates while building, 64 while searching),
``--threads`` threads to build, and answers queries one at a time (the latency of one ``similar`` call). The
queries are vectors of the index itself, the query's own entry left out of the answer as ``similar`` does, so
recall@10 is the share of the exact 10 nearest neighbours found.
"""
from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time

import numpy as np

from ._util import print_machine

M, EF_CONSTRUCTION, EF_SEARCH = 16, 128, 64


def synthetic_embeddings(n: int, dim: int, seed: int = 0, centres: int = 1000) -> np.ndarray:
    """``n`` unit vectors around ``centres`` random unit centres (float32)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_neighbours(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The ids of the ``k`` most similar vectors of ``x`` to each query, best first."""
    scores = queries @ x.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, 1).argsort(1)[:, ::-1]
    return np.take_along_axis(top, order, 1)


class Faiss:
    name = "faiss-cpu"

    def build(self, x, threads):
        import faiss

        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexHNSWFlat(x.shape[1], M, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = EF_CONSTRUCTION
        self.index.add(x)
        self.index.hnsw.efSearch = EF_SEARCH
        faiss.omp_set_num_threads(1)

    def query(self, q, k):
        return self.index.search(q[None], k)[1][0]

    def save(self, path):
        import faiss

        faiss.write_index(self.index, path)


class Usearch:
    name = "usearch"

    def build(self, x, threads):
        from usearch.index import Index

        self.index = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=M,
                           expansion_add=EF_CONSTRUCTION, expansion_search=EF_SEARCH)
        self.index.add(np.arange(len(x), dtype=np.uint64), x, threads=threads)

    def query(self, q, k):
        return np.asarray(self.index.search(q, k, threads=1).keys)

    def save(self, path):
        self.index.save(path)


class Voyager:
    name = "voyager"

    def build(self, x, threads):
        from voyager import Index, Space

        self.index = Index(Space.InnerProduct, num_dimensions=x.shape[1], M=M, ef_construction=EF_CONSTRUCTION)
        self.index.add_items(x, np.arange(len(x)), num_threads=threads)
        self.index.ef = EF_SEARCH

    def query(self, q, k):
        return self.index.query(q, k)[0]

    def save(self, path):
        self.index.save(path)


LIBRARIES = (Faiss, Usearch, Voyager)


def measure(lib, x, query_ids, truth, k, threads):
    """Build seconds, median query ms, recall@k and bytes on disk of one library on ``x``."""
    t0 = time.perf_counter()
    lib.build(x, threads)
    build = time.perf_counter() - t0
    times, found = [], 0
    for i, t in zip(query_ids, truth):
        t0 = time.perf_counter()
        ids = lib.query(x[i], k + 1)
        times.append(time.perf_counter() - t0)
        found += len(set(int(j) for j in ids if j != i) & set(t.tolist()))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "index")
        lib.save(path)
        size = os.path.getsize(path)
    return build, 1000 * float(np.median(times)), found / (k * len(query_ids)), size


def compare(n, dim, queries, threads, k=10):
    x = synthetic_embeddings(n, dim)
    rng = np.random.default_rng(1)
    query_ids = rng.choice(n, queries, replace=False)
    t0 = time.perf_counter()
    truth = []
    for i in query_ids:
        ids = exact_neighbours(x, x[i][None], k + 1)[0]
        truth.append(ids[ids != i][:k])
    exact_ms = 1000 * (time.perf_counter() - t0) / queries
    rows = [("exact (numpy)", 0.0, exact_ms, 1.0, x.nbytes)]
    for cls in LIBRARIES:
        lib = cls()
        rows.append((cls.name,) + measure(lib, x, query_ids, truth, k, threads))
        del lib
        gc.collect()
    print(f"\n{n:,} vectors of {dim} dims, {queries} queries, k={k}")
    print("| search | build s | vectors/s | query ms (median) | recall@10 | bytes/vector on disk |")
    print("|---|---|---|---|---|---|")
    for name, build, ms, recall, size in rows:
        rate = f"{n / build:,.0f}" if build else "-"
        print(f"| {name} | {build:.2f} | {rate} | {ms:.3f} | {recall:.3f} | {size / n:.0f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--dim", type=int, default=200)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    from importlib.metadata import version

    print_machine("ANN libraries")
    print("  " + ", ".join(f"{name} {version(name)}" for name in ("faiss-cpu", "usearch", "voyager"))
          + f"; HNSW M={M}, ef_construction={EF_CONSTRUCTION}, ef_search={EF_SEARCH}")
    for n in (int(s) for s in args.sizes.split(",")):
        compare(n, args.dim, args.queries, args.threads)


if __name__ == "__main__":
    main()
