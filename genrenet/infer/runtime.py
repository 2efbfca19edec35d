"""How a model source runs on windows: a Keras model (run directories and presets), a loaded SavedModel's
``serving_default`` or a LiteRT interpreter, each as ``forward(windows [n, W] float32) → calibrated probabilities
[n, C]``,
and ``fused_for(num_clips)``: a faster forward for large jobs where the runtime has one (else None)."""
from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from ..run import Run
from .calibration import tempered_forward
from .litert import litert_file, split_frontend
from .source import ModelSource, tflite_interpreter
from .windows import inference_function, model_forward, worth_fusing


class KerasRuntime:
    """A run's (or preset's) Keras model, its probabilities tempered by the run's calibration; jobs of many clips
    run its fused front-end. (Exports carry the temperature in their graph.)"""

    def __init__(self, info: ModelSource):
        self.keras_model = Run(info.path).load_model()
        self.temperature = info.temperature
        self.forward = tempered_forward(model_forward(self.keras_model, num_clips=1), self.temperature)

    def fused_for(self, num_clips: int):
        """The model with its front-end fused, for a job of ``num_clips`` clips where that pays off (else None)."""
        if not worth_fusing(num_clips):
            return None
        return tempered_forward(model_forward(self.keras_model, num_clips), self.temperature)


class SavedModelRuntime:
    """An exported SavedModel: one window per row of ``serving_default``, whose mean over a row's windows is then
    that window's probabilities."""

    keras_model = None

    def __init__(self, info: ModelSource):
        import tensorflow as tf

        self.loaded = tf.saved_model.load(info.path)
        self.signature = self.loaded.signatures["serving_default"]

    def forward(self, windows):
        return self.signature(waveform=np.asarray(windows, np.float32))["probabilities"].numpy()

    def fused_for(self, num_clips: int):
        return None


class TFLiteRuntime:
    """A ``.tflite`` file in a LiteRT interpreter (XNNPACK, one thread per core) whose input is resized to each
    batch of windows: the source itself, or ``path``, a run's model converted (:mod:`genrenet.infer.litert`)."""

    def __init__(self, info: ModelSource, path: Optional[str] = None):
        self.interpreter = tflite_interpreter(path or info.path)
        self.batch = None
        self.run_path = info.path if path else None

    @functools.cached_property
    def keras_model(self):
        """The Keras model behind a converted run (for embeddings); None for a ``.tflite`` source."""
        return Run(self.run_path).load_model() if self.run_path else None

    def forward(self, windows):
        windows = np.asarray(windows, np.float32)
        it = self.interpreter
        inp = it.get_input_details()[0]
        if self.batch != len(windows):
            it.resize_tensor_input(inp["index"], list(windows.shape))
            it.allocate_tensors()
            self.batch = len(windows)
        it.set_tensor(inp["index"], windows)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"]).copy()

    def fused_for(self, num_clips: int):
        return None


class LiteRTBodyRuntime:
    """A run's (or preset's) log-mel front-end in TensorFlow, as :class:`KerasRuntime` runs it (fused for large
    jobs), feeding its model body converted to LiteRT (:mod:`genrenet.infer.litert`); probabilities tempered by
    the run's calibration."""

    def __init__(self, info: ModelSource, path: str):
        self.keras_model = Run(info.path).load_model()
        self.frontend = split_frontend(self.keras_model)[0]
        self.body = TFLiteRuntime(info, path)
        self.temperature = info.temperature
        self.forward = self.forward_with(fused=False)

    def forward_with(self, fused: bool):
        import tensorflow as tf

        frontend = inference_function(self.frontend, fused=fused)
        return tempered_forward(lambda windows: self.body.forward(frontend(tf.convert_to_tensor(windows)).numpy()),
                                self.temperature)

    def fused_for(self, num_clips: int):
        """The front-end fused, for a job of ``num_clips`` clips where that pays off (else None)."""
        return self.forward_with(fused=True) if worth_fusing(num_clips) else None


RUNTIMES = {"preset": KerasRuntime, "run": KerasRuntime, "savedmodel": SavedModelRuntime, "tflite": TFLiteRuntime}


def load_runtime(info: ModelSource, runtime: Optional[str] = None, verbose: int = 1):
    """The runtime of a source's kind with its model loaded; a run or a preset runs in LiteRT when ``runtime``
    (``auto``, ``keras``, ``tflite``; None: the source's default) resolves to it
    (:func:`~genrenet.infer.litert.resolved_runtime`): its body alone when the file reads log-mel."""
    converted = litert_file(info, runtime, verbose)
    if converted is None:
        return RUNTIMES[info.kind](info)
    path, facts = converted
    if facts.get("input") == "log-mel":
        return LiteRTBodyRuntime(info, path)
    return TFLiteRuntime(info, path)
