"""Workarounds that reach into Keras and TensorFlow internals, all in one place. Written for Keras 3.15 and
TensorFlow 2.21: re-check each one when upgrading, and delete it once the library does the right thing itself."""
from __future__ import annotations

import contextlib

import tensorflow as tf
from tensorflow.python.framework import config as tf_config


@contextlib.contextmanager
def op_determinism(enabled: bool):
    """Deterministic TF ops inside the block when ``enabled``, restored afterwards.

    TensorFlow has a public switch on (``enable_op_determinism``) but only internal ones to ask and to turn off.
    """
    was = tf_config.is_op_determinism_enabled()
    if enabled and not was:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not was:
            tf_config.disable_op_determinism()


def attach_assets(archive, **paths):
    """Add files to a ``keras.export.ExportArchive`` so they are copied into the SavedModel's ``assets/``.

    ExportArchive has no public way to add assets; it saves its ``_tf_trackable``, and a
    ``tf.saved_model.Asset`` attached there is copied on ``write_out``.
    """
    for name, path in paths.items():
        setattr(archive._tf_trackable, name, tf.saved_model.Asset(path))


@contextlib.contextmanager
def keras_workarounds(model, strategy, example_batch):
    """Work around two Keras problems with tf.distribute, for the duration of ``fit``.

    1. Under a strategy, ``fit``/``evaluate`` build the model (``_maybe_symbolic_build``) from the first batch of
       the distributed iterator: it takes that batch and never gives it back (with ``steps_per_epoch`` every epoch
       would be shifted by one batch and the run would end a batch short), and averages the ``(x, y)`` tuple
       across replicas, which fails on uneven batches and under MultiWorkerMirroredStrategy ("Attempt to convert
       a value (PerReplica...)"). We build from a zero batch of the right shapes instead.
    2. Under MultiWorkerMirroredStrategy, ``reduce_per_replica`` averages the step's logs with ``axis=0``, which
       fails on scalars ("Invalid reduction dimension 0 for input with 0 dimensions", tensorflow#72388). The
       logs (already synchronised metric results) are given a leading axis of 1, which that mean removes again.
    """
    patched = {}
    original_build = model._maybe_symbolic_build
    patched["_maybe_symbolic_build"] = lambda iterator=None, data_batch=None: original_build(data_batch=example_batch)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        for name in ("train_step", "test_step"):
            step = getattr(model, name)
            patched[name] = (lambda step: lambda data: tf.nest.map_structure(lambda v: tf.reshape(v, [1]),
                                                                             step(data)))(step)
    for name, fn in patched.items():
        setattr(model, name, fn)
    try:
        yield model
    finally:
        for name in patched:
            delattr(model, name)


def tflite_schema():
    """TensorFlow's generated Python classes of the ``.tflite`` flatbuffer schema (``ModelT`` ...), which are
    not a public API; the TFLite metadata writer re-packs a model with them."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated
