"""A tiny TF Serving REST client for genrenet exports (``requests`` + the standard library).

Serve an export (``genrenet export RUN --out export``)::

    docker run -p 8501:8501 -v $PWD/export/genrenet:/models/genrenet -e MODEL_NAME=genrenet tensorflow/serving

then classify files::

    from genrenet.serve.rest import predict_rest
    predict_rest("http://localhost:8501", ["song.flac"], model="genrenet")   # [{"label": ..., ...}]

Request bodies follow TF Serving's REST predict API in row format: ``{"signature_name": "classify_wav",
"instances": [{"b64": "<base64 of a WAV file>"}, ...]}`` (binary string values are JSON objects with the single
key ``b64``; with one input, an instance is the value itself). The response is ``{"predictions": [{"label":
..., "label_id": ..., "probabilities": [...]}, ...]}`` (one object per instance, because the signature has
several outputs). ``classify_wav`` needs 16-bit PCM WAV (``tf.audio.decode_wav``); :func:`wav_bytes`
converts anything soundfile reads, keeping the rate and channels (the served graph mixes and resamples).
"""
from __future__ import annotations

import base64
import io
import os
import struct

import numpy as np

from ..errors import RequestError, ServingError

WAV_SIGNATURE = "classify_wav"
WAVEFORM_SIGNATURE = "serving_default"
INPUT_NAMES = {WAV_SIGNATURE: "wav_bytes", WAVEFORM_SIGNATURE: "waveform"}


def is_pcm16_wav(data: bytes) -> bool:
    """True when ``data`` is a RIFF/WAVE file that ``tf.audio.decode_wav`` reads: format tag 1 (PCM), 16 bits,
    a 16- or 18-byte ``fmt`` chunk."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if chunk == b"fmt ":
            if size not in (16, 18) or pos + 8 + 16 > len(data):
                return False
            tag, _, _, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8:pos + 24])
            return tag == 1 and bits == 16
        pos += 8 + size + (size & 1)
    return False


def wav_bytes(path_or_audio, sample_rate: int | None = None) -> bytes:
    """A 16-bit PCM WAV for ``classify_wav``: a path (any format soundfile reads; a 16-bit PCM WAV is sent
    as is) or a float array [samples] / [samples, channels] with its ``sample_rate``."""
    import soundfile as sf

    if isinstance(path_or_audio, (str, os.PathLike)):
        with open(path_or_audio, "rb") as f:
            data = f.read()
        if is_pcm16_wav(data):
            return data
        audio, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    else:
        if sample_rate is None:
            raise RequestError("wav_bytes(array) needs sample_rate")
        audio = np.asarray(path_or_audio, np.float32)
    out = io.BytesIO()
    sf.write(out, np.clip(audio, -1.0, 1.0), int(sample_rate), subtype="PCM_16", format="WAV")
    return out.getvalue()


def make_rest_request(files, signature: str = WAV_SIGNATURE, *, sample_rate: int | None = None,
                      named: bool = False) -> dict:
    """The JSON body of a TF Serving ``:predict`` call classifying ``files`` (paths, or WAV bytes).

    ``classify_wav`` (default): one ``{"b64": ...}`` instance per file (``named=True`` writes
    ``{"wav_bytes": {"b64": ...}}`` instead; both are valid). ``serving_default``: each file decoded and
    resampled to ``sample_rate`` (the model's, required) here, zero-padded to the longest, as float lists —
    large, and the padding counts as windows, so prefer ``classify_wav`` or one file per request.
    """
    if signature == WAV_SIGNATURE:
        instances = []
        for f in files:
            data = f if isinstance(f, (bytes, bytearray)) else wav_bytes(f)
            value = {"b64": base64.b64encode(bytes(data)).decode("ascii")}
            instances.append({INPUT_NAMES[signature]: value} if named else value)
    elif signature == WAVEFORM_SIGNATURE:
        if sample_rate is None:
            raise RequestError("serving_default takes waveforms at the model's rate: pass sample_rate")
        from ..data import load_audio

        audio = [load_audio(f, sample_rate) for f in files]
        width = max(len(a) for a in audio)
        rows = [np.pad(a, (0, width - len(a))).tolist() for a in audio]
        instances = [{INPUT_NAMES[signature]: r} for r in rows] if named else rows
    else:
        raise RequestError(f"unknown signature {signature!r}; genrenet exports {sorted(INPUT_NAMES)}")
    return {"signature_name": signature, "instances": instances}


def parse_rest_response(response: dict, *, top_k: int = 3, labels=None) -> list[dict]:
    """TF Serving's JSON answer (``predictions`` rows or ``outputs`` columns) → one dict per instance:
    ``label``, ``label_id``, ``probabilities`` and ``top`` [[label, p], ...] (labels from the response's
    ``label`` output, or ``labels`` — e.g. ``assets/labels.txt`` — for names in ``top``)."""
    if "error" in response:
        raise ServingError(f"TF Serving error: {response['error']}")
    if "predictions" in response:
        rows = response["predictions"]
    elif "outputs" in response:
        cols = response["outputs"]
        rows = [dict(zip(cols, values)) for values in zip(*cols.values())]
    else:
        raise RequestError("not a TF Serving predict response (no 'predictions' or 'outputs')")
    results = []
    for row in rows:
        probs = np.asarray(row["probabilities"], np.float64)
        names = list(labels) if labels is not None else None
        order = np.argsort(-probs)[:max(1, top_k)]
        label = row.get("label")
        if isinstance(label, dict) and "b64" in label:
            label = base64.b64decode(label["b64"]).decode()
        results.append({"label": label if label is not None else (names[order[0]] if names else int(order[0])),
                        "label_id": int(row.get("label_id", order[0])),
                        "probabilities": probs.tolist(),
                        "top": [[names[i] if names else int(i), float(probs[i])] for i in order]})
    return results


def predict_rest(url: str, files, *, model: str = "genrenet", version: int | None = None,
                 signature: str = WAV_SIGNATURE, top_k: int = 3, labels=None, timeout: float = 60.0,
                 sample_rate: int | None = None) -> list[dict]:
    """POST ``files`` to TF Serving at ``url`` (e.g. ``http://localhost:8501``) and parse the answer."""
    import requests

    path = f"/v1/models/{model}" + (f"/versions/{int(version)}" if version is not None else "") + ":predict"
    body = make_rest_request(files, signature, sample_rate=sample_rate)
    reply = requests.post(url.rstrip("/") + path, json=body, timeout=timeout)
    try:
        payload = reply.json()
    except ValueError:
        reply.raise_for_status()
        raise
    if reply.status_code != 200:
        raise ServingError(f"TF Serving answered {reply.status_code}: {payload.get('error', payload)}")
    return parse_rest_response(payload, top_k=top_k, labels=labels)
