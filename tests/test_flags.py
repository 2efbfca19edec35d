"""Every flag is checked when the command line is read, in one line, and the library checks the same values
(a ConfigError naming the parameter); predict's exit code says how many files it classified."""
import argparse
import os

import pytest

from conftest import TINY, write_tone
from genrenet.cli import build_parser, main
from genrenet.errors import ConfigError

BAD_FLAGS = [
    ("train cnn --batch-size 0", "argument --batch-size: must be ≥ 1, got 0"),
    ("train cnn --epochs 0", "argument --epochs: must be ≥ 1, got 0"),
    ("train cnn --epochs -1", "argument --epochs: must be ≥ 1, got -1"),
    ("train cnn --val-fraction 1.5", "argument --val-fraction: must be in [0, 1), got 1.5"),
    ("train cnn --learning-rate abc", "argument --learning-rate: must be a number, got 'abc'"),
    ("export RUN --out E --hop -1", "argument --hop: must be > 0, got -1.0"),
    ("export RUN --out E --version -3", "argument --version: must be ≥ 0, got -3"),
    ("predict a.wav --top-k 0", "argument --top-k: must be ≥ 1, got 0"),
    ("predict a.wav --batch-size 0", "argument --batch-size: must be ≥ 1, got 0"),
    ("predict a.wav --hop 0", "argument --hop: must be > 0, got 0.0"),
    ("predict a.wav --hop -1", "argument --hop: must be > 0, got -1.0"),
    ("evaluate RUN --data D --batch-size 0", "argument --batch-size: must be ≥ 1, got 0"),
    ("embed RUN a.wav --out e.npz --batch-size 0", "argument --batch-size: must be ≥ 1, got 0"),
    ("app --port 70000", "argument --port: must be in 0..65535, got 70000"),
    ("demo --epochs 0", "argument --epochs: must be ≥ 1, got 0"),
    ("data-service --workers 0", "argument --workers: must be ≥ 1, got 0"),
]


@pytest.mark.parametrize("argv,line", BAD_FLAGS)
def test_a_bad_flag_ends_at_parse_time_in_one_line(argv, line, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv.split())
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {line}")


def test_the_command_line_answers_a_bad_flag_without_loading_tensorflow():
    import subprocess
    import sys

    code = ("import sys\nfrom genrenet.cli import main\ntry:\n    main(['predict', 'a.wav', '--top-k', '0'])\n"
            "except SystemExit as e:\n    sys.stderr.write(f'exit {e.code}\\n')\n")
    r = subprocess.run([sys.executable, "-c", code + "print('tf' if 'tensorflow' in sys.modules else 'no tf')"],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__))))
    assert "exit 2" in r.stderr and "argument --top-k: must be ≥ 1, got 0" in r.stderr
    assert r.stdout.strip() == "no tf"


def test_every_option_says_what_it_does_and_its_default():
    parser = build_parser()
    missing = []
    for command, sub in parser.commands.items():
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            name = f"{command} {(action.option_strings or [action.dest])[0]}"
            if not action.help:
                missing.append(f"{name}: no help")
            elif action.default not in (None, False, argparse.SUPPRESS) and \
                    not isinstance(action, argparse._StoreTrueAction) and "default" not in action.help:
                missing.append(f"{name}: default {action.default!r} not said")
    assert not missing, missing


def test_the_library_checks_the_same_values(tiny_run, tmp_path):
    from genrenet.infer.classifier import Classifier
    from genrenet.infer.evaluate import evaluate
    from genrenet.serve.export import export
    from genrenet.training.trainer import train

    clf = Classifier.from_preset(str(tiny_run))
    for kwargs, param in (({"top_k": 0}, "top_k"), ({"batch_size": 0}, "batch_size"),
                          ({"hop_seconds": -1}, "hop_seconds"), ({"hop_seconds": 0.0}, "hop_seconds")):
        with pytest.raises(ConfigError) as e:
            clf.predict([str(tmp_path / "a.wav")], **kwargs)
        assert e.value.param == param
    for kwargs, param in (({"version": -3}, "version"), ({"hop_seconds": -1}, "hop_seconds"),
                          ({"version": "1"}, "version")):
        with pytest.raises(ConfigError) as e:
            export(str(tiny_run), str(tmp_path / "export"), **kwargs)
        assert e.value.param == param
    assert not (tmp_path / "export").exists()
    with pytest.raises(ConfigError, match="batch_size: must be ≥ 1"):
        evaluate(str(tiny_run), TINY, batch_size=0)
    for value, message in ((1.5, r"must be in \[0, 1\), got 1.5"), ("abc", "must be a number, got 'abc'")):
        with pytest.raises(ConfigError, match=message) as e:
            train("cnn", TINY, str(tmp_path / "run"), model_kwargs={"dropout": value})
        assert e.value.param == "model_kwargs.dropout"
    with pytest.raises(ConfigError, match="must be whole numbers ≥ 1") as e:
        train("cnn", TINY, str(tmp_path / "run"), model_kwargs={"filters": [8, 0]})
    assert not (tmp_path / "run").exists()


def test_set_names_the_hyper_parameter_on_the_command_line(tmp_path, capsys):
    assert main(["train", "cnn", "--data", TINY, "--out", str(tmp_path / "r"), "--set", "dropout=1.5"]) == 2
    assert capsys.readouterr().err.strip() == "genrenet: error: --set dropout: must be in [0, 1), got 1.5"
    assert not (tmp_path / "r").exists()


def test_predict_exit_codes_count_the_files_that_failed(tiny_run, tmp_path, capsys):
    write_tone(tmp_path / "good.wav", seconds=2.0)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 10)
    assert main(["predict", str(tiny_run), str(tmp_path / "good.wav")]) == 0
    assert "failed" not in capsys.readouterr().err
    assert main(["predict", str(tiny_run), str(tmp_path / "good.wav"), str(tmp_path / "bad.wav")]) == 1
    assert "genrenet: 1 of 2 files failed" in capsys.readouterr().err
    assert main(["predict", str(tiny_run), str(tmp_path / "bad.wav")]) == 2
    assert "1 of 1 files failed" in capsys.readouterr().err
