"""TFLite Model Metadata for an exported ``model.tflite``, so MediaPipe Tasks' AudioClassifier loads it as it is.

MediaPipe (like the TFLite Task Library) reads the sample rate, channel count and labels of an audio classifier
from the model file itself, never from files beside it. The layout is tflite-support's (``MetadataPopulator``):

* a ``ModelMetadata`` flatbuffer of the schema ``metadata_schema.fbs`` (file identifier ``M001``) stored in a new
  buffer of the model, which the model's ``metadata`` entry named ``TFLITE_METADATA`` points to;
* the associated files (here ``labels.txt``) in a zip archive appended to the model bytes. TFLite interpreters
  read the flatbuffer and ignore what follows it, so the same bytes still load in LiteRT with the same outputs.

A multi-label model with per-tag thresholds also carries them in the form MediaPipe applies itself: a score
calibration (``score_calibration.txt``, type TENSOR_AXIS_SCORE_CALIBRATION, one ``1,1,0,THRESHOLD`` line per tag
with the INVERSE_LOGISTIC transformation: the calibrated score is the probability itself, and a probability below
its tag's threshold becomes the default score 0) and a global score threshold (the smallest tag threshold) that
leaves those zeros out, so MediaPipe's AudioClassifier returns exactly the tags at or above their threshold.

Only the tables an audio classifier needs are written and read, by their field slots in that schema (a field's
slot is its position in the table's declaration). Reading needs only ``flatbuffers``; writing repacks the model
with TensorFlow's TFLite schema module.
"""
from __future__ import annotations

import io
import zipfile

import flatbuffers
import numpy as np
from flatbuffers.number_types import Float32Flags, Uint8Flags, Uint32Flags, Uint64Flags
from flatbuffers.table import Table

from ..errors import ExportError
from ..keras_compat import tflite_schema

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MODEL_IDENTIFIER = b"TFL3"
LABELS_FILE = "labels.txt"
# AudioProperties came with metadata schema 1.3.0: the oldest parser that understands every field written here.
MIN_PARSER_VERSION = "1.3.0"

# Field slots of metadata_schema.fbs (tflite-support / MediaPipe, schema 1.5.0) and of the TFLite model schema.
MODEL_METADATA = {"name": 0, "description": 1, "version": 2, "subgraph_metadata": 3, "author": 4, "license": 5,
                  "min_parser_version": 7}
SUBGRAPH_METADATA = {"name": 0, "description": 1, "input_tensor_metadata": 2, "output_tensor_metadata": 3}
TENSOR_METADATA = {"name": 0, "description": 1, "content": 3, "process_units": 4, "associated_files": 6}
CONTENT = {"content_properties_type": 0, "content_properties": 1}
AUDIO_PROPERTIES = {"sample_rate": 0, "channels": 1}
ASSOCIATED_FILE = {"name": 0, "description": 1, "type": 2}
FEATURE_PROPERTIES_TYPE, AUDIO_PROPERTIES_TYPE = 1, 4  # members of the ContentProperties union
TENSOR_AXIS_LABELS, TENSOR_AXIS_SCORE_CALIBRATION = 2, 4  # AssociatedFileTypes
PROCESS_UNIT = {"options_type": 0, "options": 1}
SCORE_CALIBRATION_OPTIONS, SCORE_THRESHOLDING_OPTIONS = 2, 3  # members of the ProcessUnitOptions union
SCORE_CALIBRATION = {"score_transformation": 0, "default_score": 1}
SCORE_THRESHOLDING = {"global_score_threshold": 0}
INVERSE_LOGISTIC = 2                                     # a ScoreTransformationType
CALIBRATION_FILE = "score_calibration.txt"
# The global threshold is at least this, so that the default score 0 of a tag below its threshold is left out.
MIN_GLOBAL_THRESHOLD = 1e-6
MODEL = {"buffers": 4, "metadata": 6}
MODEL_METADATA_ENTRY = {"name": 0, "buffer": 1}
MODEL_BUFFER = {"data": 0, "offset": 1, "size": 2}


# --- writing ----------------------------------------------------------------------------------------------------

def _table(builder, slots, fields):
    """Build a table of ``fields`` {name: (kind, value)} (kind: "offset", "uint8" or "uint32"; None: absent)."""
    builder.StartObject(max(slots.values(), default=-1) + 1)
    for key, (kind, value) in fields.items():
        if value is None:
            continue
        slot = slots[key]
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "uint8":
            builder.PrependUint8Slot(slot, value, 0)
        elif kind == "int8":
            builder.PrependInt8Slot(slot, value, 0)
        elif kind == "float32":
            builder.PrependFloat32Slot(slot, value, 0.0)
        else:
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _vector(builder, offsets):
    """A vector of table offsets (flatbuffers are built back to front, so the items are prepended reversed)."""
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _content(builder, properties_type, properties):
    return _table(builder, CONTENT, {"content_properties_type": ("uint8", properties_type),
                                     "content_properties": ("offset", properties)})


def metadata_flatbuffer(*, sample_rate: int, channels: int, name: str, description: str, version: str,
                        author: str | None = None, license: str | None = None,
                        labels_file: str = LABELS_FILE, thresholds=None) -> bytes:
    """The ``ModelMetadata`` flatbuffer of an audio classifier: waveform in (AudioProperties), one
    probability per label out (labels from ``labels_file``, an associated file of type TENSOR_AXIS_LABELS). With
    per-tag ``thresholds`` (a multi-label model): the score calibration and thresholding that apply them."""
    b = flatbuffers.Builder(1024)
    per = "tag" if thresholds is not None else "genre"
    s = {k: b.CreateString(v) if v else None for k, v in dict(
        name=name, description=description, version=version, author=author, license=license,
        parser=MIN_PARSER_VERSION, labels=labels_file, labels_text=f"One {per} per output index.",
        waveform="waveform", waveform_text=f"Mono float32 audio in [-1, 1] at {sample_rate} Hz: one window.",
        probabilities="probabilities",
        probabilities_text=("The independent probability of each tag (a tag is on at or above its threshold)."
                            if thresholds is not None else "The probability of each genre (they sum to 1)."),
        calibration=CALIBRATION_FILE if thresholds is not None else None,
        calibration_text="Per-tag thresholds as min_score of an identity calibration: a probability below its "
                         "tag's threshold scores 0.",
    ).items()}
    audio = _table(b, AUDIO_PROPERTIES, {"sample_rate": ("uint32", sample_rate), "channels": ("uint32", channels)})
    audio_content = _content(b, AUDIO_PROPERTIES_TYPE, audio)
    feature_content = _content(b, FEATURE_PROPERTIES_TYPE, _table(b, {}, {}))
    labels = _table(b, ASSOCIATED_FILE, {"name": ("offset", s["labels"]),
                                         "description": ("offset", s["labels_text"]),
                                         "type": ("uint8", TENSOR_AXIS_LABELS)})
    waveform = _table(b, TENSOR_METADATA, {"name": ("offset", s["waveform"]),
                                           "description": ("offset", s["waveform_text"]),
                                           "content": ("offset", audio_content)})
    files, units = [labels], None
    if thresholds is not None:
        files.append(_table(b, ASSOCIATED_FILE, {"name": ("offset", s["calibration"]),
                                                 "description": ("offset", s["calibration_text"]),
                                                 "type": ("uint8", TENSOR_AXIS_SCORE_CALIBRATION)}))
        units = _vector(b, threshold_units(b, thresholds))
    files = _vector(b, files)
    probabilities = _table(b, TENSOR_METADATA, {"name": ("offset", s["probabilities"]),
                                                "description": ("offset", s["probabilities_text"]),
                                                "content": ("offset", feature_content),
                                                "process_units": ("offset", units),
                                                "associated_files": ("offset", files)})
    inputs, outputs = _vector(b, [waveform]), _vector(b, [probabilities])
    subgraph = _table(b, SUBGRAPH_METADATA, {"input_tensor_metadata": ("offset", inputs),
                                             "output_tensor_metadata": ("offset", outputs)})
    subgraphs = _vector(b, [subgraph])
    root = _table(b, MODEL_METADATA, {"name": ("offset", s["name"]), "description": ("offset", s["description"]),
                                      "version": ("offset", s["version"]),
                                      "subgraph_metadata": ("offset", subgraphs),
                                      "author": ("offset", s["author"]), "license": ("offset", s["license"]),
                                      "min_parser_version": ("offset", s["parser"])})
    b.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def threshold_units(b, thresholds) -> list:
    """The two ProcessUnits that apply per-tag thresholds: an INVERSE_LOGISTIC score calibration (default score
    0) and the global score threshold :func:`global_threshold`."""
    calibration = _table(b, SCORE_CALIBRATION, {"score_transformation": ("int8", INVERSE_LOGISTIC),
                                                "default_score": ("float32", 0.0)})
    thresholding = _table(b, SCORE_THRESHOLDING, {"global_score_threshold": ("float32", global_threshold(thresholds))})
    return [_table(b, PROCESS_UNIT, {"options_type": ("uint8", kind), "options": ("offset", table)})
            for kind, table in ((SCORE_CALIBRATION_OPTIONS, calibration), (SCORE_THRESHOLDING_OPTIONS, thresholding))]


def global_threshold(thresholds) -> float:
    """The smallest tag threshold (at least :data:`MIN_GLOBAL_THRESHOLD`): every tag at or above its own threshold
    passes it, every tag set to the default score 0 does not."""
    return max(float(min(thresholds)), MIN_GLOBAL_THRESHOLD)


def calibration_file(thresholds) -> str:
    """``score_calibration.txt``: per tag a line ``scale,slope,offset,min_score`` = ``1,1,0,THRESHOLD`` (with
    INVERSE_LOGISTIC, ``1 / (1 + exp(-logit(p))) = p``). No newline after the last: MediaPipe reads every line,
    an empty one included, as a tag's parameters."""
    return "\n".join(f"1.0,1.0,0.0,{float(t)!r}" for t in thresholds)


def _check_classifier(model, num_labels: int):
    """Refuse models MediaPipe's AudioClassifier cannot run with these labels (one float32 waveform in, one
    [1, C] float32 output with C == number of labels)."""
    graph = model.subgraphs[0] if len(model.subgraphs) == 1 else None
    if graph is None or len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ExportError("an audio classifier for MediaPipe needs one subgraph with one input and one output")
    waveform, probabilities = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    float32 = 0  # TensorType.FLOAT32
    if waveform.type != float32 or probabilities.type != float32:
        raise ExportError("the waveform input and the probabilities output must be float32")
    if int(probabilities.shape[-1]) != num_labels:
        raise ExportError(f"the model has {int(probabilities.shape[-1])} outputs but {num_labels} labels were given")


def with_audio_metadata(tflite_bytes: bytes, *, sample_rate: int, labels, name: str, description: str,
                        version: str, channels: int = 1, author: str | None = None,
                        license: str | None = None, thresholds=None) -> bytes:
    """``tflite_bytes`` with TFLite Model Metadata and ``labels.txt`` packed in, as MediaPipe's AudioClassifier
    requires. An existing ``TFLITE_METADATA`` entry (and any appended archive) is replaced, so this is
    idempotent; the model's graph and weights are unchanged. ``thresholds`` (one per label, a multi-label model):
    MediaPipe then returns only the tags at or above their threshold."""
    schema = tflite_schema()
    labels = [str(label) for label in labels]
    if not labels or any("\n" in label or not label for label in labels):
        raise ExportError("labels must be non-empty strings without line breaks")
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)
    _check_classifier(model, len(labels))
    if thresholds is not None and len(thresholds) != len(labels):
        raise ExportError(f"{len(thresholds)} thresholds for {len(labels)} labels")
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata_flatbuffer(sample_rate=sample_rate, channels=channels, name=name,
                                                    description=description, version=version, author=author,
                                                    license=license, thresholds=thresholds), np.uint8)
    entries = [m for m in (model.metadata or []) if m.name.decode() == METADATA_NAME]
    if entries:
        model.buffers[entries[0].buffer] = buffer
    else:
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers)
        model.buffers.append(buffer)
        model.metadata = (model.metadata or []) + [entry]
    builder = flatbuffers.Builder(len(tflite_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=MODEL_IDENTIFIER)
    files = {LABELS_FILE: "\n".join(labels) + "\n"}
    if thresholds is not None:
        files[CALIBRATION_FILE] = calibration_file(thresholds)
    return _append_files(bytes(builder.Output()), files)


def _append_files(model_bytes: bytes, files: dict) -> bytes:
    """``model_bytes`` followed by a zip archive of ``files`` (stored, fixed timestamps: the same input gives the
    same bytes). Zip offsets count from the start of the whole file, as MediaPipe's reader expects."""
    out = io.BytesIO(model_bytes)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as archive:
        for filename, text in files.items():
            archive.writestr(zipfile.ZipInfo(filename, date_time=(1980, 1, 1, 0, 0, 0)), text.encode("utf-8"))
    return out.getvalue()


# --- reading ----------------------------------------------------------------------------------------------------

def _offset(table: Table, slot: int) -> int:
    return table.Offset(4 + 2 * slot)


def _string(table: Table, slot: int) -> str | None:
    o = _offset(table, slot)
    return table.String(table.Pos + o).decode("utf-8") if o else None


def _scalar(table: Table, slot: int, flags):
    o = _offset(table, slot)
    return table.Get(flags, table.Pos + o) if o else 0


def _child(table: Table, slot: int) -> Table | None:
    o = _offset(table, slot)
    return Table(table.Bytes, table.Indirect(table.Pos + o)) if o else None


def _children(table: Table, slot: int) -> list:
    o = _offset(table, slot)
    if not o:
        return []
    start = table.Vector(o)
    return [Table(table.Bytes, table.Indirect(start + 4 * i)) for i in range(table.VectorLen(o))]


def _root(buf, identifier: bytes) -> Table:
    if bytes(buf[4:8]) != identifier:
        raise ExportError(f"not a {identifier.decode()} flatbuffer")
    return Table(buf, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0))


def metadata_buffer(tflite_bytes: bytes) -> bytes:
    """The raw ``TFLITE_METADATA`` flatbuffer of a model; ValueError when the model has none."""
    buf = bytearray(tflite_bytes)
    model = _root(buf, MODEL_IDENTIFIER)
    for entry in _children(model, MODEL["metadata"]):
        if _string(entry, MODEL_METADATA_ENTRY["name"]) != METADATA_NAME:
            continue
        buffer = _children(model, MODEL["buffers"])[_scalar(entry, MODEL_METADATA_ENTRY["buffer"], Uint32Flags)]
        offset = _scalar(buffer, MODEL_BUFFER["offset"], Uint64Flags)
        if offset:  # models over 2 GB keep buffers after the flatbuffer
            return bytes(buf[offset:offset + _scalar(buffer, MODEL_BUFFER["size"], Uint64Flags)])
        o = _offset(buffer, MODEL_BUFFER["data"])
        start = buffer.Vector(o)
        return bytes(buf[start:start + buffer.VectorLen(o)])
    raise ExportError("the model has no TFLite Model Metadata (no TFLITE_METADATA entry)")


def read_metadata(tflite_bytes: bytes) -> dict:
    """What an audio classifier's metadata tells a runtime: ``name``, ``description``, ``version``,
    ``min_parser_version``, ``sample_rate``, ``channels``, ``label_file`` and ``labels`` (read from the archive
    appended to the model). ValueError when the model has no metadata."""
    meta = _root(bytearray(metadata_buffer(tflite_bytes)), METADATA_IDENTIFIER)
    out = {key: _string(meta, MODEL_METADATA[key])
           for key in ("name", "description", "version", "author", "license", "min_parser_version")}
    [subgraph] = _children(meta, MODEL_METADATA["subgraph_metadata"])[:1] or [None]
    inputs = _children(subgraph, SUBGRAPH_METADATA["input_tensor_metadata"]) if subgraph else []
    outputs = _children(subgraph, SUBGRAPH_METADATA["output_tensor_metadata"]) if subgraph else []
    out["sample_rate"] = out["channels"] = None
    content = _child(inputs[0], TENSOR_METADATA["content"]) if inputs else None
    if content and _scalar(content, CONTENT["content_properties_type"], Uint8Flags) == AUDIO_PROPERTIES_TYPE:
        audio = _child(content, CONTENT["content_properties"])
        out["sample_rate"] = _scalar(audio, AUDIO_PROPERTIES["sample_rate"], Uint32Flags)
        out["channels"] = _scalar(audio, AUDIO_PROPERTIES["channels"], Uint32Flags)
    files = _children(outputs[0], TENSOR_METADATA["associated_files"]) if outputs else []
    out["label_file"] = next((_string(f, ASSOCIATED_FILE["name"]) for f in files
                              if _scalar(f, ASSOCIATED_FILE["type"], Uint8Flags) == TENSOR_AXIS_LABELS), None)
    out["labels"] = None
    if out["label_file"]:
        with zipfile.ZipFile(io.BytesIO(tflite_bytes)) as archive:
            out["labels"] = archive.read(out["label_file"]).decode("utf-8").splitlines()
    out.update(read_thresholds(tflite_bytes, outputs[0] if outputs else None, files))
    return out


def read_thresholds(tflite_bytes: bytes, output, files) -> dict:
    """``score_thresholds`` (the min_score of each tag's calibration line, or None) and ``global_score_threshold``
    (or None) of the output tensor's metadata."""
    out = {"score_thresholds": None, "global_score_threshold": None}
    for unit in _children(output, TENSOR_METADATA["process_units"]) if output else []:
        if _scalar(unit, PROCESS_UNIT["options_type"], Uint8Flags) == SCORE_THRESHOLDING_OPTIONS:
            options = _child(unit, PROCESS_UNIT["options"])
            out["global_score_threshold"] = _scalar(options, SCORE_THRESHOLDING["global_score_threshold"],
                                                    Float32Flags)
    name = next((_string(f, ASSOCIATED_FILE["name"]) for f in files
                 if _scalar(f, ASSOCIATED_FILE["type"], Uint8Flags) == TENSOR_AXIS_SCORE_CALIBRATION), None)
    if name:
        with zipfile.ZipFile(io.BytesIO(tflite_bytes)) as archive:
            lines = archive.read(name).decode("utf-8").splitlines()
        out["score_thresholds"] = [float(line.split(",")[3]) for line in lines]
    return out
