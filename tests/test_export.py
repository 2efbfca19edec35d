"""Deployment: the exported SavedModel (serving_default + classify_wav) in fresh processes and saved_model_cli,
in-graph resampling against soxr, the TFLite file, predict from every source, and the TF Serving REST client."""
import base64
import io
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import GTZAN_DEV, run_cli

import genrenet
from genrenet.data.synthetic import generate_clip

SR = 22050
# Models whose TFLite conversion (recurrent layers unrolled over every frame) takes minutes: parity in -m slow.
SLOW_TFLITE = {"lstm", "lstm_attention", "cnn_rnn_fusion", "crnn_attention"}

# Runs in a FRESH interpreter without genrenet on the path: the export must need core TF only.
FRESH_SCRIPT = r'''
import json, sys
import keras
import numpy as np
import tensorflow as tf
export_dir, request = sys.argv[1], json.load(open(sys.argv[2]))
m = tf.saved_model.load(export_dir)
assert not any(k.startswith("genrenet") for k in sys.modules), "the export imported genrenet"
wav, out = m.signatures["classify_wav"], {}
def run(sig, **kw):
    r = sig(**kw)
    return {"probabilities": r["probabilities"].numpy().tolist(), "label": [s.decode() for s in r["label"].numpy()],
            "label_id": r["label_id"].numpy().tolist()}
files = [open(f, "rb").read() for f in request["wavs"]]
out["batch"] = run(wav, wav_bytes=tf.constant(files))
out["single"] = [run(wav, wav_bytes=tf.constant([f])) for f in files]
if request.get("waveform"):
    w = np.load(request["waveform"])
    out["waveform"] = run(m.signatures["serving_default"], waveform=tf.constant(w[None]))
empty = files[0][:36] + b"data" + (0).to_bytes(4, "little")  # a valid header with no samples
empty = empty[:4] + (len(empty) - 8).to_bytes(4, "little") + empty[8:]
bad_inputs = [("garbage", b"definitely not a wav file"), ("truncated", files[0][:30]), ("empty", empty)]
if request.get("pcm24"):
    bad_inputs.append(("pcm24", open(request["pcm24"], "rb").read()))
for name, bad in bad_inputs:
    try:
        wav(wav_bytes=tf.constant([files[0], bad]))
        out[name] = "no error"
    except tf.errors.InvalidArgumentError as e:
        out[name] = "InvalidArgument"
print(json.dumps(out))
'''


def _fresh(export_dir, tmp_path, wavs, waveform=None, pcm24=None):
    """Load ``export_dir`` in a new Python process (repo not on the path) and run both signatures."""
    script = tmp_path / "fresh.py"
    script.write_text(FRESH_SCRIPT)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"wavs": [str(w) for w in wavs], "waveform": str(waveform) if waveform else None,
                                   "pcm24": str(pcm24) if pcm24 else None}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    r = subprocess.run([sys.executable, str(script), str(export_dir), str(request)], capture_output=True,
                       text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _write_wav(path, audio, sr, subtype="PCM_16"):
    import soundfile as sf

    sf.write(str(path), audio, sr, subtype=subtype, format="WAV")
    return path


def _music(seconds, style="rock", seed=0, sr=SR):
    return (0.8 * generate_clip(style, seconds, sr, np.random.default_rng(seed))).astype(np.float32)


def _same_label(p, q, tol):
    """Labels must agree unless the reference's top two classes are within ``tol`` of each other."""
    p, q = np.asarray(p), np.asarray(q)
    top2 = np.sort(q)[-2:]
    return int(np.argmax(p)) == int(np.argmax(q)) or top2[1] - top2[0] <= tol


def _minimal_run(path, name, num_classes=4, **kwargs):
    """model.keras + labels.json + config.json as genrenet.training.trainer writes them, for an untrained model."""
    from genrenet.registry import get_spec

    spec = get_spec(name)
    keras.utils.set_random_seed(0)  # the same weights every run: comparisons at a tolerance must not be luck
    model = genrenet.build_model(name, num_classes=num_classes, **kwargs)
    path.mkdir(parents=True, exist_ok=True)
    model.save(str(path / "model.keras"))
    labels = [f"genre{i}" for i in range(num_classes)]
    (path / "labels.json").write_text(json.dumps(labels))
    (path / "config.json").write_text(json.dumps({
        "model": name, "model_kwargs": kwargs, "num_classes": num_classes, "features": spec.features.to_dict(),
        "window_seconds": spec.window_seconds, "window_samples": spec.window_samples(), "seed": 0}))
    return path


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """tiny_run exported with --tflite; returns the version directory."""
    from genrenet.serve.export import export

    out = tmp_path_factory.mktemp("export")
    return export(str(tiny_run), str(out), tflite=True, verbose=0)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """The same music as 22.05 kHz mono (16-bit), 44.1 kHz stereo (16-bit), plus a shorter 16 kHz clip."""
    import soxr

    d = tmp_path_factory.mktemp("audio")
    music = _music(7.0)
    up = soxr.resample(music, SR, 44100, quality="VHQ").astype(np.float32)
    short = soxr.resample(_music(4.0, "ambient", 1), SR, 16000, quality="VHQ").astype(np.float32)
    return {"mono": _write_wav(d / "mono22k.wav", music, SR),
            "stereo": _write_wav(d / "stereo44k.wav", np.stack([up, up], 1), 44100),
            "short": _write_wav(d / "short16k.wav", short, 16000),
            "pcm24": _write_wav(d / "pcm24.wav", music, SR, "PCM_24")}


# --- in-graph resampling --------------------------------------------------------------------------------------

def _in_band_snr(y, ref, rate, band):
    n = min(len(y), len(ref))
    Y, R = np.fft.rfft(y[:n]), np.fft.rfft(ref[:n])
    keep = np.fft.rfftfreq(n, 1 / rate) <= band
    if np.array_equal(R[keep], Y[keep]):
        return np.inf
    return 10 * np.log10(np.sum(np.abs(R[keep]) ** 2) / np.sum(np.abs(R[keep] - Y[keep]) ** 2))


@pytest.mark.parametrize("rate", [44100, 48000, 16000, 8000, 22050])
def test_in_graph_resampling_matches_soxr(rate):
    import soxr
    import tensorflow as tf

    from genrenet.nn.wav import resample

    x = soxr.resample(_music(4.0, "disco", 3), SR, rate, quality="VHQ") if rate != SR else _music(4.0, "disco", 3)
    ref = soxr.resample(x, rate, SR, quality="HQ")
    y = tf.function(lambda a, r: resample(a, r, SR))(tf.constant(x), tf.constant(rate)).numpy()
    assert len(y) == len(ref)  # round(N·target/orig), as soxr
    band = 0.85 * min(rate, SR) / 2
    snr = _in_band_snr(y, ref, SR, band)
    assert snr > 40, f"{rate} Hz → {SR} Hz: in-band SNR against soxr {snr:.1f} dB"


# --- the SavedModel ---------------------------------------------------------------------------------------------

def test_export_layout_assets_and_refusal(exported, tiny_run):
    from genrenet.infer.source import load_export_meta
    from genrenet.serve.export import ExportError, export

    names = sorted(os.listdir(exported))
    assert {"saved_model.pb", "variables", "assets", "model.tflite"} <= set(names)
    assert not [n for n in os.listdir(os.path.dirname(exported)) if n.startswith(".tmp")]
    meta = load_export_meta(exported)
    assert meta["labels"] == json.loads((tiny_run / "labels.json").read_text())
    assert set(meta["signatures"]) == {"serving_default", "classify_wav"} and meta["tflite"]["file"] == "model.tflite"
    with open(os.path.join(exported, "assets", "labels.txt")) as f:
        assert f.read().split() == meta["labels"]
    out = os.path.dirname(os.path.dirname(exported))
    with pytest.raises(ExportError, match="already exists"):
        export(str(tiny_run), out, verbose=0)


def test_export_has_core_ops_only_after_fused_inference(tiny_run, tmp_path):
    """genrenet evaluates and predicts with an XLA-fused front-end; an export must never carry XLA clusters."""
    from tensorflow.core.protobuf import saved_model_pb2

    from genrenet.infer.windows import inference_function
    from genrenet.run import Run
    from genrenet.serve.export import export

    model = Run(tiny_run).load_model()
    inference_function(model, fused=True)(np.zeros((1, model.input_shape[-1]), np.float32))  # fused trace first
    version = export(str(tiny_run), str(tmp_path), verbose=0)
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(version, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    functions = [f for g in saved.meta_graphs for f in g.graph_def.library.function]
    assert functions and not [f.signature.name for f in functions if f.attr["_XlaMustCompile"].b]
    ops = {n.op for f in functions for n in f.node_def}
    assert "RFFT" in ops and not {o for o in ops if o.startswith("Xla")}


def test_both_signatures_in_a_fresh_process_match_predict(exported, tiny_run, audio_files, tmp_path):
    from genrenet.data import load_audio
    from genrenet import predict

    wave = tmp_path / "wave.npy"
    np.save(wave, load_audio(audio_files["mono"], SR))
    wavs = [audio_files["mono"], audio_files["stereo"], audio_files["short"]]
    out = _fresh(exported, tmp_path, wavs, waveform=wave, pcm24=audio_files["pcm24"])
    ref = predict(str(tiny_run), [str(w) for w in wavs], verbose=0)

    batch = np.array(out["batch"]["probabilities"])
    # batch items of different lengths average only their own windows: same as one at a time
    np.testing.assert_allclose(batch, np.array([s["probabilities"][0] for s in out["single"]]), atol=1e-5)
    # 22.05 kHz mono WAV: identical samples to the run path (soundfile) → same probabilities
    np.testing.assert_allclose(batch[0], list(ref[0]["probabilities"].values()), atol=1e-4)
    np.testing.assert_allclose(out["waveform"]["probabilities"][0], batch[0], atol=1e-5)
    assert out["batch"]["label"][0] == out["waveform"]["label"][0] == ref[0]["label"]
    # 44.1 kHz stereo: resampled in the graph (vs soxr in the run path) → same label as its 22.05 kHz mono version
    assert out["batch"]["label"][1] == out["batch"]["label"][0]
    np.testing.assert_allclose(batch[1], batch[0], atol=2e-2)
    # 16 kHz, shorter than the 7-s ones: upsampled in the graph, compared with soxr in the run path
    np.testing.assert_allclose(batch[2], list(ref[2]["probabilities"].values()), atol=2e-2)
    assert _same_label(batch[2], list(ref[2]["probabilities"].values()), 2e-2)
    assert out["batch"]["label_id"] == [int(np.argmax(p)) for p in batch]
    assert out["garbage"] == out["truncated"] == out["empty"] == out["pcm24"] == "InvalidArgument"


def _saved_model_cli():
    path = shutil.which("saved_model_cli")
    return [path] if path else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]


def test_saved_model_cli_runs_both_signatures(exported, tmp_path):
    import soxr

    # a small 8 kHz stereo WAV fits in --input_exprs as a bytes literal (ast.literal_eval; all bytes escaped,
    # since saved_model_cli splits the expression string at ';' and '=')
    clip = soxr.resample(_music(0.5, "techno", 2), SR, 8000).astype(np.float32)
    data = io.BytesIO()
    import soundfile as sf

    sf.write(data, np.stack([clip, clip], 1), 8000, subtype="PCM_16", format="WAV")
    np.save(tmp_path / "waveform.npy", np.stack([_music(3.5, "jazz", 4), _music(3.5, "rock", 5)]))
    literal = "b'" + "".join(f"\\x{b:02x}" for b in data.getvalue()) + "'"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    labels = open(os.path.join(exported, "assets", "labels.txt")).read().split()
    for signature, inputs in (("classify_wav", ["--input_exprs", f"wav_bytes=[{literal}]"]),
                              ("serving_default", ["--inputs", f"waveform={tmp_path / 'waveform.npy'}"])):
        outdir = tmp_path / signature
        r = subprocess.run(_saved_model_cli() + ["run", "--dir", str(exported), "--tag_set", "serve",
                                                 "--signature_def", signature, *inputs, "--outdir", str(outdir)],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        probs = np.load(outdir / "probabilities.npy")
        label = np.load(outdir / "label.npy", allow_pickle=True)
        assert probs.shape == (1 if signature == "classify_wav" else 2, len(labels))
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
        assert [l.decode() for l in label] == [labels[i] for i in probs.argmax(1)]


@pytest.mark.skipif(not GTZAN_DEV.is_dir(), reason="../shared/data/gtzan_dev is absent")
def test_real_gtzan_44k_stereo_matches_its_22k_mono_version(exported, tmp_path):
    import soundfile as sf
    import soxr
    import tensorflow as tf

    m = tf.saved_model.load(exported).signatures["classify_wav"]
    files = [sorted((GTZAN_DEV / g).glob("*.wav"))[0] for g in ("classical", "metal", "reggae")]
    mono, stereo = [], []
    for f in files:
        x, sr = sf.read(str(f), dtype="float32")
        up = soxr.resample(x, sr, 44100, quality="VHQ")
        mono.append(open(f, "rb").read())
        buf = io.BytesIO()
        sf.write(buf, np.stack([up, up], 1), 44100, subtype="PCM_16", format="WAV")
        stereo.append(buf.getvalue())
    a, b = m(wav_bytes=tf.constant(mono)), m(wav_bytes=tf.constant(stereo))
    assert list(a["label"].numpy()) == list(b["label"].numpy())
    np.testing.assert_allclose(a["probabilities"].numpy(), b["probabilities"].numpy(), atol=2e-2)


# --- TFLite -----------------------------------------------------------------------------------------------------

def _tflite_probs(content_or_path, windows):
    from genrenet.infer.source import tflite_interpreter

    path = content_or_path
    it = tflite_interpreter(path)
    inp = it.get_input_details()[0]
    assert list(inp["shape_signature"]) == [-1, windows.shape[1]]
    it.resize_tensor_input(inp["index"], list(windows.shape))
    it.allocate_tensors()
    it.set_tensor(inp["index"], windows)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def _builtin_ops_only(path):
    from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.ModelT.InitFromPackedBuf(f.read(), 0)
    codes = [model.operatorCodes[op.opcodeIndex] for g in model.subgraphs for op in g.operators]
    custom = [c.customCode for c in codes if c.customCode]
    assert not custom, f"custom / select-TF ops in the TFLite file: {custom}"


def test_tflite_file_matches_keras_and_predicts(exported, tiny_run, audio_files, tmp_path):
    from genrenet import predict
    from genrenet.run import Run

    path = os.path.join(exported, "model.tflite")
    _builtin_ops_only(path)
    model = Run(str(tiny_run)).load_model()
    W = model.input_shape[1]
    windows = np.stack([_music(3.0, s, 7)[:W] for s in ("rock", "ambient", "disco")])
    assert np.abs(_tflite_probs(path, windows) - model(windows).numpy()).max() <= 1e-4

    files = [str(audio_files["mono"]), str(audio_files["short"])]
    ref = predict(str(tiny_run), files, verbose=0)
    r = run_cli("predict", path, *files, "--top-k", "2", "--json")
    assert r.returncode == 0, r.stderr
    lite = json.loads(r.stdout.strip().splitlines()[-1])
    for a, b in zip(lite, ref):
        assert a["label"] == b["label"] and a["windows"] == b["windows"] and len(a["top"]) == 2
        assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in b["probabilities"]) <= 1e-4
    saved = predict(exported, files, verbose=0)
    for a, b in zip(saved, ref):
        assert a["label"] == b["label"] and a["windows"] == b["windows"]
        assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in b["probabilities"]) <= 1e-5


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TFLITE else n
                                  for n in genrenet.list_models()])
def test_tflite_parity_every_model(name, tmp_path):
    """Default widths, untrained: TFLite (builtins, RNNs unrolled) vs Keras, max |Δp| ≤ 1e-4."""
    from genrenet.serve.export import ExportError, tflite_model

    model = genrenet.build_model(name, num_classes=5)
    W = model.input_shape[1]
    try:
        content = tflite_model(model, W)
    except ExportError as e:  # a model that cannot be converted must say so clearly
        assert name in str(e) and "export without --tflite" in str(e)
        pytest.skip(str(e))
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(content)
    _builtin_ops_only(path)
    windows = np.stack([_music(W / SR + 0.1, s, 9)[:W] for s in ("rock", "jazz")])
    assert np.abs(_tflite_probs(str(path), windows) - model(windows).numpy()).max() <= 1e-4


# --- every registered model: export → fresh process → both signatures agree with predict --------------------------

@pytest.mark.parametrize("name", [n if n == "cnn" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in genrenet.list_models()])
def test_every_model_exports_and_serves_like_predict(name, tmp_path):
    """Default widths, untrained. ~15 s for cnn, 30-50 s for each recurrent model on 2 busy cores (all: -m slow)."""
    from genrenet.serve.export import export
    from genrenet import predict
    from genrenet.registry import get_spec

    run = _minimal_run(tmp_path / "run", name)
    version = export(str(run), str(tmp_path / "export"), verbose=0)
    wav = _write_wav(tmp_path / "clip.wav", _music(7.0, "reggae", 11), SR)
    wave = tmp_path / "wave.npy"
    from genrenet.data import load_audio

    rate = get_spec(name).features.sample_rate
    np.save(wave, load_audio(wav, rate))  # serving_default takes the waveform at the model's own rate
    out = _fresh(version, tmp_path, [wav], waveform=wave)
    [ref] = predict(str(run), [str(wav)], verbose=0)
    ref_p = list(ref["probabilities"].values())
    # classify_wav resamples in the graph (FFT); predict uses soxr: they differ slightly above the pass band
    wav_atol = 1e-4 if rate == SR else 2e-3
    for got, atol in ((out["batch"], wav_atol), (out["waveform"], 1e-4)):
        np.testing.assert_allclose(got["probabilities"][0], ref_p, atol=atol)
        assert got["label"][0] == ref["label"] or _same_label(got["probabilities"][0], ref_p, atol)


# --- TF Serving REST client ---------------------------------------------------------------------------------------

def test_rest_request_fits_the_exported_signature(exported, tiny_run, audio_files, tmp_path):
    import tensorflow as tf

    from genrenet import predict
    from genrenet.serve.rest import is_pcm16_wav, make_rest_request, parse_rest_response, wav_bytes
    from serving_fakes import decode_rest_request, rest_response

    import soundfile as sf

    flac = tmp_path / "song.flac"
    sf.write(str(flac), sf.read(str(audio_files["stereo"]))[0], 44100)
    files = [audio_files["mono"], flac, audio_files["pcm24"]]
    assert is_pcm16_wav(wav_bytes(flac)) and is_pcm16_wav(wav_bytes(audio_files["pcm24"]))
    assert wav_bytes(audio_files["mono"]) == audio_files["mono"].read_bytes()  # sent as is

    loaded = tf.saved_model.load(exported)
    labels = open(os.path.join(exported, "assets", "labels.txt")).read().split()
    ref = predict(str(tiny_run), [str(audio_files["mono"])], verbose=0)[0]
    for named in (False, True):
        body = json.loads(json.dumps(make_rest_request(files, named=named)))  # survives JSON
        assert body["signature_name"] == "classify_wav" and len(body["instances"]) == 3
        first = body["instances"][0]["wav_bytes"] if named else body["instances"][0]
        assert set(first) == {"b64"} and base64.b64decode(first["b64"])[:4] == b"RIFF"
        sig = loaded.signatures[body["signature_name"]]
        specs = sig.structured_input_signature[1]
        assert {k: v.dtype.name for k, v in specs.items()} == {"wav_bytes": "string"}
        feed = decode_rest_request(body, specs)
        outputs = sig(**{k: tf.constant(v) for k, v in feed.items()})
        for row_format in (True, False):
            results = parse_rest_response(json.loads(json.dumps(rest_response(outputs, row_format))),
                                          top_k=2, labels=labels)
            assert [r["label"] for r in results][0] == ref["label"]
            assert results[1]["label"] == results[2]["label"] == results[0]["label"]  # same music, 3 encodings
            assert results[0]["top"][0][0] == ref["label"] and len(results[0]["top"]) == 2

    body = json.loads(json.dumps(make_rest_request([audio_files["mono"]], "serving_default", sample_rate=SR)))
    sig = loaded.signatures["serving_default"]
    feed = decode_rest_request(body, sig.structured_input_signature[1])
    assert feed["waveform"].dtype == np.float32 and feed["waveform"].shape[0] == 1
    [result] = parse_rest_response(rest_response(sig(waveform=tf.constant(feed["waveform"]))))
    assert result["label"] == ref["label"]
    with pytest.raises(ValueError, match="must only have keys"):
        decode_rest_request({"instances": [{"audio": {"b64": ""}}]}, loaded.signatures["classify_wav"]
                            .structured_input_signature[1])


def test_predict_rest_posts_to_the_tf_serving_url(exported, audio_files, monkeypatch):
    """The requests-based client end to end, with TF Serving replaced by the loaded SavedModel."""
    import requests
    import tensorflow as tf

    from genrenet.serve.rest import predict_rest
    from serving_fakes import decode_rest_request, rest_response

    loaded = tf.saved_model.load(exported)
    calls = []

    class Reply:
        status_code = 200

        def __init__(self, payload):
            self.payload = payload

        def json(self):
            return self.payload

    def fake_post(url, json=None, timeout=None):
        calls.append(url)
        sig = loaded.signatures[json.get("signature_name", "serving_default")]
        feed = decode_rest_request(json, sig.structured_input_signature[1])
        return Reply(rest_response(sig(**{k: tf.constant(v) for k, v in feed.items()})))

    monkeypatch.setattr(requests, "post", fake_post)
    results = predict_rest("http://localhost:8501/", [audio_files["mono"], audio_files["stereo"]], version=1)
    assert calls == ["http://localhost:8501/v1/models/genrenet/versions/1:predict"]
    assert results[0]["label"] == results[1]["label"] and len(results[0]["top"]) == 3
