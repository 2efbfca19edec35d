"""Genre timelines: what the model hears window by window, drawn under the song's log-mel spectrogram.

``predict`` gives one answer per file, the mean of its windows' probabilities. The timeline keeps the windows
apart: :func:`window_probabilities` runs one file through the same inference loop as ``predict``
(:func:`~genrenet.infer.windows.window_outputs`: same decoding, resampling, silence check, zero-padding and
non-overlapping windows), so the mean of its rows is ``predict``'s answer for that file. :func:`timeline_figure`
draws them: a stacked area of the genres for a single-label model, and for a multi-label one (independent
probabilities, which do not stack) the song's top tags over time as a heat map; ``Classifier.timeline`` (and ``genrenet.plot_timeline``) does both for a model source and a file,
and :func:`save_timelines` writes one PNG per file (``predict --timeline DIR``). The functions here take a
loaded :class:`~genrenet.infer.Classifier` (anything with its ``forward``, ``labels``, ``sample_rate``,
``window_samples`` and ``features``).
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from ..data import Clip, SkipLog, load_audio
from ..errors import AudioError
from ..features import FeatureConfig
from ..nn.frontend import LogMelSpectrogram
from ..run import atomic_path
from .tags import Outputs
from .windows import default_batch_size, window_outputs

# The spectrogram of a long song is drawn with a coarser hop, so it never takes more than this many frames.
MAX_SPECTROGRAM_FRAMES = 4000
TIMELINE_TAGS = 10  # tags drawn in a multi-label timeline: the song's best by mean probability


def window_probabilities(classifier, path, *, batch_size: int | None = None):
    """``(times [n], probs [n, C])``: the model's probabilities for every non-overlapping window of ``path``,
    with ``times`` the start of each window in seconds. The mean of ``probs`` over windows is what ``predict``
    returns for the file (audio after the last whole window is left out, as there).

    Raises :class:`~genrenet.errors.AudioError` with the reason for a file ``predict`` would skip."""
    path = os.fspath(path)
    clip, log = Clip(id=path, label="", path=path), SkipLog()
    batch_size = batch_size or default_batch_size(classifier.window_samples, classifier.sample_rate)
    outputs = [out for out, _ in window_outputs(classifier.forward, [clip], sample_rate=classifier.sample_rate,
                                                window_samples=classifier.window_samples, batch_size=batch_size,
                                                log=log)]
    if clip.name in log.skipped or not outputs:
        raise AudioError(path, log.skipped.get(clip.name, "could not be decoded"))
    probs = np.concatenate(outputs)
    return np.arange(len(probs)) * (classifier.window_samples / classifier.sample_rate), probs


def log_mel(audio, config: FeatureConfig):
    """``(spectrogram [frames, bins], seconds per frame)`` of the whole song through the model's own
    :class:`~genrenet.nn.LogMelSpectrogram`; long songs get a coarser hop so the picture stays small."""
    hop = max(config.hop_length, math.ceil(len(audio) / MAX_SPECTROGRAM_FRAMES))
    config = dataclasses.replace(config, hop_length=hop)
    spec = LogMelSpectrogram(config)(np.asarray(audio, np.float32)[None, :])
    return np.asarray(spec)[0], hop / config.sample_rate


def timeline_figure(labels, times, probs, window_seconds: float, spectrogram, frame_seconds: float,
                    duration: float, title: str = "", config: FeatureConfig | None = None,
                    multi_label: bool = False):
    """A two-row matplotlib Figure on one time axis in seconds: the log-mel spectrogram above, and below each
    genre's probability per window as a stacked area (every window drawn as a flat step over its span), or for
    a ``multi_label`` model the song's top tags over time (:func:`draw_tags`)."""
    from matplotlib.figure import Figure

    probs = np.asarray(probs)
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    spec_ax, genre_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.1])
    frames, bins = spectrogram.shape
    spec_ax.imshow(spectrogram.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                   extent=(-frame_seconds / 2, (frames - 0.5) * frame_seconds, 0, bins))
    # no colorbar: it would narrow the upper row only, and the two rows must share one time axis
    config = config or FeatureConfig()
    axis = "STFT bin" if config.mel_scale == "linear" else "mel band"
    spec_ax.set_ylabel(f"{axis} (colour: {'dB' if config.compression == 'db' else config.compression})")
    spec_ax.set_title(title or "log-mel spectrogram and genre timeline")
    edges = np.concatenate([times, [times[-1] + window_seconds]]) if len(times) else np.zeros(1)
    if multi_label:
        draw_tags(fig, genre_ax, labels, probs, edges)
        genre_ax.set_xlim(0, max(duration, edges[-1]))
        return fig
    x = np.repeat(edges, 2)[1:-1]  # each window is a flat step from its start to its end
    genre_ax.stackplot(x, np.repeat(probs, 2, axis=0).T, labels=labels, colors=genre_colors(len(labels)),
                       linewidth=0)
    genre_ax.set_ylim(0, 1)
    genre_ax.set_ylabel("probability")
    genre_ax.set_xlabel("time (s)")
    genre_ax.set_xlim(0, max(duration, edges[-1]))
    handles, names = genre_ax.get_legend_handles_labels()
    order = np.argsort(-probs.mean(axis=0))  # the song's most likely genres first
    genre_ax.legend([handles[i] for i in order], [names[i] for i in order], loc="upper left",
                    bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig


def draw_tags(fig, ax, labels, probs, edges):
    """The song's :data:`TIMELINE_TAGS` best tags (by mean probability, best on top) as rows of a heat map over
    the windows: colour is each tag's independent probability in that window, 0 to 1."""
    order = np.argsort(-probs.mean(axis=0), kind="stable")[:TIMELINE_TAGS]
    mesh = ax.pcolormesh(edges, np.arange(len(order) + 1), probs[:, order].T, cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(order)) + 0.5, [labels[i] for i in order], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    # no colorbar: it would narrow this row only, and the two rows must share one time axis
    ax.set_ylabel("top tags (colour: probability,\n0 dark to 1 yellow)")
    return mesh


def genre_colors(n: int) -> list:
    """One distinct colour per genre (tab10, or tab20 beyond ten genres)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def song_timeline(classifier, path, *, title: str | None = None, windows=None, outputs: Outputs | None = None):
    """``(figure, probs)`` for one file with a loaded classifier: the model on every window
    (:func:`window_probabilities`, or ``windows`` when they were computed already) drawn under the song's
    spectrogram, over the labels of ``outputs`` (a label map's; default: the model's). Raises
    :class:`~genrenet.errors.AudioError` for a file ``predict`` would skip."""
    times, probs = windows if windows is not None else window_probabilities(classifier, path)
    outputs = outputs or Outputs.of(classifier)
    labels, probs, _ = outputs.view(probs)
    audio = load_audio(path, classifier.sample_rate)
    config = classifier.features
    spectrogram, frame_seconds = log_mel(audio, config)
    fig = timeline_figure(labels, times, probs, classifier.window_samples / classifier.sample_rate,
                          spectrogram, frame_seconds, len(audio) / classifier.sample_rate,
                          title=os.path.basename(os.fspath(path)) if title is None else title, config=config,
                          multi_label=outputs.multi_label)
    return fig, probs


def png_name(path, taken: set) -> str:
    """``<stem>.png`` for ``path``, with ``-2``, ``-3``… when another file of the same job had that name."""
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0] or "audio"
    name, k = f"{stem}.png", 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}.png"
    taken.add(name)
    return name


def save_timelines(classifier, files, out_dir, *, dpi: int = 100, outputs: Outputs | None = None) -> list[str]:
    """Write the timeline of each file to ``out_dir/<stem>.png`` (atomically), over the labels of ``outputs``
    (default: the model's); returns the paths written. Files that cannot be decoded are left out (``predict``
    already reports them)."""
    os.makedirs(out_dir, exist_ok=True)
    taken, written = set(), []
    for path in files:
        try:
            fig, _ = song_timeline(classifier, path, outputs=outputs)
        except AudioError:
            continue
        target = os.path.join(out_dir, png_name(path, taken))
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        written.append(target)
    return written
