"""The run directory: what training leaves behind and everything after it reads.

``model.keras``, ``labels.json``, ``config.json`` (model, training settings, data and run facts, in the
layout of :mod:`genrenet.run.config`), ``split.json`` (the clips trained and validated on,
:mod:`genrenet.run.split`), ``history.csv``, ``metrics.json``, ``skipped.tsv``, the model card ``README.md``
and TensorBoard events under ``logs/``. Every file is written to a temporary name and renamed, so a crash never
leaves a file that looks complete but is not; ``train.lock`` exists while a training process writes the
directory (:func:`run_lock`), so two cannot write it at once. ``.genrenet-run`` marks a folder genrenet created
(:func:`claim_run_dir`): genrenet writes only into such folders or empty ones.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import tempfile
from functools import cached_property
from typing import Optional

from ..errors import RunError
from ..features import FeatureConfig
from .config import structured_config

LOGS_DIR = "logs"  # TensorBoard event files: logs/train, logs/validation, logs/eval-<dataset>-<split>


def umask() -> int:
    """The process's umask (read without changing it where Linux tells it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def with_umask_mode(path, *, directory: bool = False) -> str:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would (0666/0777 less the umask): temporary files and
    folders are made private (0600/0700), and a file renamed into place would keep that, so that TF Serving or
    a colleague running as another user could not read an export. Returns ``path``."""
    os.chmod(path, (0o777 if directory else 0o666) & ~umask())
    return path


def staging_dir(parent, prefix: str) -> str:
    """A new folder in ``parent`` to write into before it is renamed into place, with the umask's mode."""
    return with_umask_mode(tempfile.mkdtemp(prefix=prefix, dir=parent), directory=True)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path`` in one step (with the
    mode the umask gives new files)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix or os.path.splitext(path)[1],
                               dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    with_umask_mode(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


LOCK_FILE = "train.lock"
# The temperature and abstention threshold fitted on held-out clips ({"method": "temperature", "temperature": T,
# "min_confidence": t, ...}); absent when the run had no held-out clips to fit them on.
CALIBRATION_FILE = "calibration.json"
CHECKPOINT_DIR = "checkpoint"  # the epoch-boundary checkpoint of a run in progress
# What training writes into a run directory before model.keras: a folder holding one is a run, finished or not.
STARTED_RUN_FILES = ("config.json", "labels.json", "history.csv", "metrics.json", CHECKPOINT_DIR)


def calibration_temperature(calibration: Optional[dict]) -> float:
    """The temperature a ``calibration.json`` (or a file's embedded calibration) divides logits by (1: none)."""
    return float((calibration or {}).get("temperature", 1.0))


def is_started_run(path) -> bool:
    """Whether training has written into ``path`` (a run directory, finished or not)."""
    return any(os.path.exists(os.path.join(path, name)) for name in STARTED_RUN_FILES)


# Written when genrenet creates a run directory: genrenet writes only into folders that hold it (or are empty).
RUN_MARKER = ".genrenet-run"


def is_genrenet_dir(path) -> bool:
    """Whether genrenet made ``path``: it holds the marker, or (a run written before the marker existed) a
    genrenet ``config.json`` beside ``labels.json``."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, RUN_MARKER)):
        return True
    if not os.path.isfile(os.path.join(path, "labels.json")):
        return False
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            return "name" in structured_config(json.load(f)).get("model", {})
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def claim_run_dir(path, param: str = "out"):
    """Make ``path`` a run directory genrenet may write: a missing or empty folder gets the marker, a folder
    genrenet made is kept; any other folder is a :class:`RunError` (``param`` names the setting), so no file
    of the user's is ever replaced."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    if is_genrenet_dir(path):
        return
    theirs = sorted(set(os.listdir(path)) - {LOCK_FILE})
    if theirs:
        shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
        raise RunError(f"{path}: not a genrenet run directory (it holds {shown}); choose a new or empty folder "
                       "(nothing was changed)", param=param)
    write_text(os.path.join(path, RUN_MARKER), "genrenet run directory\n")


@contextlib.contextmanager
def run_lock(path):
    """Hold ``path/train.lock`` while a process writes the run directory ``path``; a second process gets a
    :class:`RunError` at once. The lock is an ``flock``: the kernel releases it when its process ends, however
    it ends, so the lock of a process that died never blocks. The file is removed on release (and ``path``
    too when this call created it and nothing was written)."""
    import fcntl

    path = os.fspath(path)
    created = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    lock = os.path.join(path, LOCK_FILE)
    fd = _locked_fd(lock, fcntl)
    try:
        yield
    finally:
        if fd is not None:
            os.remove(lock)  # before unlocking: nobody can then lock this file and believe it current
            os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                if os.listdir(path) == [RUN_MARKER]:  # claimed, then nothing written
                    os.remove(os.path.join(path, RUN_MARKER))
                os.rmdir(path)


def _locked_fd(lock: str, fcntl):
    """An open descriptor of ``lock`` holding its flock (None where the file system has no locks)."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise RunError(f"{os.path.dirname(lock)}: another process (pid {holder or '?'}) is writing this run "
                           "directory; wait for it to end or choose another run directory") from None
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return None
            raise
        try:
            current = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # its holder removed it as we opened it: lock the new file


def write_text(path, text: str):
    """Write ``text`` to ``path`` atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp:
        # surrogateescape: file names that are not valid UTF-8 are written back as their original bytes
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)


def write_json(path, obj):
    """Write ``obj`` as indented JSON, atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=json_default) + "\n")


def json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class RunWriter:
    """The one writer of run directories (training, ensembles, tests, benchmarks).

    Every file is written atomically; :meth:`finish` writes ``model.keras`` last, because its presence is what
    marks a run finished (:func:`is_run_dir`), so a run interrupted at any point never looks complete.
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def file(self, name) -> str:
        """Path of ``name`` inside the run directory."""
        return os.path.join(self.path, name)

    def json(self, name: str, obj):
        """Write ``name`` (e.g. ``config.json``, ``labels.json``, ``metrics.json``) as indented JSON."""
        write_json(self.file(name), obj)

    def text(self, name: str, text: str):
        """Write ``name`` as UTF-8 text."""
        write_text(self.file(name), text)

    def history(self, rows: list):
        """``history.csv`` in Keras' CSVLogger layout (``epoch`` from 0, then the logged keys sorted)."""
        keys = sorted({k for row in rows for k in row if k != "epoch"})
        lines = [",".join(["epoch"] + keys)]
        for row in rows:
            lines.append(",".join([str(row["epoch"])] + [repr(row[k]) if k in row else "" for k in keys]))
        self.text("history.csv", "\n".join(lines) + "\n")

    def finish(self, model) -> "Run":
        """Save ``model`` as ``model.keras`` (last: the run is now finished) and return the :class:`Run`."""
        with atomic_path(self.file("model.keras")) as tmp:
            model.save(tmp)
        return Run(self.path)


def write_run(path, model, *, labels: list, config: dict, metrics: Optional[dict] = None) -> "Run":
    """A complete run directory in one call: ``labels.json``, ``config.json``, ``metrics.json``, then
    ``model.keras``. ``config`` (either layout; written sectioned) needs at least the model's ``name``,
    ``features`` and ``window_samples``."""
    claim_run_dir(path)
    writer = RunWriter(path)
    writer.json("labels.json", list(labels))
    writer.json("config.json", structured_config(config))
    if metrics is not None:
        writer.json("metrics.json", metrics)
    return writer.finish(model)


@dataclasses.dataclass
class Run:
    """A finished (or resumable) training run on disk."""

    path: str

    def __post_init__(self):
        self.path = os.fspath(self.path)
        if not os.path.isdir(self.path):
            raise RunError(f"{self.path}: run directory not found")
        for name in ("model.keras", "labels.json", "config.json"):
            if not os.path.isfile(os.path.join(self.path, name)):
                raise RunError(f"{self.path}: not a finished genrenet run ({name} is missing)")

    def file(self, name):
        """Path of ``name`` inside the run directory."""
        return os.path.join(self.path, name)

    @cached_property
    def config(self) -> dict:
        """``config.json`` in its sectioned layout (``model``, ``training``, ``data``, ``run``), whichever layout
        the file has; an unknown key raises :class:`~genrenet.errors.ConfigError`."""
        with open(self.file("config.json"), encoding="utf-8") as f:
            return structured_config(json.load(f))

    @cached_property
    def labels(self) -> list:
        """``labels.json``: class names in output order."""
        with open(self.file("labels.json"), encoding="utf-8") as f:
            return json.load(f)

    @property
    def model_name(self) -> str:
        """The registered model's name (``ensemble`` for an ensemble)."""
        return self.config["model"]["name"]

    @property
    def hyperparameters(self) -> dict:
        """Every resolved hyper-parameter of the model (empty for an ensemble)."""
        return dict(self.config["model"].get("hyperparameters", {}))

    @property
    def training(self) -> Optional[dict]:
        """The run's training settings (None for an ensemble: it was not trained);
        ``TrainConfig.from_dict(run.training)`` makes them a :class:`~genrenet.training.config.TrainConfig`."""
        return dict(self.config["training"]) if "training" in self.config else None

    @property
    def data_spec(self) -> Optional[str]:
        """The data spec the run was trained on (None for an ensemble)."""
        return self.config.get("data", {}).get("spec")

    @property
    def features(self) -> FeatureConfig:
        """The run's :class:`FeatureConfig`."""
        return FeatureConfig.from_dict(self.config["model"]["features"])

    @property
    def sample_rate(self) -> int:
        """Sample rate the model expects."""
        return self.features.sample_rate

    @property
    def window_samples(self) -> int:
        """Samples per model window."""
        return int(self.config["model"]["window_samples"])

    @property
    def metrics(self) -> dict:
        """``metrics.json`` (empty while the run is unfinished)."""
        path = self.file("metrics.json")
        if not os.path.isfile(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    @property
    def calibration(self) -> Optional[dict]:
        """``calibration.json``: the temperature and abstention threshold fitted on held-out clips (None when
        the run has none)."""
        path = self.file(CALIBRATION_FILE)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    @property
    def temperature(self) -> float:
        """The calibration temperature the run's predictions and exports divide logits by (1: none)."""
        return calibration_temperature(self.calibration)

    def load_model(self):
        """The trained Keras model (custom genrenet layers registered first)."""
        import keras

        from .. import nn  # noqa: F401  (registers every genrenet layer a model.keras may hold)

        return keras.saving.load_model(self.file("model.keras"), compile=False)


def is_run_dir(path) -> bool:
    """True for a finished run directory (``config.json`` and ``model.keras`` present)."""
    return os.path.isfile(os.path.join(path, "config.json")) and os.path.isfile(os.path.join(path, "model.keras"))
