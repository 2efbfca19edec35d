"""Multi-label (tagging) data, models, training, metrics and thresholds, from a CSV with a ``labels`` column to
predict and exports."""
import csv
import json
import os

import keras
import numpy as np
import pytest
import soundfile as sf

import genrenet
from genrenet.errors import ConfigError
from genrenet.data import load_dataset
from genrenet.data.training import label_targets

SR = 22050
TONES = {"low": 220.0, "mid": 660.0, "high": 1760.0}
TAG_SETS = [("low",), ("mid",), ("high",), ("low", "mid"), ("mid", "high"), ("low", "high")]
TINY_KWARGS = {"filters": [8, 16], "dense_units": [16]}


def write_chord(path, tags, seconds=3.5, seed=0):
    """A clip sounding one tone per tag (plus a little noise): its tags are audible."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(0.3 * np.sin(2 * np.pi * TONES[g] * (1 + 0.01 * seed) * t) for g in tags)
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    sf.write(str(path), x.astype(np.float32), SR)


def write_tag_csv(folder, clips=12, extra_rows=()):
    """``data.csv`` (path,labels) over ``clips`` chords cycling through :data:`TAG_SETS`."""
    rows = []
    for i in range(clips):
        tags = TAG_SETS[i % len(TAG_SETS)]
        write_chord(folder / f"c{i}.wav", tags, seed=i)
        rows.append([f"c{i}.wav", "|".join(tags)])
    with open(folder / "data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        w.writerows(rows + list(extra_rows))
    return folder / "data.csv"


# ------------------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", genrenet.list_models())
def test_every_registered_model_builds_with_independent_sigmoid_outputs(name):
    keras.utils.set_random_seed(0)
    model = genrenet.build_model(name, num_classes=3, multi_label=True)
    assert model.get_layer("probabilities").activation is keras.activations.sigmoid
    x = np.random.default_rng(0).standard_normal((1, model.input_shape[-1])).astype(np.float32) * 0.1
    p = np.asarray(model(x, training=False))
    assert p.shape == (1, 3) and np.all((p > 0) & (p < 1))
    assert genrenet.build_model("cnn", num_classes=3).get_layer("probabilities").activation is \
        keras.activations.softmax


def test_a_builder_without_multi_label_is_refused_clearly():
    from genrenet import registry

    @registry.register_model("test_softmax_only", description="softmax only")
    def softmax_only(num_classes=10, *, features, window_seconds, dropout=0.0):
        x = registry.keras.Input((int(window_seconds * features.sample_rate),), name="waveform")
        return keras.Model(x, keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x))

    try:
        with pytest.raises(ConfigError, match="multi_label"):
            genrenet.build_model("test_softmax_only", 3, multi_label=True)
        assert genrenet.build_model("test_softmax_only", 3).output_shape == (None, 3)
    finally:
        registry._REGISTRY.pop("test_softmax_only")


# ------------------------------------------------------------------------------------------------- csv
def test_csv_labels_column_gives_multi_hot_targets(tmp_path):
    path = write_tag_csv(tmp_path, clips=6, extra_rows=[["c0.wav", " | "]])
    ds = load_dataset(f"csv:{path}")
    assert ds.multi_label and ds.labels == ["high", "low", "mid"]
    assert [c.all_labels for c in ds.clips][:4] == [("low",), ("mid",), ("high",), ("low", "mid")]
    assert ds.skipped == [(f"{path}:8", "empty path or labels")]
    targets = label_targets(ds.clips, ds.labels)
    np.testing.assert_array_equal(targets[3], [0, 1, 1])
    np.testing.assert_array_equal(targets.sum(1), [1, 1, 1, 2, 2, 2])
    assert "3 tags" in ds.summary()


def test_csv_label_column_stays_single_label(tmp_path):
    write_chord(tmp_path / "a.wav", ("low",))
    (tmp_path / "d.csv").write_text("path,label\na.wav,rock|pop\n")
    ds = load_dataset(f"csv:{tmp_path / 'd.csv'}")
    assert not ds.multi_label and ds.labels == ["rock|pop"]


# ------------------------------------------------------------------------------------------------- MTG-Jamendo
JAMENDO_HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS\n"
JAMENDO_SPLITS = {
    "train": ["track_0000214\tartist_000014\talbum_000031\t14/214.mp3\t124.6\tgenre---punkrock\tgenre---rock",
              "track_0000215\tartist_000014\talbum_000031\t15/215.mp3\t98.2\tgenre---rock",
              "track_0001729\tartist_000264\talbum_000252\t29/1729.mp3\t270.2\tgenre---pop\tgenre---poprock"],
    "validation": ["track_0000773\tartist_000104\talbum_000126\t73/773.mp3\t275.3\tgenre---easylistening\t"
                   "genre---electronic\tgenre---lounge"],
    "test": ["track_0002211\tartist_000276\talbum_000357\t11/2211.mp3\t292.9\tgenre---funk\tgenre---jazz",
             "track_0002212\tartist_000276\talbum_000357\t12/2212.mp3\t323.8\tgenre---jazz"],
}


def small_file(path):
    """A few bytes of audio at ``path`` (loaders of large datasets check existence and size, not content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"ID3" + bytes(61))


def write_jamendo(root, missing=("12/2212.mp3",), low=("15/215.mp3",)):
    """A checkout of mtg-jamendo-dataset (data/splits/split-0/autotagging_genre-*.tsv) with audio/NN/ID.mp3."""
    folder = root / "data" / "splits" / "split-0"
    folder.mkdir(parents=True)
    for part, rows in JAMENDO_SPLITS.items():
        (folder / f"autotagging_genre-{part}.tsv").write_text(JAMENDO_HEADER + "".join(r + "\n" for r in rows))
        for row in rows:
            rel = row.split("\t")[3]
            if rel in missing:
                continue
            small_file(root / "audio" / (rel.replace(".mp3", ".low.mp3") if rel in low else rel))
    small_file(root / "audio" / "99" / "999.mp3")  # a track of another subset
    return root


def test_jamendo_reads_the_official_split_with_all_genre_tags_and_artist_groups(tmp_path):
    root = write_jamendo(tmp_path)
    ds = load_dataset(f"jamendo:{root}?subset=genre&split=0")
    assert ds.multi_label and ds.name == "jamendo_genre_split0"
    by_id = {c.id: c for c in ds.clips}
    assert set(by_id) == {"track_0000214", "track_0000215", "track_0001729", "track_0000773", "track_0002211"}
    assert by_id["track_0000214"].all_labels == ("punkrock", "rock")
    assert by_id["track_0000773"].all_labels == ("easylistening", "electronic", "lounge")
    assert by_id["track_0000773"].split == "val" and by_id["track_0002211"].split == "test"
    assert by_id["track_0000214"].group == by_id["track_0000215"].group == "artist_000014"
    assert by_id["track_0000214"].seconds == 124.6
    assert by_id["track_0000215"].path.endswith("audio/15/215.low.mp3")
    assert "jazz" in ds.labels and "genre---jazz" not in ds.labels
    assert ds.skipped == [(str(root / "audio" / "12" / "2212.mp3"), "file not found (listed in "
                                                                   "autotagging_genre-test.tsv)")]
    assert ds.ignored == [(str(root / "audio" / "99" / "999.mp3"), "not a track of MTG-Jamendo genre split-0")]
    train_artists = {c.group for c in ds.split("train")}
    assert not train_artists & {c.group for c in ds.split("test") + ds.split("val")}


def test_jamendo_refuses_what_is_not_its_format(tmp_path):
    from genrenet.errors import DatasetError

    root = write_jamendo(tmp_path)
    with pytest.raises(DatasetError, match="split must be one of the official splits 0-4"):
        load_dataset(f"jamendo:{root}?split=7")
    with pytest.raises(DatasetError, match="no split-1 folder"):
        load_dataset(f"jamendo:{root}?split=1")
    tsv = root / "data" / "splits" / "split-0" / "autotagging_genre-train.tsv"
    tsv.write_text("TRACK_ID,ARTIST_ID,ALBUM_ID,PATH,DURATION,TAGS\n")
    with pytest.raises(DatasetError, match="not an MTG-Jamendo split file"):
        load_dataset(f"jamendo:{root}")


# ------------------------------------------------------------------------------------------------- MagnaTagATune
MTT_TAGS = ["guitar", "classical", "slow", "no voice", "singer"]
MTT_ROWS = [  # clip_id, tags on, mp3_path
    ("2", ["classical"], "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3"),
    ("6", ["classical", "slow"], "f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-59-88.mp3"),
    ("10", ["guitar"], "c/jacob_heringman-josquin_des_prez_lute_settings-19-gintzler__pater_noster-0-29.mp3"),
    ("11", ["guitar", "no voice"], "c/jacob_heringman-josquin_des_prez_lute_settings-19-gintzler__pater_noster"
                                   "-30-59.mp3"),
    ("13", [], "d/tilopa-turkishauch-07-lasst_uns_erfreuen-0-29.mp3"),
    ("15", ["slow"], "d/tilopa-turkishauch-07-lasst_uns_erfreuen-30-59.mp3"),
]


def write_mtt(root, tags_npy=True):
    """annotations_final.csv as the dataset ships it (tab-separated, every field quoted) and the split lists of
    sota-music-tagging-models (NumPy string arrays of 'INDEX<TAB>mp3_path')."""
    root.mkdir(parents=True, exist_ok=True)
    quote = lambda values: "\t".join(f'"{v}"' for v in values) + "\n"  # noqa: E731
    text = quote(["clip_id"] + MTT_TAGS + ["mp3_path"])
    for clip_id, on, mp3 in MTT_ROWS:
        text += quote([clip_id] + [int(t in on) for t in MTT_TAGS] + [mp3])
        small_file(root / mp3)
    (root / "annotations_final.csv").write_text(text)
    split = root / "split"
    split.mkdir()
    for name, rows in (("train", [0, 2, 4]), ("valid", [1]), ("test", [3])):
        np.save(split / f"{name}.npy", np.array([f"{i}\t{MTT_ROWS[i][2]}" for i in rows]))
    if tags_npy:
        np.save(split / "tags.npy", np.array(["guitar", "classical", "slow", "no voice"]))
    return root


def test_mtt_reads_top_tags_split_lists_and_song_groups(tmp_path):
    root = write_mtt(tmp_path / "mtt")
    ds = load_dataset(f"mtt:{root}")
    by_id = {c.id: c for c in ds.clips}
    assert set(by_id) == {"2", "6", "10", "11"}  # 13 has no top tag, 15 is in no split list
    assert by_id["11"].all_labels == ("guitar", "no voice") and by_id["11"].split == "test"
    assert by_id["6"].split == "val" and by_id["2"].split == "train"
    assert by_id["10"].group == by_id["11"].group == ("c/jacob_heringman-josquin_des_prez_lute_settings-19-"
                                                      "gintzler__pater_noster")
    assert ds.labels == ["classical", "guitar", "no voice", "slow"] and ds.multi_label
    assert ds.skipped == [(str(root / MTT_ROWS[4][2]), "none of the top-50 tags")]


def test_mtt_without_split_lists_has_no_predefined_split(tmp_path):
    root = write_mtt(tmp_path / "mtt")
    for f in (root / "split").iterdir():
        f.unlink()
    ds = load_dataset(f"mtt:{root}")
    assert not ds.has_splits and len(ds.clips) == 5 and "no split lists" in ds.notes[0]
    (root / "annotations_final.csv").write_text('"clip_id","guitar","mp3_path"\n')
    from genrenet.errors import DatasetError
    with pytest.raises(DatasetError, match="not MagnaTagATune's annotations_final.csv"):
        load_dataset(f"mtt:{root}")


# ------------------------------------------------------------------------------------------------- FMA genres_all
def write_fma(root):
    """fma_metadata/tracks.csv (3-row header, track.genre_top, track.genres, track.genres_all) and genres.csv
    (genre_id,#tracks,parent,title,top_level), with fma_small/NNN/NNNNNN.mp3."""
    meta = root / "fma_metadata"
    meta.mkdir(parents=True)
    top = ["", "artist", "set", "set", "track", "track", "track", "track"]
    names = ["", "id", "split", "subset", "genre_top", "genres", "genres_all", "title"]
    rows = [(2, 1, "training", "Hip-Hop", "[21]", "[21]"),
            (5, 2, "validation", "Experimental", "[1]", "[1, 38]"),
            (10, 3, "test", "", "[76, 103]", "[10, 76, 103]"),
            (11, 4, "training", "", "[]", "[]")]
    with open(meta / "tracks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerows([top, names, ["track_id"] + [""] * 7])
        for tid, artist, split, genre, genres, genres_all in rows:
            w.writerow([tid, artist, split, "small", genre, genres, genres_all, "A title, quoted"])
            small_file(root / "fma_small" / f"{tid:06d}"[:3] / f"{tid:06d}.mp3")
    (meta / "genres.csv").write_text("genre_id,#tracks,parent,title,top_level\n1,8693,38,Avant-Garde,38\n"
                                     "10,13845,0,Pop,10\n21,8389,0,Hip-Hop,21\n38,38154,0,Experimental,38\n"
                                     "76,2071,10,Experimental Pop,10\n103,1181,76,\"Pop, Experimental\",10\n")
    return root


def test_fma_genres_all_gives_every_genre_with_its_ancestors(tmp_path):
    root = write_fma(tmp_path)
    ds = load_dataset(f"fma:{root}?labels=genres_all")
    by_id = {c.id: c for c in ds.clips}
    assert set(by_id) == {"000002", "000005", "000010"}
    assert by_id["000005"].all_labels == ("Avant-Garde", "Experimental") and by_id["000005"].label == "Experimental"
    assert by_id["000010"].all_labels == ("Pop", "Experimental Pop", "Pop, Experimental")
    assert by_id["000002"].all_labels == ("Hip-Hop",) and by_id["000010"].split == "test"
    assert ds.multi_label
    reasons = {os.path.relpath(p, root): r for p, r in ds.ignored}
    assert reasons["fma_small/000/000011.mp3"] == "track without any genre in tracks.csv"
    single = load_dataset(f"fma:{root}")
    assert not single.multi_label and {c.id for c in single.clips} == {"000002", "000005"}


# ------------------------------------------------------------------------------------------------- a trained tagger
@pytest.fixture(scope="module")
def tag_run(tmp_path_factory):
    """One tiny cnn trained for one epoch on 12 chords with a held-out quarter: sigmoid outputs, BCE, thresholds."""
    from genrenet.training.trainer import train

    folder = tmp_path_factory.mktemp("tags")
    path = write_tag_csv(folder)
    run = train("cnn", f"csv:{path}", str(folder / "run"), epochs=1, verbose=0, val_fraction=0.25,
                pos_weight="balanced", model_kwargs=TINY_KWARGS)
    return run, path


def test_a_labels_csv_trains_a_sigmoid_model_with_binary_cross_entropy(tag_run):
    run, _ = tag_run
    assert run.config["model"]["multi_label"] is True and run.config["training"]["multi_label"] is True
    assert run.load_model().get_layer("probabilities").activation is keras.activations.sigmoid
    history = (run.path + "/history.csv")
    header = open(history).readline().strip().split(",")
    assert "auc" in header and "val_auc" in header and "accuracy" not in header
    for key in ("val_roc_auc_macro", "val_pr_auc_macro", "val_roc_auc_micro", "val_pr_auc_micro", "val_f1_macro"):
        assert 0.0 <= run.metrics[key] <= 1.0


def test_thresholds_are_tuned_on_the_validation_clips_and_saved(tag_run):
    run, _ = tag_run
    saved = json.load(open(os.path.join(run.path, "thresholds.json")))
    assert saved["labels"] == run.labels == ["high", "low", "mid"]
    assert len(saved["thresholds"]) == 3 and all(0.0 <= t <= 1.0 for t in saved["thresholds"])
    assert saved["method"].startswith("max F1") and saved["clips"] == run.config["data"]["val_clips"] > 0
    assert genrenet.Classifier.from_preset(run.path).thresholds == pytest.approx(saved["thresholds"])


def test_evaluate_reports_exact_sklearn_aucs_of_its_saved_predictions(tag_run, tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    run, path = tag_run
    metrics = genrenet.evaluate(run.path, f"csv:{path}", split="all", out=str(tmp_path / "ev"), verbose=0)
    with open(tmp_path / "ev" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and metrics["training_clips"] == run.config["data"]["train_clips"]
    truth = np.array([[tag in r["labels"].split("|") for tag in run.labels] for r in rows], dtype=int)
    scores = np.array([[float(r[f"p_{tag}"]) for tag in run.labels] for r in rows])
    assert metrics["roc_auc_macro"] == pytest.approx(roc_auc_score(truth, scores, average="macro"), abs=1e-5)
    assert metrics["pr_auc_macro"] == pytest.approx(average_precision_score(truth, scores, average="macro"),
                                                    abs=1e-5)
    assert metrics["roc_auc_micro"] == pytest.approx(roc_auc_score(truth, scores, average="micro"), abs=1e-5)
    assert metrics["pr_auc_micro"] == pytest.approx(average_precision_score(truth, scores, average="micro"),
                                                    abs=1e-5)
    saved = json.load(open(tmp_path / "ev" / "metrics.json"))
    assert saved["roc_auc_macro"] == metrics["roc_auc_macro"] and saved["tags_ranked"] == 3
    with open(tmp_path / "ev" / "per_tag.csv") as f:
        per_tag = {r["tag"]: r for r in csv.DictReader(f)}
    assert int(per_tag["low"]["support"]) == truth[:, 1].sum() == 6
    assert float(per_tag["mid"]["roc_auc"]) == pytest.approx(roc_auc_score(truth[:, 2], scores[:, 2]), abs=1e-5)
    thresholds = genrenet.Classifier.from_preset(run.path).thresholds
    predicted = [r["predicted"].split("|") if r["predicted"] else [] for r in rows]
    assert predicted == [[t for t in sorted(run.labels, key=lambda t: -float(r[f"p_{t}"]))
                          if float(r[f"p_{t}"]) >= thresholds[run.labels.index(t)] - 5e-7] for r in rows]


def test_the_evaluate_command_prints_a_taggers_figures(tag_run, tmp_path):
    from conftest import run_cli

    run, path = tag_run
    r = run_cli("evaluate", run.path, "--data", f"csv:{path}", "--split", "all")
    assert r.returncode == 0, r.stderr
    saved = json.load(open(os.path.join(run.path, f"eval-{path.stem}-all", "metrics.json")))
    assert f"ROC-AUC {saved['roc_auc_macro']:.3f}, PR-AUC {saved['pr_auc_macro']:.3f}" in r.stdout
    assert "per_tag.csv" in r.stdout


def test_predict_rows_carry_the_tags_passing_the_runs_thresholds(tag_run):
    run, path = tag_run
    clf = genrenet.Classifier.from_preset(run.path)
    files = [str(path.parent / f"c{i}.wav") for i in range(6)]
    for row in clf.predict(files, verbose=0):
        probs = row["probabilities"]
        expected = sorted((t for t in run.labels if probs[t] >= clf.thresholds[run.labels.index(t)]),
                          key=lambda t: -probs[t])
        assert [t for t, _ in row["tags"]] == expected
        assert all(p == pytest.approx(probs[t]) for t, p in row["tags"])
        assert len(probs) == 3


TINIEST = dict(epochs=1, verbose=0, val_fraction=0, augment="none", model_kwargs={"filters": [4], "dense_units": [4]},
               window_seconds=1.0)


@pytest.mark.slow
def test_a_run_without_validation_clips_tunes_thresholds_out_of_fold(tmp_path):
    from genrenet.training.trainer import train

    path = write_tag_csv(tmp_path, clips=6)
    run = train("cnn", f"csv:{path}", str(tmp_path / "run"), threshold_folds=2, **TINIEST)
    saved = json.load(open(os.path.join(run.path, "thresholds.json")))
    assert saved["method"] == "max F1 per tag on out-of-fold predictions (2 folds of the training clips)"
    assert saved["clips"] == 6 and len(saved["thresholds"]) == 3 and saved["thresholds"] != [0.5, 0.5, 0.5]
    assert not [f for f in os.listdir(run.path) if f.startswith(".tmp")]  # the extra trainings leave nothing
    assert set(os.listdir(run.path)) >= {"model.keras", "thresholds.json", "config.json"}


def test_without_validation_clips_or_folds_every_threshold_is_one_half(tmp_path):
    from genrenet.training.trainer import train

    path = write_tag_csv(tmp_path, clips=6)
    plain = train("cnn", f"csv:{path}", str(tmp_path / "plain"), threshold_folds=0, **TINIEST)
    saved = json.load(open(os.path.join(plain.path, "thresholds.json")))
    assert saved["thresholds"] == [0.5, 0.5, 0.5] and saved["method"].startswith("default: no validation")


def test_settings_that_contradict_multi_label_data_are_refused_before_training(tmp_path):
    from genrenet.training.trainer import train

    path = write_tag_csv(tmp_path, clips=6)
    with pytest.raises(ConfigError) as e:
        train("cnn", f"csv:{path}", str(tmp_path / "a"), multi_label=False, verbose=0)
    assert e.value.param == "multi_label"
    with pytest.raises(ConfigError) as e:
        train("cnn", "synthetic:classes=2,clips=2,seconds=1", str(tmp_path / "b"), pos_weight="balanced", verbose=0)
    assert e.value.param == "pos_weight"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_balanced_pos_weight_weighs_rare_tags_up_to_the_cap():
    import tensorflow as tf

    from genrenet.training.objective import POS_WEIGHT_CAP, WeightedBinaryCrossentropy, balanced_pos_weight

    targets = np.zeros((1000, 3), np.float32)
    targets[:500, 0], targets[:10, 1], targets[:1, 2] = 1, 1, 1
    np.testing.assert_allclose(balanced_pos_weight(targets), [1.0, 99.0, POS_WEIGHT_CAP])
    y, p = np.array([[1.0, 0.0]]), np.array([[0.25, 0.25]])
    loss = WeightedBinaryCrossentropy([3.0, 1.0])(tf.constant(y), tf.constant(p))
    assert float(loss) == pytest.approx(-(3 * np.log(0.25) + np.log(0.75)) / 2, rel=1e-5)
    plain = keras.losses.BinaryCrossentropy()(y, p)
    assert float(WeightedBinaryCrossentropy([1.0, 1.0])(y, p)) == pytest.approx(float(plain), rel=1e-5)


# ------------------------------------------------------------------------------------------------- exports
@pytest.fixture(scope="module")
def tag_export(tag_run, tmp_path_factory):
    from genrenet.serve.export import export

    run, _ = tag_run
    return export(run.path, str(tmp_path_factory.mktemp("export")), tflite=True, verbose=0)


@pytest.mark.slow
def test_the_saved_model_applies_the_runs_thresholds(tag_run, tag_export):
    import tensorflow as tf

    run, path = tag_run
    files = [str(path.parent / f"c{i}.wav") for i in range(6)]
    rows = genrenet.Classifier.from_preset(run.path).predict(files, verbose=0)
    served = tf.saved_model.load(tag_export).signatures["classify_wav"]
    for f, row in zip(files, rows):
        out = served(wav_bytes=tf.constant([open(f, "rb").read()]))
        tags = [t.decode() for t in out["tags"].numpy()[0] if t]
        assert tags == [t for t, _ in row["tags"]]
        np.testing.assert_allclose(out["probabilities"].numpy()[0], [row["probabilities"][t] for t in run.labels],
                                   atol=1e-4)
    meta = json.load(open(os.path.join(tag_export, "assets", "genrenet.json")))
    assert meta["multi_label"] is True and "tags" in meta["outputs"]
    exported = genrenet.Classifier.from_preset(tag_export)
    assert exported.multi_label and exported.thresholds == pytest.approx(
        genrenet.Classifier.from_preset(run.path).thresholds)
    assert [t for t, _ in exported.predict(files[:1], verbose=0)[0]["tags"]] == [t for t, _ in rows[0]["tags"]]


@pytest.mark.slow
def test_a_multi_label_tflite_export_loads_in_litert_and_mediapipe_with_its_thresholds(tag_run, tag_export):
    from genrenet.infer.tflite_metadata import read_metadata

    run, path = tag_run
    tflite = os.path.join(tag_export, "model.tflite")
    content = open(tflite, "rb").read()
    meta = read_metadata(content)
    thresholds = genrenet.Classifier.from_preset(run.path).thresholds
    assert meta["labels"] == run.labels and meta["score_thresholds"] == pytest.approx(thresholds)
    assert meta["global_score_threshold"] == pytest.approx(max(min(thresholds), 1e-6))
    lite = genrenet.Classifier.from_preset(tflite)
    assert lite.multi_label and lite.thresholds == pytest.approx(thresholds)
    f = str(path.parent / "c3.wav")
    keras_row = genrenet.Classifier.from_preset(run.path).predict([f], verbose=0)[0]
    lite_row = lite.predict([f], verbose=0)[0]
    assert [t for t, _ in lite_row["tags"]] == [t for t, _ in keras_row["tags"]]
    try:
        from mediapipe.tasks.python import audio
        from mediapipe.tasks.python.components.containers.audio_data import AudioData
        from mediapipe.tasks.python.core.base_options import BaseOptions
    except ImportError as e:
        if os.environ.get("GENRENET_REQUIRE_MEDIAPIPE"):
            raise
        pytest.skip(f"mediapipe is not installed: {e}")
    window = lite.window_samples
    wave, sr = sf.read(f, dtype="float32")
    options = audio.AudioClassifierOptions(base_options=BaseOptions(model_asset_path=tflite), max_results=-1)
    with audio.AudioClassifier.create_from_options(options) as classifier:
        results = classifier.classify(AudioData.create_from_array(wave[:window], sr))
    got = {c.category_name: c.score for c in results[0].classifications[0].categories}
    probs = lite.forward_for(1)(wave[None, :window].astype(np.float32))[0]
    expected = {t: float(p) for t, p, th in zip(run.labels, probs, thresholds) if p >= th}
    assert set(got) == set(expected)
    assert all(got[t] == pytest.approx(expected[t], abs=1e-4) for t in got)


@pytest.mark.slow
def test_a_prepared_multi_label_dataset_keeps_every_tag(tmp_path):
    from genrenet.data.prepare import prepare

    path = write_tag_csv(tmp_path, clips=6)
    prepare(f"csv:{path}", str(tmp_path / "prepared" / "clips"), sample_rate=SR, num_shards=1)
    records = load_dataset(f"tfrecord:{tmp_path / 'prepared' / 'clips'}")
    assert records.multi_label and records.labels == ["high", "low", "mid"]
    assert sorted(c.all_labels for c in records.clips) == sorted(c.all_labels for c in load_dataset(
        f"csv:{path}").clips)
