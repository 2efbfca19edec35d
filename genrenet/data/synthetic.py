"""A built-in, procedurally generated dataset of genre-like music, so that everything runs with no download.

Each class is a style: its own tempo range, drum pattern, bass line, harmony and timbre. Within a class, key,
tempo, mix levels, instrument dropouts and noise vary per clip, and the tempo ranges and instruments of
neighbouring styles overlap, so the task is learnable but not trivial. Nothing is written to disk unless asked.
"""
from __future__ import annotations

import numpy as np

# name: (tempo range bpm, kick steps, snare steps, hat steps (16 steps per bar), bass style, chord style, timbre)
STYLES = {
    "ambient": dict(tempo=(60, 90), kick=(), snare=(), hat=(), bass="drone", chords="pad", timbre="sine",
                    minor=0.5),
    "rock": dict(tempo=(100, 140), kick=(0, 8, 10), snare=(4, 12), hat=tuple(range(0, 16, 2)), bass="root8",
                 chords="power", timbre="distorted", minor=0.3),
    "disco": dict(tempo=(112, 128), kick=(0, 4, 8, 12), snare=(4, 12), hat=(2, 6, 10, 14), bass="octave",
                  chords="stab", timbre="square", minor=0.3),
    "jazz": dict(tempo=(90, 160), kick=(0,), snare=(6, 14), hat=(0, 4, 7, 8, 12, 15), bass="walking",
                 chords="seventh", timbre="triangle", minor=0.5),
    "techno": dict(tempo=(125, 140), kick=(0, 4, 8, 12), snare=(), hat=tuple(range(1, 16, 2)), bass="pulse",
                   chords="none", timbre="saw", minor=0.7),
    "reggae": dict(tempo=(70, 92), kick=(8,), snare=(8,), hat=tuple(range(0, 16, 2)), bass="root_sparse",
                   chords="skank", timbre="square", minor=0.4),
    "folk": dict(tempo=(80, 120), kick=(), snare=(), hat=(), bass="root_sparse", chords="arpeggio",
                 timbre="pluck", minor=0.4),
    "metal": dict(tempo=(140, 190), kick=tuple(range(0, 16, 1)), snare=(4, 12), hat=tuple(range(0, 16, 2)),
                  bass="root8", chords="power", timbre="distorted", minor=0.9),
    "hiphop": dict(tempo=(80, 98), kick=(0, 3, 10), snare=(4, 12), hat=tuple(range(0, 16, 2)), bass="root_sparse",
                   chords="stab", timbre="sine", minor=0.7),
    "classical": dict(tempo=(60, 110), kick=(), snare=(), hat=(), bass="drone", chords="arpeggio",
                      timbre="strings", minor=0.5),
}
DEFAULT_CLASSES = ("ambient", "rock", "disco", "jazz", "techno", "reggae")


def _osc(phase, timbre, rng):
    """One cycle shape per timbre; ``phase`` is in cycles."""
    p = phase % 1.0
    if timbre == "sine":
        return np.sin(2 * np.pi * phase)
    if timbre == "square":
        return np.sign(np.sin(2 * np.pi * phase)) * 0.5
    if timbre == "saw":
        return (2 * p - 1) * 0.6
    if timbre == "triangle":
        return 2 * np.abs(2 * p - 1) - 1
    if timbre == "distorted":
        return np.tanh(4 * ((2 * p - 1) + 0.5 * np.sin(4 * np.pi * phase)))
    if timbre == "strings":
        return sum(np.sin(2 * np.pi * k * phase) / k for k in range(1, 6)) * 0.5
    return np.sin(2 * np.pi * phase) + 0.3 * np.sin(6 * np.pi * phase)  # pluck


def _envelope(n, sr, attack, decay):
    t = np.arange(n) / sr
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)


def _note(freq, n, sr, timbre, rng, attack=0.005, decay=0.3):
    phase = freq * np.arange(n) / sr + rng.random()
    return _osc(phase, timbre, rng) * _envelope(n, sr, attack, decay)


def _drum(kind, n, sr, rng):
    t = np.arange(n) / sr
    if kind == "kick":
        freq = 50 + 90 * np.exp(-t * 30)
        return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t * 12)
    noise = rng.standard_normal(n)
    if kind == "snare":
        return 0.5 * noise * np.exp(-t * 20) + 0.3 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25)
    hp = np.diff(noise, prepend=0.0)  # crude high-pass for a hat
    return 0.3 * hp * np.exp(-t * 60)


def _place(track, sound, start):
    end = min(len(track), start + len(sound))
    if start < end:
        track[start:end] += sound[: end - start]


def generate_clip(style: str, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of ``style``; deterministic for a given ``rng`` state."""
    s = STYLES[style]
    sr = sample_rate
    n = int(seconds * sr)
    tempo = rng.uniform(*s["tempo"])
    step = 60.0 / tempo / 4  # a 16th note, seconds
    swing = 0.33 * step if style == "jazz" else 0.0
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    minor = rng.random() < s["minor"]
    third = 3 if minor else 4
    progression = [0, 5, 7, 3 if minor else 9][: rng.integers(2, 5)]
    rng.shuffle(progression)

    drums = np.zeros(n)
    bass = np.zeros(n)
    harmony = np.zeros(n)
    n_steps = int(seconds / step) + 1
    drum_len = int(0.25 * sr)
    levels = {k: rng.uniform(0.5, 1.0) for k in ("kick", "snare", "hat", "bass", "harm")}
    if rng.random() < 0.3:  # sometimes one instrument sits out; bass and harmony never both
        levels[("kick", "snare", "hat", "bass", "harm")[rng.integers(0, 5)]] = 0.0
    for i in range(n_steps):
        t0 = i * step + (swing if i % 2 else 0.0)
        start = int(t0 * sr)
        pos = i % 16
        bar = i // 16
        chord_root = root * 2 ** (progression[bar % len(progression)] / 12)
        for kind in ("kick", "snare", "hat"):
            if pos in s[kind] and levels[kind]:
                _place(drums, levels[kind] * _drum(kind, drum_len, sr, rng) * rng.uniform(0.8, 1.0), start)
        _add_bass(bass, s["bass"], pos, i, chord_root, third, start, step, sr, rng)
        _add_chords(harmony, s["chords"], s["timbre"], pos, chord_root, third, start, step, sr, rng)
    mix = drums + levels["bass"] * bass + levels["harm"] * harmony
    mix = mix / (np.max(np.abs(mix)) + 1e-9)
    snr_db = rng.uniform(10, 30)
    noise = rng.standard_normal(n) * np.sqrt(np.mean(mix**2) / 10 ** (snr_db / 10))
    out = (mix + noise) * rng.uniform(0.3, 0.9)
    return np.clip(out, -1, 1).astype(np.float32)


def _add_bass(track, style, pos, i, chord_root, third, start, step, sr, rng):
    f = chord_root / 2
    if style == "drone" and pos == 0:
        _place(track, _note(f, int(16 * step * sr), sr, "sine", rng, attack=0.5, decay=4.0), start)
    elif style == "root8" and pos % 2 == 0:
        _place(track, _note(f, int(2 * step * sr), sr, "saw", rng, decay=0.2), start)
    elif style == "octave" and pos % 2 == 0:
        _place(track, _note(f * (2 if pos % 4 else 1), int(2 * step * sr), sr, "square", rng, decay=0.15), start)
    elif style == "walking" and pos % 4 == 0:
        interval = (0, third, 7, 10)[(pos // 4) % 4] + rng.integers(-1, 2)
        _place(track, _note(f * 2 ** (interval / 12), int(4 * step * sr), sr, "sine", rng, decay=0.4), start)
    elif style == "pulse":
        _place(track, 0.6 * _note(f / 2, int(step * sr), sr, "saw", rng, decay=0.08), start)
    elif style == "root_sparse" and pos in (0, 6, 10):
        _place(track, _note(f, int(3 * step * sr), sr, "sine", rng, decay=0.35), start)


def _add_chords(track, style, timbre, pos, chord_root, third, start, step, sr, rng):
    intervals = {"power": (0, 7, 12), "seventh": (0, third, 7, 10)}.get(style, (0, third, 7))
    freqs = [2 * chord_root * 2 ** (k / 12) for k in intervals]
    if style == "pad" and pos == 0:
        n = int(16 * step * sr)
        _place(track, sum(_note(f, n, sr, timbre, rng, attack=1.0, decay=6.0) for f in freqs) / 3, start)
    elif style == "power" and pos % 8 == 0:
        n = int(8 * step * sr)
        _place(track, sum(_note(f, n, sr, timbre, rng, decay=0.8) for f in freqs) / 3, start)
    elif style == "stab" and pos in (2, 10):
        n = int(step * sr)
        _place(track, sum(_note(f, n, sr, timbre, rng, decay=0.1) for f in freqs) / 3, start)
    elif style == "seventh" and pos in (0, 7, 10):
        n = int(3 * step * sr)
        _place(track, sum(_note(f, n, sr, timbre, rng, decay=0.5) for f in freqs) / 4, start)
    elif style == "skank" and pos in (4, 12):
        n = int(step * sr)
        _place(track, sum(_note(f, n, sr, timbre, rng, decay=0.06) for f in freqs) / 3, start)
    elif style == "arpeggio" and pos % 2 == 0:
        f = freqs[(pos // 2) % len(freqs)] * (2 if rng.random() < 0.3 else 1)
        _place(track, _note(f, int(4 * step * sr), sr, timbre, rng, decay=0.5), start)


def generate(classes=DEFAULT_CLASSES, clips_per_class: int = 20, seconds: float = 6.0, sample_rate: int = 22050,
             seed: int = 0):
    """Return ``[(clip_id, label, audio)]`` with ``clips_per_class`` clips of each class, seeded."""
    unknown = [c for c in classes if c not in STYLES]
    if unknown:
        raise ValueError(f"unknown synthetic classes {unknown}; available: {sorted(STYLES)}")
    out = []
    for ci, label in enumerate(classes):
        for k in range(clips_per_class):
            rng = np.random.default_rng([seed, ci, k])
            out.append((f"{label}.{k:05d}", label, generate_clip(label, seconds, sample_rate, rng)))
    return out


def write_folder(path, **kwargs) -> str:
    """Write the synthetic dataset as ``path/<label>/<clip>.wav`` (folder-per-class), e.g. for tutorials."""
    import os

    import soundfile as sf

    sample_rate = kwargs.get("sample_rate", 22050)
    for clip_id, label, audio in generate(**kwargs):
        os.makedirs(os.path.join(path, label), exist_ok=True)
        sf.write(os.path.join(path, label, f"{clip_id}.wav"), audio, sample_rate, subtype="PCM_16")
    return str(path)
