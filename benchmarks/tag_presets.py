"""Genre detection by the tagger presets on the 40 GTZAN dev clips, with no training on GTZAN.

    python -m benchmarks.tag_presets                    # ../shared/data/gtzan_dev; --json FILE keeps the numbers

For each GTZAN genre, the ROC-AUC of one-vs-rest detection (4 positive clips, 36 negative)
by a song-level score, the mean of the preset's 2.976-s window probabilities (what ``genrenet predict`` gives):

- *same-named tag*: the ``musicnn-msd-tags`` / ``musicnn-mtt-tags`` tag named like the genre (``Hip-Hop`` for
  hiphop), where the vocabulary has one;
- *label map*: ``musicnn-msd-tags --labels-map genrenet/presets/maps/msd-to-gtzan.json`` (many tags to one genre,
  combined by their maximum), per-genre ROC-AUC and the clip accuracy of its top label over the genres the map
  covers. A genre the map does not cover (reggae: no MSD tag) is never predicted, so it counts as wrong.

The map was written from the tag names, not tuned on these clips; 40 clips are few (one clip = 2.5 accuracy
points, one positive = a quarter of a genre's positives): read the figures as rough.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "gtzan_dev")
MAP = os.path.join(ROOT, "genrenet", "presets", "maps", "msd-to-gtzan.json")
SAME_NAME = {"hiphop": "Hip-Hop"}  # MSD's spelling; every other genre is looked up by its own name


def clips(folder: str):
    """``(paths, genres)`` of the folder-per-genre dev set."""
    paths, genres = [], []
    for genre in sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))):
        for name in sorted(os.listdir(os.path.join(folder, genre))):
            paths.append(os.path.join(folder, genre, name))
            genres.append(genre)
    return paths, genres


def auc(scores, positive) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


def same_named(rows, genres, vocabulary) -> dict:
    """Per genre: the ROC-AUC of its same-named tag, or None when the vocabulary has none."""
    out = {}
    for genre in sorted(set(genres)):
        tag = SAME_NAME.get(genre, genre)
        out[genre] = (auc([r["probabilities"][tag] for r in rows], [g == genre for g in genres])
                      if tag in vocabulary else None)
    return out


def mapped(rows, genres) -> dict:
    """The label map's per-genre ROC-AUC (None for a genre it does not cover) and clip accuracy."""
    covered = set(rows[0]["probabilities"])
    per_genre = {g: (auc([r["probabilities"][g] for r in rows], [x == g for x in genres]) if g in covered else None)
                 for g in sorted(set(genres))}
    accuracy = float(np.mean([r["label"] == g for r, g in zip(rows, genres)]))
    return {"roc_auc": per_genre, "accuracy": accuracy, "covered": sorted(covered)}


def fmt(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()
    from benchmarks._util import machine_info
    from genrenet import Classifier

    paths, genres = clips(args.data)
    started = time.time()
    result = {"clips": len(paths), "machine": machine_info(), "date": time.strftime("%Y-%m-%d", time.gmtime())}
    for preset in ("musicnn-msd-tags", "musicnn-mtt-tags"):
        clf = Classifier.from_preset(preset, verbose=0)
        rows = clf.predict(paths, verbose=0)
        result[preset] = same_named(rows, genres, clf.labels)
        if preset == "musicnn-msd-tags":
            result["msd-to-gtzan"] = mapped(clf.predict(paths, verbose=0, labels_map=MAP), genres)
    result["seconds"] = round(time.time() - started, 1)
    print_table(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


def print_table(result: dict):
    print(f"genre detection on {result['clips']} GTZAN dev clips (ROC-AUC, one genre vs the rest)")
    print("| genre | MSD same-named tag | MTT same-named tag | msd-to-gtzan map |")
    print("|---|---|---|---|")
    msd, mtt, m = result["musicnn-msd-tags"], result["musicnn-mtt-tags"], result["msd-to-gtzan"]
    for g in msd:
        print(f"| {g} | {fmt(msd[g])} | {fmt(mtt[g])} | {fmt(m['roc_auc'][g])} |")
    print(f"msd-to-gtzan clip accuracy: {m['accuracy']:.3f} ({round(m['accuracy'] * result['clips'])}/"
          f"{result['clips']}); genres covered: {', '.join(m['covered'])}")
    print(f"{result['seconds']} s; machine: {result['machine']}", file=sys.stderr)


if __name__ == "__main__":
    main()
