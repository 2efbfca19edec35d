"""``genrenet app``: a local Gradio page to hear what a model hears.

One song: upload or record it, see the top genres and the genre timeline (log-mel spectrogram above, each
genre's probability per window below, on one time axis); for a multi-label model, its tags (independent
probabilities) and the song's top tags over time. A label map (``labels_map``) shows your labels instead. Many songs:
a table of results and a CSV. With an index (``genrenet index``), a third tab lists the songs of the index most
similar to an uploaded one. The page's
song button calls the named endpoint ``/classify``, the same function Gradio's client calls, and its result is
``predict``'s for that file. The model loads once, when the app is built; every model call goes through one
concurrency group, so a model that is not thread-safe (a TFLite interpreter) is never called twice at once.
"""
from __future__ import annotations

import csv
import html
import os
import tempfile

from ..errors import AudioError, MissingDependencyError, check_whole
from ..infer.classifier import Classifier
from ..data import NotMusic
from ..infer.predict import describe, header_reasons, outputs_result, unclassified
from ..infer.tags import Outputs
from ..infer.timeline import song_timeline

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
MAX_FILE_SIZE = "100mb"
RECENT_SONGS = 16  # window probabilities kept for timelines not drawn yet
SIMILAR_SONGS = 10  # rows of the similar-songs table


def require_gradio():
    """The gradio module, or a :class:`MissingDependencyError` that says how to install it."""
    try:
        import gradio
    except ImportError:
        raise MissingDependencyError("genrenet app needs Gradio: pip install 'genrenet[app]'") from None
    return gradio


def user_message(path, error) -> str:
    """One line for the page: the file's own name (not Gradio's upload path) and what is wrong with it."""
    path = os.fspath(path)
    name = os.path.basename(path)
    text = str(getattr(error, "reason", error))
    text = text.replace(repr(os.fsencode(path)), repr(name)).replace(path, name)
    return f"{name}: {text}"


def page_error(path, error):
    """A gr.Error for an unusable file: its one-line message, escaped because the page shows it as HTML."""
    return require_gradio().Error(html.escape(user_message(path, error), quote=False), print_exception=False)


def classify_file(classifier: Classifier, path, top_k: int, outputs: Outputs | None = None):
    """``(result, windows)`` for one file: ``predict``'s result (file given by its name; over the labels of
    ``outputs``) and the ``(times, probabilities)`` of every window it is the mean of, so the timeline needs no
    second model pass. A file with nothing to classify (silent, too short, truncated) gets ``predict``'s row
    without a label and no windows. Raises :class:`AudioError` when the file cannot be used, with the decoder's
    reason."""
    name = os.path.basename(os.fspath(path))
    for _, reason in header_reasons([os.fspath(path)]):
        return unclassified(name, reason), None
    try:
        times, probs = classifier.window_probabilities(path)
    except AudioError as e:
        if isinstance(e.reason, NotMusic):
            return unclassified(name, e.reason), None
        raise
    result = outputs_result(outputs or Outputs.of(classifier), name, probs.astype("float64").mean(0), top_k,
                            len(probs), classifier.info.min_confidence)
    return result, (times, probs)


def chart_scores(result: dict) -> dict:
    """What the page's chart shows: a multi-label model's tags, else the top genres, as {label: probability}
    (nothing for a file with no genre)."""
    return {label: p for label, p in result.get("tags", result.get("top", []))}


def verdict(result) -> str:
    """The line under the label: ``unsure: rock or blues (0.48, 0.31)`` when the model is unsure, ``no genre:
    is silent ...`` for a file with nothing to classify, else nothing."""
    if not result or (result.get("label") is not None and not result.get("uncertain")):
        return ""
    return f"**{html.escape(describe(result), quote=False)}**"


def result_rows(labels, results) -> list[list]:
    """Table rows for the batch tab and its CSV: file, label (``unsure: ...`` when the model is unsure), each
    label's probability, windows, error (``no genre: ...`` for a file with nothing to classify)."""
    rows = []
    for r in results:
        name = os.path.basename(r["file"])
        if "error" in r or r.get("label") is None:
            why = r["error"] if "error" in r else f"no genre: {r['reason']}"
            rows.append([name, "", *([None] * len(labels)), 0, user_message(r["file"], why)])
        else:
            probs = [round(r["probabilities"][label], 6) for label in labels]
            rows.append([name, describe(r) if r.get("uncertain") else r["label"], *probs, r["windows"], ""])
    return rows


def table_header(labels) -> list[str]:
    """The batch table's columns: file, label, one per label in the model's (or the label map's) order,
    windows, error."""
    return ["file", "label", *labels, "windows", "error"]


def write_csv(path, header, rows):
    """Write the batch table as CSV (what the page's download button serves)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_handlers(classifier: Classifier, top_k: int, csv_dir: str, outputs: Outputs | None = None):
    """The page's four functions over one loaded model: ``classify`` (the ``/classify`` endpoint),
    ``timeline`` (the figure for the same song), ``classify_batch`` (table and CSV) and ``song_error`` (why the
    last song was refused, kept on the page), all over the labels of ``outputs`` (a label map's; default: the
    model's)."""
    gr = require_gradio()
    outputs = outputs or Outputs.of(classifier)
    header = table_header(outputs.user_labels)
    recent = {}  # song path -> its window probabilities, from classify to the timeline drawn after it
    refused = {}  # song path -> why it was refused, from classify to the message shown beside the song

    def classify(audio):
        """One audio file → the top genres or a tagger's tags (for gr.Label) and predict's full result (label,
        top, probabilities, windows; tags and uncertain for a multi-label model)."""
        if not audio:
            raise gr.Error("Upload or record a song first.")
        try:
            result, windows = classify_file(classifier, audio, top_k, outputs)
        except AudioError as e:
            while len(refused) >= RECENT_SONGS:
                refused.pop(next(iter(refused)))
            refused[audio] = user_message(audio, e)
            raise page_error(audio, e) from None
        while len(recent) >= RECENT_SONGS:  # /classify called alone never draws its timeline
            recent.pop(next(iter(recent)))
        recent[audio] = windows
        return chart_scores(result), result

    def timeline(audio):
        """The genre timeline figure of the song (spectrogram above, genres below)."""
        if not audio or (audio in recent and recent[audio] is None):  # no genre: nothing to draw
            recent.pop(audio, None)
            return None
        try:
            return song_timeline(classifier, audio, windows=recent.pop(audio, None), outputs=outputs)[0]
        except AudioError as e:
            raise page_error(audio, e) from None

    def classify_batch(files):
        """Several files → a table (one row per file; unusable files keep their row with the reason) and a CSV."""
        if not files:
            raise gr.Error("Upload one or more audio files first.")
        paths = [os.fspath(getattr(f, "name", f)) for f in files]
        rows = result_rows(outputs.user_labels, classifier.predict(paths, top_k=top_k, verbose=0,
                                                                   labels_map=outputs.label_map))
        failed = sum(1 for row in rows if row[-1])
        if failed:
            gr.Warning(f"{failed} of {len(rows)} files could not be classified (see the error column).")
        fd, target = tempfile.mkstemp(dir=csv_dir, prefix="genrenet-", suffix=".csv")
        os.close(fd)
        return rows, write_csv(target, header, rows)

    def song_error(audio):
        """The reason the song was refused, shown beside it until the next song (the pop-up fades)."""
        reason = refused.pop(audio, None) if audio else None
        return f"**Could not classify** {html.escape(reason, quote=False)}" if reason else ""

    return classify, timeline, classify_batch, song_error


def make_similar_handler(index, k: int = SIMILAR_SONGS):
    """The similar-songs tab's function over an opened :class:`~genrenet.library.index.LibraryIndex`: one
    audio file → table rows ``[rank, score, file]`` of the index's ``k`` most similar songs (the ``/similar``
    endpoint)."""
    from ..library.index import similar

    gr = require_gradio()

    def similar_songs(audio):
        if not audio:
            raise gr.Error("Upload a song first.")
        row = similar(index, [audio], k=k, verbose=0)[0]
        if "error" in row:
            raise page_error(audio, row["error"])
        return [[rank, round(n["score"], 4), n["file"]] for rank, n in enumerate(row["neighbours"], 1)]

    return similar_songs


def similar_tab(index):
    """The "Similar songs" tab of an index: an upload, a button and the table (inside the app's Blocks)."""
    gr = require_gradio()
    with gr.Tab("Similar songs"):
        gr.Markdown(f"The {min(SIMILAR_SONGS, len(index))} songs of `{index.path}` ({len(index)} songs) that "
                    "sound most like this one (cosine similarity of clip embeddings).")
        audio = gr.Audio(sources=["upload"], type="filepath", label="Song", elem_id="similar-song")
        button = gr.Button("Find similar songs", variant="primary")
        table = gr.Dataframe(headers=["rank", "score", "file"], interactive=False, label="Similar songs",
                             elem_id="similar-songs")
        button.click(make_similar_handler(index), inputs=audio, outputs=table, api_name="similar",
                     concurrency_id="model")


def open_index(path):
    """The index at ``path`` opened for the app, its model loaded and checked (errors before the page starts)."""
    from ..library.index import LibraryIndex

    index = LibraryIndex(path)
    index.model().loaded()
    return index


def model_summary(classifier: Classifier, outputs: Outputs | None = None) -> str:
    """The line under the title: which model is being served, what it gives and how it listens."""
    outputs = outputs or Outputs.of(classifier)
    seconds = classifier.window_samples / classifier.sample_rate
    kind = "tags (independent probabilities)" if outputs.multi_label else "genres"
    mapped = f" (label map {os.path.basename(outputs.label_map.path)})" if outputs.label_map else ""
    return (f"Model `{os.path.basename(os.path.normpath(classifier.source))}` ({classifier.kind}): "
            f"{len(outputs.user_labels)} {kind}{mapped}, {seconds:g}-s windows at {classifier.sample_rate} Hz. "
            "Any format libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, AU, ...).")


def build_app(source, *, top_k: int = 3, labels_map=None, index=None):
    """The Gradio Blocks of the app, with the model of ``source`` (any model source, a
    :class:`~genrenet.infer.Classifier`, or ``None`` for the default preset) loaded once, here; ``labels_map``
    (a label map file) shows your labels instead of the model's; ``index`` (an index folder) adds the
    similar-songs tab, its own model loaded here too."""
    gr = require_gradio()  # before the model loads: a missing extra is reported at once
    library = open_index(index) if index is not None else None
    classifier = Classifier.from_preset(source)
    outputs = Outputs.of(classifier, labels_map)
    classifier.loaded()
    top_k = min(check_whole(top_k, "top_k", at_least=1), len(outputs.user_labels))
    csv_dir = tempfile.mkdtemp(prefix="genrenet-app-")
    classify, timeline, classify_batch, song_error = make_handlers(classifier, top_k, csv_dir, outputs)
    what = "tags" if outputs.multi_label else "genres"
    # uploads and results older than two hours are removed every hour
    with gr.Blocks(title="genrenet", analytics_enabled=False, delete_cache=(3600, 7200)) as demo:
        gr.Markdown("# genrenet: see what the model hears")
        gr.Markdown(model_summary(classifier, outputs))
        with gr.Tab("Song"):
            with gr.Row():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Song",
                                 elem_id="song")
                label = gr.Label(num_top_classes=top_k if not outputs.multi_label else None, label=f"Top {what}",
                                 elem_id="top-genres")
                unsure = gr.Markdown("", elem_id="verdict")
            error = gr.Markdown("", elem_id="song-error")
            button = gr.Button("Classify", variant="primary")
            plot = gr.Plot(label="Tag timeline" if outputs.multi_label else "Genre timeline", format="png",
                           elem_id="genre-timeline")
            with gr.Accordion("All probabilities", open=False):
                details = gr.JSON(label="Result")
        with gr.Tab("Batch"):
            files = gr.File(file_count="multiple", label="Audio files")
            batch_button = gr.Button("Classify all", variant="primary")
            table = gr.Dataframe(headers=table_header(outputs.user_labels), interactive=False, label="Results")
            download = gr.File(label="CSV")
        song_events = [audio.upload, audio.stop_recording, button.click]
        # a new song clears the last song's timeline at once, so a refused file never shows an old picture
        gr.on([*song_events, audio.clear], lambda: (None, "", ""), outputs=[plot, error, unsure],
              api_visibility="private", queue=False)
        song = gr.on(song_events, classify, inputs=audio,
                     outputs=[label, details], api_name="classify", concurrency_id="model")
        song.success(timeline, inputs=audio, outputs=plot, api_visibility="private", concurrency_id="model")
        song.failure(song_error, inputs=audio, outputs=error, api_visibility="private", queue=False)
        song.success(verdict, inputs=details, outputs=unsure, api_visibility="private", queue=False)
        batch_button.click(classify_batch, inputs=files, outputs=[table, download], api_name="classify_batch",
                           concurrency_id="model")
        if library is not None:
            similar_tab(library)
    return demo


def serve(source=None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, top_k: int = 3,
          max_file_size: str | int = MAX_FILE_SIZE, block: bool = True, labels_map=None, index=None):
    """Build the app and serve it on ``host:port`` (loopback unless told otherwise); uploads larger than
    ``max_file_size`` are refused; ``index``: an index folder for the similar-songs tab. With ``block=False`` it
    returns the running Blocks (``.close()`` stops it)."""
    check_whole(port, "port", at_least=0, at_most=65535)
    demo = build_app(source, top_k=top_k, labels_map=labels_map, index=index)
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=port, max_file_size=max_file_size, prevent_thread_lock=not block,
                ssr_mode=False, quiet=not block, footer_links=["api"], show_error=False)
    return demo
