"""Write the tagger presets ``musicnn-msd-tags`` and ``musicnn-mtt-tags`` (genrenet/presets/).

A tagger preset is musicnn with its own 50-tag sigmoid head and the weights shipped in genrenet/models/weights:
nothing is trained, so the preset is only its description: ``config.json`` (the model, with ``multi_label``),
``labels.json`` (the 50 tags in output order), ``metrics.json`` (the original authors' test-set AUCs),
``preset.json`` (what ``genrenet presets`` lists) and the model card ``README.md``. Run from the repository root::

    python tools/build_tag_presets.py

Two runs write identical files.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from genrenet.models.musicnn import (MUSICNN_FEATURES, MUSICNN_WINDOW_SECONDS,  # noqa: E402
                                     pretrained_labels)

PRESETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "genrenet", "presets")
WEIGHTS_NOTE = "shipped with genrenet (genrenet/models/weights/{tag}_musicnn.npz, ISC licence)"
SCORES = ("independent sigmoid probabilities, one per tag (they do not sum to 1); no per-tag thresholds (no "
          "validation data ships with the preset): predict lists the top-k tags")
#: The musicnn package's own test-set scores (``MSD_musicnn/experiment.result``, ``MTT_musicnn/...``).
REPORTED = {"msd": {"roc_auc_macro": 0.8801927178090048, "pr_auc_macro": 0.28906431196994925},
            "mtt": {"roc_auc_macro": 0.9066769123674747, "pr_auc_macro": 0.38310571748763617}}
DATA = {
    "msd": "the Million Song Dataset's ~200k tracks with their 50 most frequent Last.fm tags (musicnn's "
           "training split)",
    "mtt": "MagnaTagATune's ~26k 29-s clips (Magnatune label) with its 50 most frequent tags (the usual "
           "12/1/3 shard split)",
}
SUMMARY = {
    "msd": "50 Last.fm tags (genres, moods, decades, vocals) from any audio: musicnn's own MSD tagger",
    "mtt": "50 MagnaTagATune tags (instruments, genres, moods, vocals) from any audio: musicnn's own MTT tagger",
}


def config(tag: str) -> dict:
    features = MUSICNN_FEATURES.to_dict()
    return {"format": 2, "model": {
        "name": "musicnn",
        "hyperparameters": {"pretrained": tag, "freeze_backbone": False, "timbral_filters": 204,
                            "temporal_filters": 51, "midend_filters": 64, "backend_units": 200, "dropout": 0.5},
        "features": features, "window_seconds": MUSICNN_WINDOW_SECONDS,
        "window_samples": int(round(MUSICNN_WINDOW_SECONDS * MUSICNN_FEATURES.sample_rate)),
        "num_classes": 50, "multi_label": True},
        "data": {"spec": DATA[tag]},
        "run": {"command": "python tools/build_tag_presets.py"}}


MSD_CARD = """\
**Training data.** The Million Song Dataset (Bertin-Mahieux et al. 2011): 30-s previews of ~200k tracks, labelled
with the 50 most frequent Last.fm tags. Last.fm tags are typed by listeners: a missing tag is not a "no" (the
labels are weak and noisy), and the music is mostly Western, English-language pop and rock from the 1960s to the
2000s.

**Known biases.**
- *Decade tags* (`60s`, `70s`, `80s`, `90s`, `00s`, `oldies`) rate how a recording sounds (production, mixing,
  recording medium), not when it was released: a modern song produced to sound vintage scores as old.
- *`female vocalists`, `female vocalist`, `male vocalists`* describe the timbre of the singing voice as listeners
  tagged it; two of them are spelling variants of the same tag. Never use them to infer anyone's gender.
- *Opinion tags* (`beautiful`, `sexy`, `catchy`, `happy`, `sad`, `Mellow`, `chill`, `party`) record the taste of
  Last.fm's users in the 2000s.
- *Coverage.* No `classical`, `reggae` or `disco` tag exists; genres outside Western popular music are rare in
  the data and get low, unreliable scores. Near-synonyms (`electronic`/`electronica`/`electro`, `indie`/`indie
  rock`/`indie pop`, `metal`/`heavy metal`) overlap.
"""
MTT_CARD = """\
**Training data.** MagnaTagATune (Law et al. 2009): ~26k 29-s clips from the Magnatune label (independent
artists, a lot of classical, ambient, electronic and world music), tagged by players of the TagATune game, top-50
tags, the usual split (shards 0–11 train, 12 validation, 13–15 test). A missing tag is not a "no", and the
players' vocabulary overlaps.

**Known biases.**
- *Synonyms and negations* split one idea across tags: `female`/`woman`/`female vocal`/`female voice`,
  `male`/`man`/`male vocal`/`male voice`, `no vocals`/`no vocal`/`no voice`, `classical`/`classic`,
  `beat`/`beats`, `choir`/`choral`. Compare them together, not one by one.
- *Voice tags* describe the timbre of the singing as players heard it; never use them to infer anyone's gender.
- *Coverage.* The Magnatune catalogue is small and unlike the charts: little hip-hop, R&B or mainstream pop (no
  such tags), `pop` and `rock` mean what independent 2000s labels released; `indian` and `sitar` cover most of
  its non-Western music.
"""


def model_card(tag: str, name: str, labels: list) -> str:
    reported = REPORTED[tag]
    return f"""# {name}

musicnn's own {tag.upper()} tagger, with its 50 tags: `genrenet predict {name} song.mp3` prints a song's top
tags, `--json` gives every tag's probability, `genrenet.Classifier.from_preset("{name}")` does the same from
Python. Nothing was trained by genrenet.

**Tags** (output order): {", ".join(f"`{t}`" for t in labels)}.

**Model.** `musicnn` (Pons & Serra 2019, "musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR LBD, arXiv:1909.06654) with its original {tag.upper()} weights and 50-tag sigmoid output,
shipped with genrenet (`genrenet/models/weights/{tag}_musicnn.npz`, converted from the `musicnn` 0.1.0 package;
the port matches the original graph to 1e-5). 792,079 parameters. Input: audio at any rate and length, resampled
to 16 kHz, cut into non-overlapping 2.976-s windows.

**What the scores mean.** Each tag's score is an independent probability (a sigmoid), not a share of a whole:
they do not sum to 1, several tags can be high at once, and all can be low. A song's score is the mean of its
windows' scores, so a tag heard in a third of the song scores lower than one heard throughout. The scores are
not calibrated: trained on weak labels, they are mostly low in absolute terms, so compare a tag's score across
songs rather than with 0.5. The preset ships no validation data and therefore no per-tag thresholds: `predict`
reports the `--top-k` highest tags (3 unless given), so every song gets tags and `uncertain` is false. To tag
against thresholds, tune them on labelled music of your own (a multi-label run's `thresholds.json`).

**Reported quality** (by the musicnn authors, on their {tag.upper()} test set): ROC-AUC {reported["roc_auc_macro"]:.3f},
PR-AUC {reported["pr_auc_macro"]:.3f} (macro over the 50 tags).

{MSD_CARD if tag == "msd" else MTT_CARD}
**Labels you want.** `--labels-map FILE` turns these tags into your own vocabulary (many tags to one label,
unmapped tags dropped); `genrenet/presets/maps/msd-to-gtzan.json` maps the MSD tags to GTZAN's ten genres
(docs: tagging).

**Licences.** musicnn weights: ISC (Music Technology Group, Universitat Pompeu Fabra 2019; notice in
`genrenet/models/weights/LICENSE-musicnn.md`). No audio or tag data ships with genrenet.

**Rebuild**: `python tools/build_tag_presets.py` writes this folder; the weights come from
`tools/convert_musicnn_weights.py`.
"""


def write_json(path: str, obj):
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2) + "\n")


def build(tag: str):
    name = f"musicnn-{tag}-tags"
    folder = os.path.join(PRESETS, name)
    os.makedirs(folder, exist_ok=True)
    labels = pretrained_labels(tag)
    write_json(os.path.join(folder, "config.json"), config(tag))
    write_json(os.path.join(folder, "labels.json"), labels)
    write_json(os.path.join(folder, "metrics.json"), {"reported_by_musicnn": {**REPORTED[tag], "test_set": tag}})
    write_json(os.path.join(folder, "preset.json"), {
        "summary": SUMMARY[tag], "training_data": DATA[tag], "multi_label": True, "accuracy": None,
        "accuracy_protocol": None, "scores": SCORES, "parameters": 792079,
        "weights": WEIGHTS_NOTE.format(tag=tag), "rebuild": "python tools/build_tag_presets.py"})
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as f:
        f.write(model_card(tag, name, labels))
    print(f"wrote {folder}")


if __name__ == "__main__":
    for t in ("msd", "mtt"):
        build(t)
