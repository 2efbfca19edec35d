"""genrenet writes only into an empty folder or one it created: a folder of the user's is refused and left as it
was, and runs written without the marker still load and resume."""
import os
import shutil

import pytest

from conftest import TINY
from genrenet.cli import main
from genrenet.errors import RunError
from genrenet.run import RUN_MARKER, Run, claim_run_dir, is_genrenet_dir
from genrenet.training.checkpoint import check_run_dir


def _users_folder(path):
    path.mkdir()
    (path / "README.md").write_text("my notes\n")
    (path / "history.csv").write_text("date,what\n2026-01-01,bought records\n")
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in path.iterdir()}


def _state(path):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in path.iterdir()}


@pytest.mark.parametrize("resume", [False, True])
def test_a_users_folder_is_refused_for_out_and_resume_and_left_unchanged(tmp_path, resume):
    from genrenet.training.trainer import train

    before = _users_folder(tmp_path / "mine")
    with pytest.raises(RunError, match="not a genrenet run directory .it holds README.md, history.csv") as e:
        train("cnn", TINY, str(tmp_path / "mine"), resume=resume, epochs=1, verbose=0)
    assert e.value.param == ("resume" if resume else "out")
    assert _state(tmp_path / "mine") == before


def test_the_command_line_names_the_flag_and_changes_nothing(tmp_path, capsys):
    before = _users_folder(tmp_path / "mine")
    for extra in ([], ["--resume"]):
        code = main(["train", "cnn", "--data", TINY, "--out", str(tmp_path / "mine"), "--epochs", "1", *extra])
        err = capsys.readouterr().err
        flag = "--resume" if extra else "--out"
        assert code == 2 and f"genrenet: error: {flag}: {tmp_path / 'mine'}: not a genrenet run directory" in err
        assert _state(tmp_path / "mine") == before


def test_an_empty_or_new_folder_is_claimed_with_the_marker(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new" / "run"):
        assert check_run_dir(str(folder), resume=False) is None
        assert (folder / RUN_MARKER).is_file() and is_genrenet_dir(folder)
        claim_run_dir(folder)  # claiming again is harmless


def test_runs_written_without_the_marker_still_load_and_resume(tiny_run, tmp_path):
    assert (tiny_run / RUN_MARKER).is_file()
    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_run, legacy)
    os.remove(legacy / RUN_MARKER)
    assert Run(legacy).labels == Run(tiny_run).labels and is_genrenet_dir(legacy)
    os.remove(legacy / "model.keras")  # an unfinished run of that kind resumes
    check_run_dir(str(legacy), resume=True)
    assert not (legacy / RUN_MARKER).exists()


def test_a_folder_with_foreign_json_is_not_taken_for_a_run(tmp_path):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "config.json").write_text('{"colour": "blue"}')
    (folder / "labels.json").write_text('["a"]')
    assert not is_genrenet_dir(folder)
    with pytest.raises(RunError, match="not a genrenet run directory"):
        claim_run_dir(folder)
