"""Similar songs: an index of clip embeddings of a music library, kept up to date, and its nearest neighbours.

``build_index(source, paths, out)`` embeds every audio file of ``paths`` with the model of ``source`` (the
penultimate features averaged over the clip's windows, L2-normalised, as ``Classifier.embed`` gives them) and
stores each with its path, size and modification time in the folder ``out``, with the **pipeline** that made
them (the model's weights fingerprint, its front-end, window, hop and pooling). Running it again embeds only new
and changed files and drops the files that are gone; an index made by another pipeline is refused, never mixed.
``similar(index, files, k)`` gives each file's ``k`` most similar songs (cosine similarity), the file itself
left out: files in the index are looked up, others are embedded with the index's own model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import uuid
from typing import Optional

import numpy as np

from ..errors import GenrenetError
from ..run import atomic_path, write_text
from .search import EXACT_MAX, Neighbours, build_graph

INDEX_MARKER = ".genrenet-index"  # genrenet writes only into index folders that hold it (or are new or empty)
DATA_FILE = "index.npz"  # the one authoritative file: vectors, files, sizes, mtimes and the metadata
FORMAT = 1
POOLING = "mean of the windows' penultimate features, L2-normalised"


class LibraryIndexError(GenrenetError, ValueError):
    """An index that cannot be used here: not an index folder, or made by another model or setting."""


@dataclasses.dataclass
class Entries:
    """The files of an index, row for row with their vectors."""

    files: list
    sizes: np.ndarray
    mtimes: np.ndarray
    vectors: np.ndarray

    def __len__(self):
        return len(self.files)

    def take(self, rows) -> "Entries":
        rows = list(rows)
        return Entries([self.files[i] for i in rows], self.sizes[rows], self.mtimes[rows], self.vectors[rows])

    @staticmethod
    def concat(parts, dim: int) -> "Entries":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Entries([], np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dim), np.float32))
        return Entries(sum((p.files for p in parts), []), np.concatenate([p.sizes for p in parts]),
                       np.concatenate([p.mtimes for p in parts]), np.concatenate([p.vectors for p in parts]))


# ------------------------------------------------------------------------------------------- the pipeline
def model_fingerprint(model) -> str:
    """A hash of a Keras model's weights (shapes and values, in order): the same model gives the same hash
    wherever it was loaded or materialised."""
    h = hashlib.sha256()
    for w in model.weights:
        value = np.ascontiguousarray(np.asarray(w.numpy()))
        h.update(f"{value.dtype}{value.shape}".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:16]


def embedding_model(classifier):
    """The Keras model of ``classifier``; an export gets a :class:`LibraryIndexError` saying what to use."""
    if classifier.kind not in ("run", "preset"):
        raise LibraryIndexError(f"{classifier.source}: an index is built from clip embeddings (the features "
                                "before the classifier), which genrenet reads from a Keras model; a "
                                f"{classifier.kind} export has none: index with the run directory it was exported "
                                "from, or a preset", param="source")
    return classifier.keras_model


def index_pipeline(classifier) -> dict:
    """What makes two embeddings comparable: the model (weights fingerprint), front-end, window, hop, pooling."""
    return {"model": model_fingerprint(embedding_model(classifier)), "model_name": classifier.model_name,
            "features": classifier.features.to_dict(), "sample_rate": classifier.sample_rate,
            "window_samples": classifier.window_samples, "hop_samples": classifier.window_samples,
            "pooling": POOLING}


def pipeline_version(pipeline: dict) -> str:
    """A short hash of the pipeline: equal versions, comparable embeddings."""
    return hashlib.sha256(json.dumps(pipeline, sort_keys=True).encode()).hexdigest()[:16]


def check_pipeline(meta: dict, pipeline: dict, where: str, source, param: str):
    """Refuse to mix embeddings of another pipeline into (or query with them) the index ``where``."""
    if meta["pipeline_version"] == pipeline_version(pipeline):
        return
    differ = [k for k in sorted(set(pipeline) | set(meta["pipeline"])) if pipeline.get(k) != meta["pipeline"].get(k)]
    raise LibraryIndexError(
        f"{where}: this index was built with {meta['source']} (pipeline {meta['pipeline_version']}); "
        f"{source} embeds differently ({', '.join(differ)} differ), so their songs cannot be compared. "
        "Use the index's model, or build a new index in another folder", param=param)


# ------------------------------------------------------------------------------------------- the folder
def is_index_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, INDEX_MARKER))


def refuse_foreign_dir(path: str):
    """A folder that holds files and is not an index is never written: a :class:`LibraryIndexError`."""
    if os.path.isdir(path) and not is_index_dir(path) and os.listdir(path):
        raise LibraryIndexError(f"{path}: not a genrenet index (the folder holds other files); choose a new or "
                                "empty folder (nothing was changed)", param="out")


def claim_index_dir(path: str):
    """Make ``path`` an index folder genrenet may write: new or empty folders get the marker; any other folder
    that is not an index is refused, changing nothing in it."""
    refuse_foreign_dir(path)
    os.makedirs(path, exist_ok=True)
    if not is_index_dir(path):
        write_text(os.path.join(path, INDEX_MARKER), "genrenet similar-songs index\n")


def read_index(path) -> tuple:
    """``(meta, entries)`` of the index folder ``path``."""
    path = os.fspath(path)
    data_path = os.path.join(path, DATA_FILE)
    if not is_index_dir(path) or not os.path.isfile(data_path):
        raise LibraryIndexError(f"{path}: not a genrenet index (expected {DATA_FILE}, written by "
                                "`genrenet index ... --out FOLDER`)", param="index")
    with np.load(data_path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != FORMAT:
            raise LibraryIndexError(f"{path}: index format {meta.get('format')}, this genrenet reads {FORMAT}; "
                                    "rebuild it with `genrenet index`", param="index")
        entries = Entries(z["files"].tolist(), z["sizes"], z["mtimes"], z["vectors"])
    return meta, entries


def write_index(path: str, meta: dict, entries: Entries):
    """Write the index atomically: its graph (when large) under a fresh name, then ``index.npz``, which names
    that graph, renamed into place in one step; graphs no longer named are removed after."""
    meta = dict(meta, format=FORMAT, count=len(entries), dim=int(entries.vectors.shape[1]), graph=None,
                updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if len(entries) > EXACT_MAX:
        meta["graph"] = f"graph-{uuid.uuid4().hex[:12]}.faiss"
        with atomic_path(os.path.join(path, meta["graph"])) as tmp:
            build_graph(entries.vectors, tmp)
    with atomic_path(os.path.join(path, DATA_FILE)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), files=np.array(entries.files, dtype=str),
                     sizes=entries.sizes.astype(np.int64), mtimes=entries.mtimes.astype(np.int64),
                     vectors=entries.vectors.astype(np.float32))
    for name in os.listdir(path):
        if name.startswith("graph-") and name != meta["graph"]:
            os.remove(os.path.join(path, name))
    return meta


# ------------------------------------------------------------------------------------------- embedding
def file_stat(path: str) -> Optional[tuple]:
    """``(size, mtime_ns)`` of a file, ``None`` when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def unit_rows(files, embeddings) -> tuple:
    """``(files, L2-normalised rows, skipped)``: a zero embedding (nothing the model hears) is skipped."""
    norms = np.linalg.norm(embeddings, axis=1) if len(embeddings) else np.zeros(0)
    ok = np.isfinite(norms) & (norms > 0)
    skipped = [(f, "the model hears nothing in it (zero embedding)") for f, good in zip(files, ok) if not good]
    vectors = (embeddings[ok] / norms[ok, None]).astype(np.float32)
    return [f for f, good in zip(files, ok) if good], vectors, skipped


def embed_local(classifier, paths, *, batch_size: int = 32, verbose: int = 1) -> tuple:
    """``(files, unit vectors, skipped)`` of ``paths`` embedded in this process."""
    if not paths:
        return [], np.zeros((0, 0), np.float32), []
    result = classifier.embed(list(paths), batch_size=batch_size, verbose=verbose)
    files, vectors, zero = unit_rows([str(f) for f in result["files"]], result["embeddings"])
    return files, vectors, list(result["skipped"]) + zero


def embed_entries(classifier, paths, stats, embed, dim: int) -> tuple:
    """``(entries, skipped)`` of ``paths`` embedded by ``embed(classifier, paths)``."""
    files, vectors, skipped = embed(classifier, paths)
    where = {p: i for i, p in enumerate(paths)}
    rows = [where[f] for f in files]  # the embedders give back the paths they were given
    vectors = vectors if len(files) else np.zeros((0, dim), np.float32)
    entries = Entries(files, np.array([stats[r][0] for r in rows], np.int64),
                      np.array([stats[r][1] for r in rows], np.int64), vectors)
    return entries, skipped


# ------------------------------------------------------------------------------------------- building
def scan(paths, verbose: int) -> tuple:
    """``(files, stats, skipped)``: the audio files of ``paths`` as real paths (a symlink and its target are one
    song) with ``(size, mtime_ns)``."""
    from ..infer.classifier import audio_paths

    files, stats, skipped, seen = [], [], [], set()
    for p in audio_paths(paths, verbose):
        path = os.path.realpath(p)
        stat = file_stat(path)
        if path in seen:
            continue
        seen.add(path)
        if stat is None:
            skipped.append((path, "cannot read the file"))
        else:
            files.append(path)
            stats.append(stat)
    return files, stats, skipped


def plan(old: Entries, files: list, stats: list) -> dict:
    """Which rows of ``old`` to keep, which files are new and which changed (size or mtime)."""
    rows = {f: i for i, f in enumerate(old.files)}
    keep, new, changed = [], [], []
    for f, (size, mtime) in zip(files, stats):
        i = rows.get(f)
        if i is None:
            new.append(f)
        elif old.sizes[i] == size and old.mtimes[i] == mtime:
            keep.append(i)
        else:
            changed.append(f)
    return {"keep": keep, "new": new, "changed": changed, "removed": len(old) - len(keep) - len(changed)}


def build_index(source, paths, out, *, batch_size: int = 32, runner: Optional[str] = None, beam_args=(),
                verbose: int = 1) -> dict:
    """Index the audio files of ``paths`` (files, folders, patterns) into the folder ``out`` with the model of
    ``source`` (a run directory or a preset; ``None``: the default preset), or update the index there: only
    new and changed (size, mtime) files are embedded and files no longer found are dropped. ``runner``
    embeds on Apache Beam. Returns the counts: ``new``, ``changed``, ``removed``, ``kept``, ``count``,
    ``skipped`` [(file, reason)], ``search``."""
    from ..infer.classifier import Classifier

    out = os.fspath(out)
    old_meta, old = read_index(out) if is_index_dir(out) and os.path.isfile(os.path.join(out, DATA_FILE)) \
        else (None, None)
    refuse_foreign_dir(out)  # before any work; the folder is created once the model is known to fit
    files, stats, skipped = scan(paths, verbose)
    classifier = Classifier.from_preset(source, verbose=verbose)
    pipeline = index_pipeline(classifier)
    shown = os.path.abspath(classifier.source) if os.path.exists(classifier.source) else classifier.source
    if old_meta is not None:
        check_pipeline(old_meta, pipeline, out, shown, param="out")
    claim_index_dir(out)
    dim = old.vectors.shape[1] if old is not None else 0
    work = plan(old if old is not None else Entries.concat([], dim), files, stats)
    todo = work["new"] + work["changed"]
    stat_of = dict(zip(files, stats))
    embed = embedder(runner, beam_args, batch_size, verbose, out)
    fresh, failed = embed_entries(classifier, todo, [stat_of[f] for f in todo], embed, dim)
    dim = dim or (fresh.vectors.shape[1] if len(fresh) else 0)
    entries = Entries.concat([old.take(work["keep"]) if old is not None else Entries.concat([], dim), fresh], dim)
    if not len(entries):
        raise LibraryIndexError(f"none of the files of {', '.join(map(str, paths))} could be embedded"
                                + "".join(f"; {f}: {r}" for f, r in (skipped + failed)[:3]), param="paths")
    meta = write_index(out, {"source": shown, "pipeline": pipeline, "pipeline_version": pipeline_version(pipeline)},
                       entries)
    embedded = set(fresh.files)
    return {"index": out, "new": sum(f in embedded for f in work["new"]),
            "changed": sum(f in embedded for f in work["changed"]), "removed": work["removed"],
            "kept": len(work["keep"]), "count": len(entries), "skipped": skipped + failed,
            "search": "hnsw (faiss)" if meta["graph"] else "exact", "pipeline_version": meta["pipeline_version"]}


def embedder(runner: Optional[str], beam_args, batch_size: int, verbose: int, out: str):
    """``embed(classifier, paths) → (files, unit vectors, skipped)``: here, or on Apache Beam's ``runner``, whose
    JSON Lines shards go to a temporary folder inside the index folder ``out`` and are removed once read."""
    if not runner:
        return lambda classifier, paths: embed_local(classifier, paths, batch_size=batch_size, verbose=verbose)

    def on_beam(classifier, paths):
        import shutil
        import tempfile

        from ..infer.beam import embed_pipeline, read_embedding_shards

        if not paths:
            return [], np.zeros((0, 0), np.float32), []
        shards_dir = tempfile.mkdtemp(prefix=".shards-", dir=out)
        try:
            shards = embed_pipeline(classifier.source, paths, os.path.join(shards_dir, "embeddings"),
                                    runner=runner, beam_args=beam_args, batch_size=batch_size)
            files, embeddings, skipped = read_embedding_shards(shards)
        finally:
            shutil.rmtree(shards_dir, ignore_errors=True)
        if verbose:
            print(f"embedded {len(files)} files on {runner} ({len(shards)} shards)", file=sys.stderr)
        files, vectors, zero = unit_rows(files, embeddings)
        return files, vectors, skipped + zero
    return on_beam


# ------------------------------------------------------------------------------------------- searching
class LibraryIndex:
    """An index opened for searching: its files, vectors, pipeline and nearest-neighbour search."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.meta, self.entries = read_index(self.path)
        graph = self.meta.get("graph")
        self.search = Neighbours(self.entries.vectors, os.path.join(self.path, graph) if graph else None)
        self.rows = {f: i for i, f in enumerate(self.entries.files)}
        self.classifier = None

    def __len__(self):
        return len(self.entries)

    def model(self):
        """The index's own model, loaded once, checked to embed as the index does."""
        if self.classifier is None:
            from ..infer.classifier import Classifier

            classifier = Classifier.from_preset(self.meta["source"], verbose=0)
            check_pipeline(self.meta, index_pipeline(classifier), self.path, self.meta["source"], param="index")
            self.classifier = classifier
        return self.classifier

    def row_of(self, path: str) -> Optional[int]:
        """The row of ``path`` when the index holds it unchanged (same size and mtime)."""
        i = self.rows.get(path)
        if i is None or file_stat(path) != (int(self.entries.sizes[i]), int(self.entries.mtimes[i])):
            return None
        return i

    def query_vectors(self, paths, batch_size: int = 32, verbose: int = 0) -> dict:
        """``{path: unit vector or error text}`` of absolute ``paths``: looked up, or embedded when absent."""
        found = {p: self.entries.vectors[i] for p in paths if (i := self.row_of(p)) is not None}
        missing = [p for p in dict.fromkeys(paths) if p not in found]
        if missing:
            files, vectors, skipped = embed_local(self.model(), missing, batch_size=batch_size, verbose=verbose)
            found.update(zip(files, vectors))
            found.update((f, reason) for f, reason in skipped)
        return found

    def neighbours(self, path: str, vector: np.ndarray, k: int) -> list:
        """The ``k`` songs most similar to ``vector``, ``path`` itself left out: ``[{"file", "score"}]``."""
        ids, scores = self.search.search(vector[None], k + 1)
        rows = [{"file": self.entries.files[i], "score": round(float(s), 6)}
                for i, s in zip(ids[0], scores[0]) if i >= 0 and self.entries.files[i] != path]
        return rows[:k]


def similar(index, files, k: int = 10, *, batch_size: int = 32, verbose: int = 1) -> list:
    """The ``k`` most similar songs of the index ``index`` to each audio file of ``files`` (files, folders,
    patterns; in the index or not), the file itself left out: one row per file, ``{"file", "neighbours":
    [{"file", "score"}...]}`` (cosine similarity, best first), or ``{"file", "error"}``."""
    from ..infer.classifier import audio_paths

    if k < 1:
        raise LibraryIndexError(f"must be ≥ 1, got {k}", param="k")
    idx = index if isinstance(index, LibraryIndex) else LibraryIndex(index)
    queries = audio_paths(files, verbose)
    paths = [os.path.realpath(q) for q in queries]  # as the index keys its songs
    vectors = idx.query_vectors(paths, batch_size=batch_size, verbose=verbose)
    rows = []
    for query, path in zip(queries, paths):
        v = vectors.get(path, "could not be decoded")
        if isinstance(v, str):
            rows.append({"file": query, "error": v})
        else:
            rows.append({"file": query, "neighbours": idx.neighbours(path, v, k)})
    return rows


def print_report(report: dict, out=None):
    """The lines ``genrenet index`` prints (to ``out``, default stdout)."""
    out = out or sys.stdout
    for name, reason in report["skipped"]:
        print(f"skipped {name}: {reason}", file=out)
    print(f"embedded {report['new']} new, {report['changed']} changed, removed {report['removed']}, kept "
          f"{report['kept']}: {report['count']} songs in {report['index']} ({report['search']} search)", file=out)


def similar_table(rows: list) -> str:
    """``similar``'s rows as text: each query, then its neighbours ranked with their scores."""
    blocks = []
    for row in rows:
        lines = [row["file"]] + ([f"  error: {row['error']}"] if "error" in row else
                                 [f"  {rank:>3}  {n['score']:.3f}  {n['file']}"
                                  for rank, n in enumerate(row["neighbours"], 1)])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
