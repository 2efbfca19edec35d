"""Tagger presets, tag rows and label maps: what a user relies on when a model gives tags instead of one genre."""
import json

import numpy as np
import pytest

from conftest import GTZAN_DEV, REPO, run_cli, write_tone

MSD_MAP = REPO / "genrenet" / "presets" / "maps" / "msd-to-gtzan.json"
TAGGERS = ("musicnn-msd-tags", "musicnn-mtt-tags")


def test_tagger_presets_are_listed_as_multi_label_with_their_50_tags():
    import genrenet
    from genrenet.models.musicnn import MSD_LABELS, MTT_LABELS

    assert set(TAGGERS) <= set(genrenet.list_presets())
    for name, tags in zip(TAGGERS, (MSD_LABELS, MTT_LABELS)):
        info = genrenet.preset_info(name)
        assert info["multi_label"] is True and info["labels"] == tags and info["accuracy"] is None
        assert "independent" in info["scores"] and "top-k" in info["scores"]
    assert genrenet.preset_info("musicnn-msd-gtzan")["multi_label"] is False


def test_tagger_model_cards_state_data_scores_biases_and_licence():
    from genrenet.presets import preset_dir

    msd = (REPO / preset_dir("musicnn-msd-tags") / "README.md").read_text()
    for fact in ("Million Song Dataset", "independent probability", "do not sum to 1", "Decade tags",
                 "`female vocalists`", "ISC", "no per-tag thresholds"):
        assert fact in msd, fact
    mtt = (REPO / preset_dir("musicnn-mtt-tags") / "README.md").read_text()
    assert "MagnaTagATune" in mtt and "`no vocals`" in mtt and "ISC" in mtt


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """A real GTZAN jazz clip when ../shared is present, else a synthetic tone."""
    clip = GTZAN_DEV / "jazz" / "jazz.00000.wav"
    return clip if clip.is_file() else write_tone(tmp_path_factory.mktemp("song") / "tone.wav", seconds=7.0)


@pytest.fixture(scope="module")
def tag_row(preset_cache, song):
    """``genrenet predict musicnn-msd-tags SONG --json --top-k 4``: the module's one classification."""
    r = run_cli("predict", "musicnn-msd-tags", song, "--json", "--top-k", "4")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])[0]


def test_predict_with_a_tagger_gives_every_tag_and_the_top_k_as_tags(tag_row):
    from genrenet.models.musicnn import MSD_LABELS

    probs = tag_row["probabilities"]
    assert list(probs) == MSD_LABELS and all(0 <= p <= 1 for p in probs.values())
    assert abs(sum(probs.values()) - 1) > 0.05  # independent probabilities, not a distribution
    best = sorted(probs.items(), key=lambda kv: -kv[1])[:4]
    assert [t for t, _ in tag_row["tags"]] == [t for t, _ in best]  # no thresholds: the top-k, best first
    assert tag_row["top"] == tag_row["tags"] and tag_row["label"] == best[0][0] and tag_row["uncertain"] is False
    if GTZAN_DEV.is_dir():
        assert tag_row["label"] == "jazz"


def test_text_output_says_the_scores_are_independent(tag_row):
    from genrenet.cli import result_text

    line = result_text(tag_row)
    assert line.startswith("tags ") and "(independent probabilities)" in line
    assert f"{tag_row['tags'][0][0]} {tag_row['tags'][0][1]:.3f}" in line
    assert result_text({**tag_row, "tags": [], "uncertain": True}).startswith("no tag passes its threshold")


def test_the_shipped_msd_map_folds_tags_into_gtzan_genres(tag_row):
    from genrenet.infer.labelmap import load_label_map
    from genrenet.infer.tags import Outputs
    from genrenet.models.musicnn import MSD_LABELS

    outputs = Outputs(MSD_LABELS, multi_label=True, label_map=load_label_map(MSD_MAP).check(MSD_LABELS))
    labels, probs, passed = outputs.view([tag_row["probabilities"][t] for t in MSD_LABELS])
    assert passed is None and "reggae" not in labels  # MSD has no reggae tag: nothing maps to it
    rock_tags = ["rock", "classic rock", "hard rock", "alternative rock", "indie rock"]
    assert probs[labels.index("rock")] == max(tag_row["probabilities"][t] for t in rock_tags)
    assert "Mellow" not in labels and len(labels) == 9


def test_label_map_many_to_one_max_for_tags_sum_for_softmax_unmapped_dropped(tmp_path):
    from genrenet.infer.labelmap import load_label_map

    path = tmp_path / "map.yaml"
    path.write_text("Hip-Hop: hiphop\nrnb: soul\nsoul: soul\n")
    label_map = load_label_map(path).check(["Hip-Hop", "rnb", "soul", "jazz"])
    probs = np.array([[0.6, 0.2, 0.3, 0.9], [0.1, 0.5, 0.4, 0.0]])
    labels, tags = label_map.apply(["Hip-Hop", "rnb", "soul", "jazz"], probs, multi_label=True)
    assert labels == ["hiphop", "soul"]  # jazz is not in the map: dropped
    np.testing.assert_allclose(tags, [[0.6, 0.3], [0.1, 0.5]])
    _, shares = label_map.apply(["Hip-Hop", "rnb", "soul", "jazz"], probs, multi_label=False)
    np.testing.assert_allclose(shares, [[0.6, 0.5], [0.1, 0.9]])


def test_thresholds_decide_tags_and_a_mapped_label_passes_when_any_of_its_tags_does():
    from genrenet.infer.labelmap import LabelMap
    from genrenet.infer.tags import Outputs, tag_fields

    labels, probs = ["a", "b", "c"], np.array([0.30, 0.20, 0.05])
    outputs = Outputs(labels, multi_label=True, thresholds=(0.5, 0.1, 0.01))
    assert tag_fields(*outputs.view(probs), top_k=3) == {"tags": [["b", 0.2], ["c", 0.05]], "uncertain": False}
    assert tag_fields(*outputs.view(np.array([0.4, 0.05, 0.0])), top_k=3) == {"tags": [], "uncertain": True}
    mapped = Outputs(labels, multi_label=True, thresholds=(0.5, 0.1, 0.01), label_map=LabelMap({"a": "x", "b": "x"}))
    user, user_probs, passed = mapped.view(probs)
    assert user == ["x"] and user_probs.tolist() == [0.30] and passed.tolist() == [True]  # b passed, a did not


@pytest.mark.parametrize("name,content,problem", [
    ("broken.json", "{not json", "not valid JSON"),
    ("list.json", '["rock"]', "non-empty object"),
    ("number.json", '{"rock": 3}', "must map to a label name"),
    ("unknown.json", '{"rokc": "rock"}', "label(s) the model does not have: 'rokc'"),
    ("missing.json", None, "cannot read the label map"),
])
def test_a_bad_label_map_is_a_clear_error_naming_the_file(tmp_path, name, content, problem):
    from genrenet.errors import ConfigError
    from genrenet.infer.labelmap import load_label_map

    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_label_map(path).check(["rock", "pop"])
    assert str(path) in str(e.value) and problem in str(e.value) and e.value.param == "labels_map"


def test_cli_names_the_flag_and_the_file_of_a_bad_label_map(tmp_path, preset_cache, tag_row):
    bad = tmp_path / "map.json"
    bad.write_text('{"rock": ')
    r = run_cli("predict", "musicnn-msd-tags", tag_row["file"], "--labels-map", bad)
    assert r.returncode == 2 and f"--labels-map: {bad}: not valid JSON" in r.stderr


def test_tag_timeline_draws_the_songs_top_tags_over_time():
    from genrenet.infer.timeline import TIMELINE_TAGS, timeline_figure

    labels = [f"tag{i}" for i in range(12)]
    probs = np.tile(np.linspace(0.9, 0.0, 12), (5, 1))  # tag0 best ... tag11 worst, in every window
    probs[:, 11] = [0.0, 0.0, 0.0, 0.0, 1.0]  # loud in one window only: mean 0.2, still in the top ten
    fig = timeline_figure(labels, np.arange(5) * 3.0, probs, 3.0, np.zeros((10, 8)), 0.5, 15.0,
                          multi_label=True)
    tags_ax = fig.axes[1]
    shown = [t.get_text() for t in tags_ax.get_yticklabels()]
    assert len(shown) == TIMELINE_TAGS and shown[0] == "tag0" and "tag11" in shown and "tag10" not in shown
    assert "probability" in tags_ax.get_ylabel()
    assert not tags_ax.collections[0].get_array().max() > 1  # independent probabilities, not stacked


def test_app_shows_a_taggers_tags_and_its_tag_timeline_with_a_label_map(preset_cache, tmp_path):
    pytest.importorskip("gradio")
    from genrenet.infer.classifier import Classifier
    from genrenet.infer.tags import Outputs
    from genrenet.serve.app import make_handlers, model_summary

    clf = Classifier.from_preset("musicnn-msd-tags")
    outputs = Outputs.of(clf, MSD_MAP)
    classify, timeline, _, _ = make_handlers(clf, 3, str(tmp_path), outputs)
    song = str(write_tone(tmp_path / "tone.wav", seconds=3.5))
    chart, result = classify(song)
    assert set(result["probabilities"]) == set(outputs.user_labels) and "reggae" not in result["probabilities"]
    assert chart == dict(result["tags"]) and len(chart) == 3
    fig = timeline(song)
    assert {t.get_text() for t in fig.axes[1].get_yticklabels()} <= set(outputs.user_labels)
    assert "9 tags (independent probabilities) (label map msd-to-gtzan.json)" in model_summary(clf, outputs)


def test_beam_applies_a_label_map_as_predict_does(tiny_run, tmp_path):
    """Softmax classes mapped many-to-one add up; Beam's rows equal predict's with the same map."""
    pytest.importorskip("apache_beam")
    import genrenet
    from genrenet.infer.beam import predict_pipeline

    labels = genrenet.Classifier.from_preset(str(tiny_run)).labels
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({labels[0]: "first", labels[1]: "first"}))  # the third class is dropped
    song = write_tone(tmp_path / "audio" / "tone.wav", seconds=7.0)
    plain = genrenet.predict(str(tiny_run), [str(song)], verbose=0)[0]["probabilities"]
    want = genrenet.predict(str(tiny_run), [str(song)], verbose=0, labels_map=str(label_map))[0]
    predict_pipeline(str(tiny_run), [str(song)], str(tmp_path / "out" / "pred"), labels_map=str(label_map))
    rows = [json.loads(line) for p in (tmp_path / "out").glob("pred-*.jsonl") for line in p.read_text().splitlines()
            if line.strip()]
    assert len(rows) == 1
    got = rows[0]
    assert list(want["probabilities"]) == ["first"] and "tags" not in want
    assert want["probabilities"]["first"] == pytest.approx(plain[labels[0]] + plain[labels[1]], abs=1e-6)
    assert got["label"] == "first" and got["probabilities"]["first"] == pytest.approx(
        want["probabilities"]["first"], abs=1e-5)
