"""The similar-songs index: build speed, search latency and recall, memory per song, and whether a song's
nearest neighbour shares its genre on real music.

    python -m benchmarks.index [--data ../shared/data/gtzan_dev] [--source musicnn-msd-gtzan]
                               [--sizes 10000,100000] [--million] [--queries 200]

* **Build**: files/s of :func:`genrenet.build_index` on the real clips (model loaded in the call), and of the
  second run on the unchanged folder (nothing to embed: the cost of checking).
* **Search**: genrenet's search (:class:`genrenet.library.search.Neighbours`) on synthetic unit vectors of the
  source's dimension at each size: exact below :data:`~genrenet.library.search.EXACT_MAX`, the faiss graph
  above; median query latency and recall@10 against exact search (peer: exact search on the same vectors).
  ``--million`` adds 10^6 vectors (minutes to build on 2 cores).
* **Memory per song**: bytes of the index folder per song, and RSS added by opening it for search.
* **Genre of the nearest neighbour**: for each real clip, its most similar clip among the clips of *other
  artists* (leave-one-artist-out: the same singer would make it too easy); how often it has the same genre. Peer:
  the classic MFCC + chroma + spectral statistics of the clip (benchmarks.gtzan_dev), standardised, cosine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from ._util import peak_memory_mb, print_machine
from .gtzan_dev import DEFAULT_DATA, clip_features
from .index_libraries import synthetic_embeddings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_speed(source, clips, workdir):
    """Files/s of a first build and of an update with nothing changed."""
    from genrenet.library.index import build_index

    out = os.path.join(workdir, "idx")
    t0 = time.perf_counter()
    build_index(source, [c.path for c in clips], out, verbose=0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = build_index(source, [c.path for c in clips], out, verbose=0)
    again = time.perf_counter() - t0
    assert report["new"] == report["changed"] == 0
    print(f"\n{len(clips)} real clips with {source}")
    print("| build | seconds | files/s |\n|---|---|---|")
    print(f"| first (embeds every file) | {first:.1f} | {len(clips) / first:.2f} |")
    print(f"| again, nothing changed | {again:.1f} | {len(clips) / again:.2f} |")
    return out


def search_rows(sizes, dim, queries, k=10):
    """Latency and recall of genrenet's search at each size against exact search."""
    from genrenet.library.search import EXACT_MAX, Neighbours, build_graph, exact_search

    print(f"\nsearch on synthetic unit vectors of {dim} dims, {queries} queries one at a time, k={k}")
    print("| vectors | method | build s | query ms (median) | exact query ms | recall@10 | bytes/song on disk |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        x = synthetic_embeddings(n, dim)
        ids = np.random.default_rng(1).choice(n, queries, replace=False)
        exact_ms, truth = [], []
        for i in ids:
            t0 = time.perf_counter()
            found = exact_search(x, x[i][None], k + 1)[0][0]
            exact_ms.append(time.perf_counter() - t0)
            truth.append(set(found[found != i][:k].tolist()))
        with tempfile.TemporaryDirectory() as d:
            graph, build = None, 0.0
            if n > EXACT_MAX:
                graph = os.path.join(d, "graph.faiss")
                t0 = time.perf_counter()
                build_graph(x, graph)
                build = time.perf_counter() - t0
            search = Neighbours(x, graph)
            times, hits = [], 0
            for i, t in zip(ids, truth):
                t0 = time.perf_counter()
                found = search.search(x[i][None], k + 1)[0][0]
                times.append(time.perf_counter() - t0)
                hits += len(set(found[found != i][:k].tolist()) & t)
            disk = x.nbytes + (os.path.getsize(graph) if graph else 0)
        print(f"| {n:,} | {search.method} | {build:.1f} | {1000 * np.median(times):.3f} | "
              f"{1000 * np.median(exact_ms):.3f} | {hits / (k * queries):.3f} | {disk / n:.0f} |")


def memory_per_song(index_dir):
    """Bytes of the index folder per song and the RSS its opening adds."""
    from genrenet.library.index import LibraryIndex

    size = sum(os.path.getsize(os.path.join(index_dir, f)) for f in os.listdir(index_dir))
    idx = LibraryIndex(index_dir)
    mb, how = peak_memory_mb(lambda: LibraryIndex(index_dir))
    print(f"\nindex of {len(idx)} songs, {idx.entries.vectors.shape[1]} dims: {size / len(idx):,.0f} bytes per song "
          f"on disk (paths included); opening it adds {1024 * 1024 * mb / len(idx):,.0f} bytes per song ({how})")


def same_genre_rate(vectors, clips):
    """Share of clips whose nearest clip of another artist has the same genre."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = v @ v.T
    groups = np.array([c.group for c in clips])
    labels = np.array([c.label for c in clips])
    scores[groups[:, None] == groups[None, :]] = -np.inf  # the clip itself and its artist's other clips
    return float(np.mean(labels[scores.argmax(1)] == labels))


def genre_agreement(source, clips):
    import genrenet

    emb = genrenet.embed(source, [c.path for c in clips], verbose=0)
    order = {str(f): i for i, f in enumerate(emb["files"])}
    model = emb["embeddings"][[order[c.path] for c in clips]]
    feats = np.stack([clip_features(c.path) for c in clips])
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-9)
    artists = len({c.group for c in clips})
    print(f"\nnearest neighbour of another artist has the same genre ({len(clips)} clips, {artists} artists, "
          f"{len({c.label for c in clips})} genres; chance ≈ {1 / len({c.label for c in clips}):.2f})")
    print("| embedding | same genre |\n|---|---|")
    print(f"| {source} clip embedding | {same_genre_rate(model, clips):.3f} |")
    print(f"| MFCC + chroma + spectral statistics (peer) | {same_genre_rate(feats, clips):.3f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--source", default="musicnn-msd-gtzan")
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--million", action="store_true", help="also 10^6 vectors")
    p.add_argument("--queries", type=int, default=200)
    args = p.parse_args(argv)
    from genrenet.data import load_dataset

    print_machine("similar-songs index")
    clips = list(load_dataset(args.data).clips)
    work = tempfile.mkdtemp(prefix="genrenet-index-bench-")
    try:
        index_dir = build_speed(args.source, clips, work)
        memory_per_song(index_dir)
        genre_agreement(args.source, clips)
        dim = int(np.load(os.path.join(index_dir, "index.npz"))["vectors"].shape[1])
        sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.million else [])
        search_rows(sizes, dim, args.queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
