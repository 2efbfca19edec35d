"""Every error genrenet raises on purpose derives from :class:`GenrenetError`.

The command line prints these (and file-system errors) as one line and exits with code 2; anything else is a
bug and keeps its traceback. Each class also derives from the built-in error it refines (``ValueError`` for bad
input), so ``except ValueError`` keeps working for callers that used it.
"""
import numbers


class GenrenetError(Exception):
    """Base of every error raised on purpose: bad input, arguments or files, with a message saying which.

    ``param`` names the setting or argument at fault (e.g. ``"batch_size"``, ``"model_kwargs.dropout"``), kept
    apart from ``message`` so a caller can point at it in its own terms: ``str(error)`` is ``"param: message"``,
    and the command line prints the matching flag instead (``--batch-size: message``).
    """

    def __init__(self, message: str = "", param=None):
        super().__init__(message)
        self.message = str(message)
        self.param = param

    def __str__(self):
        return f"{self.param}: {self.message}" if self.param else self.message


class AudioError(GenrenetError, ValueError):
    """A file that cannot be used as audio; the message names the file and the problem."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class AugmentError(GenrenetError, ValueError):
    """An unknown augmentation name or parameter."""


class DatasetError(GenrenetError, ValueError):
    """A dataset spec that cannot be used (missing path, no usable files, bad columns)."""


class DownloadError(GenrenetError, RuntimeError):
    """A download that failed, or whose checksum does not match."""


class RunError(GenrenetError, ValueError):
    """A run directory that is missing or incomplete."""


class TrainingError(GenrenetError, ValueError):
    """Training cannot start (bad settings, an existing run, unusable data)."""


class CheckpointError(GenrenetError, ValueError):
    """A checkpoint that cannot be resumed."""


class StrategyError(GenrenetError, ValueError):
    """A tf.distribute strategy that cannot be set up here."""


class DataServiceError(GenrenetError, ValueError):
    """A tf.data service address that cannot be used."""


class EnsembleError(GenrenetError, ValueError):
    """Members that cannot be combined (different labels or sample rates, bad weights)."""


class ExportError(GenrenetError, ValueError):
    """An export that cannot be written (an existing version, a bad run, no TFLite conversion)."""


class UnknownModelError(GenrenetError, KeyError):
    """A model name that is not registered; the message lists the known names (printed as is, not quoted as
    ``KeyError`` would)."""


class RegistryError(GenrenetError, ValueError):
    """A model registered twice, or a model module that fails to import."""


class ModelArgumentError(GenrenetError, TypeError):
    """A hyper-parameter a model's builder does not take; the message lists the ones it does."""


class ConfigError(GenrenetError, ValueError):
    """A setting out of its range: a front-end, a model's hyper-parameter, pretrained weights that do not fit."""


class MissingDependencyError(GenrenetError, ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""


class PresetError(GenrenetError, ValueError):
    """A preset name that genrenet does not ship; the message lists the ones it does."""


class RequestError(GenrenetError, ValueError):
    """A TF Serving request or response that does not fit the serving signatures."""


class ServingError(GenrenetError, RuntimeError):
    """A model server answered with an error."""


class UsageError(GenrenetError, ValueError):
    """A command-line argument that cannot be read."""


def check_whole(value, param: str, *, at_least: int, at_most=None, optional: bool = False):
    """``value`` as it is when it is an integer in ``[at_least, at_most]`` (or None when ``optional``); else a
    :class:`ConfigError` naming ``param``. The one check of counts such as ``batch_size``, ``top_k``, ``version``
    for the library and the command line alike."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"must be a whole number, got {value!r}", param=param)
    if value < at_least or (at_most is not None and value > at_most):
        wanted = f"≥ {at_least}" if at_most is None else f"in {at_least}..{at_most}"
        raise ConfigError(f"must be {wanted}, got {value!r}", param=param)
    return value


def check_positive(value, param: str, *, optional: bool = False):
    """``value`` when it is a finite number > 0 (or None when ``optional``); else a :class:`ConfigError` naming
    ``param`` (e.g. ``hop_seconds``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise ConfigError(f"must be a number, got {value!r}", param=param)
    if not 0 < value < float("inf"):
        raise ConfigError(f"must be > 0, got {value!r}", param=param)
    return value
