"""The similar-songs index: `genrenet index` then `genrenet similar`, incremental updates (unchanged, changed,
removed and new files), refusal of an index made by another model, folders genrenet did not make, files outside
the index, the HNSW graph of large indexes, and the default preset."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import write_tone
from genrenet.library.index import LibraryIndexError, build_index, read_index, similar
from genrenet.library.search import EXACT_MAX, Neighbours, build_graph, exact_search


def _library(folder, n=7, seconds=4.0):
    for i in range(n):
        write_tone(folder / f"song{i}.wav", seconds=seconds, freq=200.0 + 70 * i)
    return folder


@pytest.fixture
def library(tmp_path):
    return _library(tmp_path / "music")


def _cli(capsys, *args):
    """``genrenet ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    from genrenet.cli import main

    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_index_then_similar_gives_k_scored_neighbours_without_the_query(tiny_run, library, tmp_path, capsys):
    idx = tmp_path / "idx"
    code, out, err = _cli(capsys, "index", tiny_run, library, "--out", idx)
    assert code == 0, err
    assert "embedded 7 new, 0 changed, removed 0, kept 0" in out
    query = library / "song3.wav"
    code, out, err = _cli(capsys, "similar", idx, query, "--k", "5", "--json")
    assert code == 0, err
    row = json.loads(out.strip().splitlines()[-1])
    assert row["file"] == str(query)
    assert len(row["neighbours"]) == 5
    names = [n["file"] for n in row["neighbours"]]
    assert str(query.resolve()) not in names and len(set(names)) == 5
    scores = [n["score"] for n in row["neighbours"]]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)

    code, out, err = _cli(capsys, "index", tiny_run, library, "--out", idx)
    assert code == 0, err
    assert "embedded 0 new, 0 changed, removed 0, kept 7" in out
    code, out, _ = _cli(capsys, "similar", idx, query, "--k", "2")
    assert code == 0 and out.splitlines()[0] == str(query)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["1", "2"]


def test_an_update_embeds_changed_and_new_files_and_drops_removed_ones(tiny_run, library, tmp_path):
    idx = tmp_path / "idx"
    build_index(str(tiny_run), [library], idx, verbose=0)
    _, before = read_index(idx)
    changed = library / "song2.wav"
    write_tone(changed, seconds=6.0, freq=1800.0)  # other audio, other size
    os.remove(library / "song5.wav")
    write_tone(library / "extra.wav", seconds=4.0, freq=900.0)
    report = build_index(str(tiny_run), [library], idx, verbose=0)
    assert (report["new"], report["changed"], report["removed"], report["kept"]) == (1, 1, 1, 5)
    _, after = read_index(idx)
    assert sorted(after.files) == sorted(str(p) for p in library.glob("*.wav"))
    old = before.vectors[before.files.index(str(changed))]
    new = after.vectors[after.files.index(str(changed))]
    assert not np.allclose(old, new)
    np.testing.assert_allclose(np.linalg.norm(after.vectors, axis=1), 1.0, rtol=1e-5)
    unchanged = str(library / "song1.wav")
    np.testing.assert_array_equal(before.vectors[before.files.index(unchanged)],
                                  after.vectors[after.files.index(unchanged)])


def test_an_index_made_by_another_model_is_refused_and_left_as_it_was(tiny_run, library, tmp_path, capsys):
    from genrenet.run import Run, write_run

    run = Run(str(tiny_run))
    model = run.load_model()
    model.set_weights([w * 1.5 for w in model.get_weights()])
    other = write_run(str(tmp_path / "other"), model, labels=list(run.labels), config=run.config)
    idx = tmp_path / "idx"
    build_index(str(tiny_run), [library], idx, verbose=0)
    data = (idx / "index.npz").read_bytes()
    with pytest.raises(LibraryIndexError, match="built with .*model differ"):
        build_index(other.path, [library], idx, verbose=0)
    assert (idx / "index.npz").read_bytes() == data
    code, _, err = _cli(capsys, "index", other.path, library, "--out", idx)
    assert code == 2 and "--out:" in err and "cannot be compared" in err


def test_a_file_outside_the_index_is_embedded_with_the_index_model(tiny_run, library, tmp_path):
    idx = tmp_path / "idx"
    build_index(str(tiny_run), [library], idx, verbose=0)
    copy = tmp_path / "elsewhere" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy(library / "song4.wav", copy)
    bad = tmp_path / "elsewhere" / "broken.wav"
    bad.write_bytes(b"RIFF not audio")
    rows = similar(idx, [copy, bad], k=3, verbose=0)
    assert rows[0]["neighbours"][0]["file"] == str(library / "song4.wav")
    assert rows[0]["neighbours"][0]["score"] > 0.999
    assert rows[1]["file"] == str(bad) and "error" in rows[1]


def test_a_symlinked_song_is_indexed_once_and_a_symlinked_query_leaves_its_target_out(tiny_run, library, tmp_path):
    (library / "alias.wav").symlink_to(library / "song2.wav")
    idx = tmp_path / "idx"
    report = build_index(str(tiny_run), [library], idx, verbose=0)
    assert report["count"] == 7
    link = tmp_path / "query.wav"
    link.symlink_to(library / "song2.wav")
    row = similar(idx, [link], k=6, verbose=0)[0]
    names = [n["file"] for n in row["neighbours"]]
    assert row["file"] == str(link) and len(names) == 6
    assert str(library / "song2.wav") not in names and str(library / "alias.wav") not in names


def test_a_folder_genrenet_did_not_make_is_never_written(tiny_run, library, tmp_path):
    theirs = tmp_path / "documents"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(LibraryIndexError, match="not a genrenet index"):
        build_index(str(tiny_run), [library], theirs, verbose=0)
    assert sorted(os.listdir(theirs)) == ["notes.txt"]
    with pytest.raises(LibraryIndexError, match="not a genrenet index"):
        similar(theirs, [library / "song0.wav"], verbose=0)


def test_large_indexes_are_searched_on_an_hnsw_graph_that_finds_the_exact_neighbours(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((50, 32))
    x = (centres[rng.integers(0, 50, 3000)] + 0.5 * rng.standard_normal((3000, 32))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    build_graph(x, str(tmp_path / "graph.faiss"))
    hnsw = Neighbours(x, str(tmp_path / "graph.faiss"))
    assert hnsw.method.startswith("hnsw") and EXACT_MAX > 3000
    queries = x[:100]
    exact_ids, exact_scores = exact_search(x, queries, 10)
    ids, scores = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids)])
    assert recall > 0.95
    np.testing.assert_allclose(scores[:, 0], exact_scores[:, 0], atol=1e-5)


@pytest.mark.slow
def test_the_default_preset_indexes_and_finds_a_copied_song(preset_cache, tmp_path, capsys):
    library = _library(tmp_path / "music", n=4, seconds=3.5)
    idx = tmp_path / "idx"
    code, out, err = _cli(capsys, "index", library, "--out", idx)  # no source: the default preset
    assert code == 0, err
    assert "embedded 4 new" in out
    meta, entries = read_index(idx)
    assert meta["source"] == "musicnn-msd-gtzan" and entries.vectors.shape == (4, 200)
    shutil.copy(library / "song1.wav", tmp_path / "query.wav")
    row = similar(idx, [tmp_path / "query.wav"], k=2, verbose=0)[0]
    assert row["neighbours"][0]["file"] == str(library / "song1.wav")


def test_an_index_above_the_exact_size_is_written_and_searched_with_its_graph(tiny_run, library, tmp_path,
                                                                             monkeypatch):
    import genrenet.library.index as index_module

    monkeypatch.setattr(index_module, "EXACT_MAX", 3)
    idx = tmp_path / "idx"
    report = build_index(str(tiny_run), [library], idx, verbose=0)
    assert report["search"] == "hnsw (faiss)"
    first_graph = [n for n in os.listdir(idx) if n.startswith("graph-")]
    os.remove(library / "song6.wav")
    build_index(str(tiny_run), [library], idx, verbose=0)
    graphs = [n for n in os.listdir(idx) if n.startswith("graph-")]
    assert len(first_graph) == 1 and len(graphs) == 1 and graphs != first_graph
    row = similar(idx, [library / "song0.wav"], k=5, verbose=0)[0]
    assert len(row["neighbours"]) == 5
    assert str(library / "song0.wav") not in [n["file"] for n in row["neighbours"]]


@pytest.mark.slow
def test_an_index_built_on_beam_holds_the_embeddings_of_a_local_build(tiny_run, library, tmp_path):
    pytest.importorskip("apache_beam")
    local, beam = tmp_path / "local", tmp_path / "beam"
    build_index(str(tiny_run), [library], local, verbose=0)
    report = build_index(str(tiny_run), [library], beam, runner="DirectRunner", verbose=0)
    assert (report["new"], report["count"]) == (7, 7)
    assert not [n for n in os.listdir(beam) if n.startswith(".shards-")]
    _, a = read_index(local)
    _, b = read_index(beam)
    order = [b.files.index(f) for f in a.files]
    np.testing.assert_allclose(b.vectors[order], a.vectors, atol=1e-4)
    write_tone(library / "new.wav", seconds=4.0, freq=1234.0)
    again = build_index(str(tiny_run), [library], beam, runner="DirectRunner", verbose=0)
    assert (again["new"], again["kept"]) == (1, 7)


def test_the_app_with_an_index_has_a_similar_songs_tab_that_ranks_an_uploaded_copy_first(tiny_run, library,
                                                                                           tmp_path):
    pytest.importorskip("gradio", reason="the app needs the [app] extra")
    from genrenet.library.index import LibraryIndex
    from genrenet.serve.app import build_app, make_similar_handler

    idx = tmp_path / "idx"
    build_index(str(tiny_run), [library], idx, verbose=0)
    upload = tmp_path / "upload" / "mine.wav"
    upload.parent.mkdir()
    shutil.copy(library / "song2.wav", upload)
    rows = make_similar_handler(LibraryIndex(idx))(str(upload))
    assert [r[0] for r in rows] == list(range(1, 8))
    assert rows[0][2] == str(library / "song2.wav") and rows[0][1] > 0.999
    demo = build_app(str(tiny_run), index=str(idx))
    assert "similar" in {getattr(fn, "api_name", None) for fn in demo.fns.values()}
    assert "similar" not in {getattr(fn, "api_name", None) for fn in build_app(str(tiny_run)).fns.values()}


def test_an_export_is_refused_with_what_to_index_with_instead(tiny_run, library, tmp_path):
    import dataclasses

    from genrenet import Classifier
    from genrenet.infer.source import open_source

    export = Classifier(dataclasses.replace(open_source(str(tiny_run)), kind="savedmodel"))
    with pytest.raises(LibraryIndexError, match="savedmodel export has none: index with the run directory"):
        build_index(export, [library], tmp_path / "idx", verbose=0)
    assert not (tmp_path / "idx").exists()
