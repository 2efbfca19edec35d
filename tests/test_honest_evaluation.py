"""A run remembers the clips it trained and validated on: evaluate scores its held-out clips again, and a
figure on clips it trained on is a warning and is named "training clips" in the model card, never a test."""
import json
import shutil

import pytest

from conftest import TINY
from genrenet.cli import main
from genrenet.data import load_dataset
from genrenet.errors import DatasetError
from genrenet.infer.evaluate import evaluate


@pytest.fixture
def own_run(tiny_run, tmp_path):
    """A copy of the tiny run (evaluations write into it)."""
    return shutil.copytree(tiny_run, tmp_path / "run")


def _hold_out(run, val_ids):
    """Make the run's record say it validated on ``val_ids`` and trained on the other clips."""
    record = json.loads((run / "split.json").read_text())
    record["train"] = [i for i in record["train"] if i not in val_ids]
    record["val"] = sorted(val_ids)
    (run / "split.json").write_text(json.dumps(record))


def test_the_run_records_the_clips_it_trained_on(tiny_run):
    record = json.loads((tiny_run / "split.json").read_text())
    assert record["data"] == TINY and record["val"] == []
    assert record["train"] == sorted(c.id for c in load_dataset(TINY).clips)


def test_scoring_the_training_clips_warns_and_the_card_says_training_clips(own_run, capsys):
    metrics = evaluate(str(own_run), TINY, verbose=0)
    assert metrics["split"] == "all" and metrics["training_clips"] == metrics["num_clips"] == 12
    assert "warning: 12 of the 12 clips evaluated trained this run" in capsys.readouterr().err
    card = (own_run / "README.md").read_text()
    assert f"| `{TINY}` | training clips (12 of 12, split all) |" in card
    assert "split: all\n" not in card and "not how it does on music it has not heard" in card


def test_split_val_and_train_rebuild_the_runs_split(own_run, capsys):
    held = ["ambient.00001", "disco.00002", "rock.00003"]
    _hold_out(own_run, held)
    metrics = evaluate(str(own_run), TINY, verbose=1)  # the run's own data: its held-out clips by default
    assert metrics["split"] == "val" and metrics["num_clips"] == 3 and metrics["training_clips"] == 0
    out = capsys.readouterr()
    assert "evaluating the 3 clips this run held out" in out.out and "warning" not in out.err
    with open(own_run / "eval-synthetic-val" / "predictions.csv") as f:
        assert sorted(line.split(",")[0] for line in f.readlines()[1:]) == held
    card = (own_run / "README.md").read_text()
    assert f"| `{TINY}` | val |" in card and "training clips" not in card
    train = evaluate(str(own_run), TINY, "train", verbose=0)
    assert train["num_clips"] == 9 and train["training_clips"] == 9
    assert "training clips (9 of 9, split train)" in (own_run / "README.md").read_text()


def test_split_val_of_a_run_without_held_out_clips_says_so(own_run, capsys):
    with pytest.raises(DatasetError, match="held out no validation clips") as e:
        evaluate(str(own_run), TINY, "val", verbose=0)
    assert e.value.param == "split"
    assert main(["evaluate", str(own_run), "--data", TINY, "--split", "val"]) == 2
    assert "--split: the run held out no validation clips" in capsys.readouterr().err


def test_other_data_is_scored_as_it_is_without_a_warning(own_run, capsys):
    other = "synthetic:classes=3,clips=2,seconds=3.5,seed=7"  # the same clip names, other audio
    metrics = evaluate(str(own_run), other, verbose=0)
    assert metrics["split"] == "all" and metrics["training_clips"] == 0 and metrics["num_clips"] == 6
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(DatasetError, match="not the data this run trained on"):
        evaluate(str(own_run), other, "val", verbose=0)


def test_a_folder_is_the_runs_data_however_it_is_named(tmp_path, monkeypatch):
    from genrenet.run.split import RunSplit

    (tmp_path / "music" / "rock").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    split = RunSplit(str(tmp_path / "music"), frozenset(), frozenset())
    assert split.is_data_of("music") and split.is_data_of("./music/?folds=5&fold=1")
    assert split.is_data_of(f"gtzan:{tmp_path / 'music'}") and not split.is_data_of("synthetic")
