"""The ``genrenet`` command line (``genrenet COMMAND --help``).

Errors raised on purpose (:class:`~genrenet.errors.GenrenetError`) and file-system errors end with one line on
stderr and exit code 2; anything else is a bug and keeps its traceback. TensorFlow's start-up messages are
hidden unless ``GENRENET_DEBUG=1``: this module imports nothing that imports TensorFlow, so :func:`main` can
quiet it before it loads."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile

from .errors import GenrenetError, UsageError, check_positive, check_whole

# Lines TensorFlow's C++ code writes to stderr while it is imported, whatever TF_CPP_MIN_LOG_LEVEL says (the
# oneDNN notice is logged before absl's logging is set up, which adds the absl warning before it).
TENSORFLOW_BANNER = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
                     "cpu_feature_guard", "To enable the following instructions")

DEMO_DATA = "synthetic"
DEMO_TEST_DATA = "synthetic:seed=1,clips=10"


def _print_json(obj):
    print(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def cmd_models(args):
    from . import registry

    infos = [registry.model_info(n) for n in registry.list_models()]
    if args.json:
        _print_json(infos)
        return
    width = max(len(i["name"]) for i in infos)
    for i in infos:
        pre = f"  [pretrained: {', '.join(i['pretrained'])}]" if i["pretrained"] else ""
        print(f"{i['name']:<{width}}  {i['description']}{pre}")


def cmd_presets(args):
    from .presets import list_presets, preset_info

    infos = [preset_info(n) for n in list_presets()]
    if args.json:
        _print_json(infos)
        return
    for i in infos:
        print(f"{i['name']}{'  (default)' if i['default'] else ''}: {i['summary']}")
        print(f"  backbone:   {i['model']}, pretrained {i['pretrained']} ({i['parameters']:,} parameters; weights "
              f"{i['weights']})")
        print(f"  {'tags:' if i['multi_label'] else 'labels:':<12}{', '.join(i['labels'])}")
        print(f"  trained on: {i['training_data']}")
        if i.get("accuracy") is not None:
            print(f"  accuracy:   {i['accuracy']:.3f} clip accuracy, {i['accuracy_protocol']}")
        if i.get("scores"):
            print(f"  scores:     {i['scores']}")
        print(f"  size:       {i['shipped_bytes'] / 1024:.0f} kB shipped with the preset, beside the backbone's "
              "weights")


def _model_kwargs(pairs):
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise UsageError(f"--set {item!r} is not name=value")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
        if isinstance(out[k], list):
            out[k] = tuple(out[k])
    return out


def import_tensorflow_quietly():
    """Import TensorFlow with its C++ info and warning lines off and its import-time banner (written to file
    descriptor 2, out of Python's reach) filtered out; anything else it writes then is passed on to stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines()
    kept = [line for line in lines if not any(mark in line for mark in TENSORFLOW_BANNER)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)


def cmd_train(args):
    """Parse, call :func:`~genrenet.train`, print: the rules of a run (its directory, resuming, reading a saved
    ``config.json``) are the library's."""
    from .training.config import TrainConfig, load_run_config
    from .training.trainer import train

    given = vars(args)
    model, data, config = args.model, given.get("data"), TrainConfig()
    if args.config:
        saved_model, saved_data, config = load_run_config(args.config)
        model, data = model or saved_model, data or saved_data
    if not model:
        raise UsageError("train needs MODEL, or --config RUN/config.json to train a run again")
    fields = {name: given[name] for name in TrainConfig.fields() if name in given}
    if "set" in given:
        fields["model_kwargs"] = {**config.model_kwargs, **_model_kwargs(args.set)}
    run = train(model, data or "synthetic", args.out, config=config, resume=args.resume, verbose=args.verbose,
                **fields)
    if run is not None:  # None: a non-chief worker of a multi-worker run (the chief writes the run)
        print(f"run saved to {run.path}")


def _add_train_parser(sub):
    """``genrenet train``: every TrainConfig setting as a flag; a flag not given keeps the config's value."""
    from .training.config import LR_SCHEDULES
    s = sub.add_parser("train", help="train a model on a dataset into a run directory",
                       argument_default=argparse.SUPPRESS)
    s.add_argument("model", nargs="?", default=None, help="a registered model name (see `genrenet models`)")
    s.add_argument("--config", default=None, metavar="RUN/config.json",
                   help="train with the settings, model and data of a run's config.json (flags override them)")
    s.add_argument("--data", help="synthetic[:k=v,..] | PATH | gtzan:PATH | fma:PATH | csv:FILE | jamendo:PATH | "
                   "mtt:PATH (default synthetic)")
    s.add_argument("--out", default=None, help="run directory (default runs/<model>-<time>)")
    s.add_argument("--epochs", type=_setting("epochs"),
                   help="default 60 from scratch, 30 for the head of a frozen --pretrained "
                   "backbone")
    s.add_argument("--batch-size", type=_setting("batch_size"), help="batch size per replica (default 32)")
    s.add_argument("--learning-rate", type=_setting("learning_rate"), help="default 1e-3")
    s.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help="cosine: decay the learning rate to ~0 over --epochs (default from scratch); constant: "
                        "keep it (default for a frozen backbone's head)")
    s.add_argument("--label-smoothing", type=_setting("label_smoothing"),
                   help="cross-entropy label smoothing in [0, 1) (default 0)")
    s.add_argument("--seed", type=_setting("seed"), help="default 0")
    s.add_argument("--patience", type=_setting("patience"),
                   help="early-stopping patience in epochs (default 10; without "
                   "validation clips under the cosine schedule none: the whole schedule runs)")
    s.add_argument("--val-fraction", type=_setting("val_fraction"),
                   help="held-out validation part for datasets without their own split (default 0.2 when every "
                        "class has 10+ clips, else none); 0 = no validation")
    s.add_argument("--window-seconds", type=_setting("window_seconds"), help="window length (default: the model's)")
    s.add_argument("--crops-per-clip", type=_setting("crops_per_clip"),
                   help="random windows per clip and epoch (default: length/window)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a model hyper-parameter, e.g. --set dropout=0.5 --set filters=[16,32,64]")
    s.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                   help="0: quiet; 1: progress bars on a terminal, one line per epoch elsewhere (default); "
                   "2: one line per epoch")
    _add_transfer_options(s)
    _add_engine_options(s)
    s.set_defaults(fn=cmd_train)


def _add_transfer_options(s):
    """Pretrained weights, fine-tuning, augmentation and caching options of ``train``."""
    from .training.config import HEAD_TRAINERS

    s.add_argument("--pretrained", metavar="TAG", help="start from pretrained weights, e.g. msd or mtt for "
                   "musicnn/vgg_musicnn")
    s.add_argument("--freeze-backbone", action=argparse.BooleanOptionalAction,
                   help="with --pretrained: train only the new head (default: frozen)")
    s.add_argument("--head", choices=HEAD_TRAINERS,
                   help="with a frozen --pretrained backbone: train the head with Adam (keras) or as a logistic "
                        "regression with C chosen by inner cross-validation (logistic); default: the one measured "
                        "better")
    s.add_argument("--fine-tune-epochs", type=_setting("fine_tune_epochs"),
                   help="after the head, train the whole model for up to N more "
                   "epochs (default 0)")
    s.add_argument("--fine-tune-learning-rate", type=_setting("fine_tune_learning_rate"), help="default 1e-5")
    s.add_argument("--augment", metavar="NAMES",
                   help="training-only augmentation: comma-separated names from shift, gain, noise, stretch, "
                        "pitch, specaugment, mixup (or 'all'), or a JSON dict of parameters, e.g. "
                        "'{\"noise\": {\"snr_db\": [10, 20]}}'; default pitch,mixup (none for a frozen backbone's "
                        "head), 'none' for none")
    s.add_argument("--cache", metavar="auto|memory|none|DIR",
                   help="where decoded audio is kept between epochs: auto (default) = in memory when it takes at "
                        "most half the available memory, else on disk in $GENRENET_CACHE/audio (default "
                        "~/.cache/genrenet/audio); memory; none = decode every epoch; or a directory DIR (reused "
                        "by later runs)")
    s.add_argument("--memory-budget", type=_byte_size, metavar="SIZE",
                   help="decoded audio --cache auto may keep in memory, e.g. 8G or 500M (default: half the memory "
                        "available to the process)")
    s.add_argument("--evaluate-val", action=argparse.BooleanOptionalAction,
                   help="evaluate the kept model on the validation clips at the end (default: yes)")
    s.add_argument("--multi-label", action=argparse.BooleanOptionalAction,
                   help="tags: sigmoid outputs, binary cross-entropy, per-tag thresholds (default: on when a clip "
                        "of the data carries more than one label)")
    s.add_argument("--pos-weight", choices=("none", "balanced"),
                   help="multi-label: weight each tag's positives by its negatives/positives (balanced) so rare "
                        "tags are learnt (default none)")
    s.add_argument("--threshold-folds", type=int, metavar="K",
                   help="multi-label without validation clips: tune the per-tag thresholds on out-of-fold "
                        "predictions of K more trainings (default 3; 0: 0.5 for every tag)")


def _byte_size(text: str) -> int:
    """``8G``, ``500M``, ``64K`` or a number of bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    value = text.strip().upper().removesuffix("B")
    try:
        return int(float(value[:-1]) * units[value[-1]]) if value[-1:] in units else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 8G, 500M or a number of bytes)") from None


def _checked(parse, check, **limits):
    """An argparse ``type``: the text read with ``parse`` (int or float), then checked as the library checks
    it, so a bad value ends at parse time in one line (``argument --batch-size: must be ≥ 1, got 0``)."""
    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            kind = "a whole number" if parse is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return check(value, "value", **limits)
        except GenrenetError as e:
            raise argparse.ArgumentTypeError(e.message) from None
    return convert


COUNT = _checked(int, check_whole, at_least=1)  # batch sizes, top-k, epochs, workers
SECONDS = _checked(float, check_positive)  # hops
VERSION = _checked(int, check_whole, at_least=0)  # export versions
PORT = _checked(int, check_whole, at_least=0, at_most=65535)


def _setting(name: str):
    """The argparse ``type`` of the TrainConfig setting ``name``: its kind and range, as ``TrainConfig.check``."""
    from .training.config import RANGES

    kind, test, wanted = RANGES[name]

    def check(value, param):
        if test is not None and not test(value):
            raise UsageError(f"must be {wanted}, got {value!r}", param=param)
        return value
    return _checked(int if kind == "int" else float, check)


def _add_engine_options(s):
    """Reliability and scale options of ``train``: resume, determinism, mixed precision, distribution."""
    from .training.config import PRECISIONS, STRATEGIES
    s.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN",
                   help="continue an interrupted run from its last completed epoch (same results as an "
                   "uninterrupted run); --resume RUN or --out RUN --resume")
    s.add_argument("--deterministic", action="store_true",
                   help="deterministic TF ops: with --seed, two runs give bit-identical weights on CPU")
    s.add_argument("--mixed-precision", choices=PRECISIONS,
                   help="compute in float16/bfloat16, keep variables, front-end and softmax in float32")
    s.add_argument("--strategy", choices=STRATEGIES,
                   help="tf.distribute strategy: mirrored = all local GPUs, multi_worker = machines in "
                   "TF_CONFIG, tpu; --batch-size is per replica")
    s.add_argument("--data-service", metavar="grpc://HOST:PORT",
                   help="make the training batches on a tf.data service's workers (start one with `genrenet "
                   "data-service`); needs --cache DIR readable by the workers at the same path")


def cmd_data_service(args):
    from .data.service import serve

    # serve() returns on Ctrl-C or SIGTERM with the servers still up and referenced, so that no destructor runs:
    # TF's stop() and destructors can block for long after a trainer left mid-job, so the process just ends.
    servers = serve(port=args.port, workers=args.workers)  # noqa: F841
    print("tf.data service stopped", flush=True)
    sys.stderr.flush()
    os._exit(0)


def cmd_evaluate(args):
    from .infer.evaluate import evaluate

    metrics = evaluate(args.run, args.data, args.split, batch_size=args.batch_size, aggregate=args.aggregate,
                       hop_seconds=args.hop, verbose=0 if args.json else 1)
    if args.json:
        _print_json(metrics)
        return
    if "roc_auc_macro" in metrics:  # a tagger
        figures = ", ".join(f"{name} {'n/a' if metrics[key] is None else format(metrics[key], '.3f')}" for name, key in
                            (("ROC-AUC", "roc_auc_macro"), ("PR-AUC", "pr_auc_macro"), ("F1", "f1_macro")))
        print(f"{metrics['data']} ({metrics['split']}): {figures} (macro over {metrics['tags_ranked']} tags) "
              f"on {metrics['num_clips']} clips")
        print(f"wrote {metrics['out']}/metrics.json, predictions.csv, per_tag.csv")
        return
    print(f"{metrics['data']} ({metrics['split']}): clip accuracy {metrics['clip_accuracy']:.3f}, "
          f"macro-F1 {metrics['macro_f1']:.3f}, window accuracy {metrics['window_accuracy']:.3f} "
          f"on {metrics['num_clips']} clips")
    if metrics.get("ece") is not None:
        print(f"calibration: ECE {metrics['ece']:.3f} ({metrics['ece_bins']} bins), NLL {metrics['nll']:.3f}, "
              f"Brier {metrics['brier']:.3f}")
    print(f"wrote {metrics['out']}/metrics.json, predictions.csv, confusion.png, reliability.png")


def cmd_predict(args):
    from .infer.classifier import Classifier
    from .infer.source import split_source

    source, paths = split_source(args.inputs)
    if args.runner:
        if args.runtime:
            raise UsageError("--runtime: applies to predict without --runner (Beam workers run the Keras model)")
        return _beam_predict(args, source, paths)
    classifier = Classifier.from_preset(source, runtime=args.runtime)  # loaded once, also for --timeline
    results = classifier.predict(paths, top_k=args.top_k, batch_size=args.batch_size, hop_seconds=args.hop,
                                 min_confidence=args.min_confidence, verbose=1,
                                 labels_map=args.labels_map)  # progress and notes on stderr
    if args.json:
        _print_json(results)
    else:
        for r in results:
            print(f"{r['file']}: {result_text(r)}")
    failed = sum(not r.get("label") for r in results)  # an error, or no genre (silent, too short...)
    if failed == len(results):
        raise FileNotFoundError(f"none of the files could be classified ({failed} of {failed} files failed)")
    if args.timeline:
        for path in classifier.save_timelines([r["file"] for r in results if r.get("label")], args.timeline,
                                              labels_map=args.labels_map):
            print(f"wrote {path}", file=sys.stderr)
    if failed:  # exit codes: 0 every file classified, 1 some failed, 2 none classified (or a usage error)
        print(f"genrenet: {failed} of {len(results)} files failed", file=sys.stderr)
        return 1
    return 0


def cmd_tag(args) -> int:
    from .library import tag_files, undo_tags
    from .infer.source import split_source

    if args.undo:
        if args.inputs:
            raise UsageError("--undo JOURNAL takes no model or audio files (the journal names the files)")
        report = undo_tags(args.undo)
    else:
        if not args.inputs:
            raise UsageError("give audio files or folders to tag (or --undo JOURNAL)")
        source, paths = split_source(args.inputs)
        report = tag_files(source, paths, write=args.write, field=args.field, mode=args.mode,
                           min_confidence=args.min_confidence, journal=args.journal, labels_map=args.labels_map,
                           batch_size=args.batch_size)
    if args.json:
        _print_json({"journal": report.journal, "files": report.as_dicts()})
    else:
        print(report.table())
    return tag_outcome(report, args)


def tag_outcome(report, args) -> int:
    """Say what was done on stderr; exit code 0 when every file was handled, 1 when some were skipped, 2 when
    none could be."""
    line = ", ".join(f"{n} {status}" for status, n in report.counts().items() if status != "skipped")
    if report.journal and not args.undo:
        line += f"; journal {report.journal} (undo: genrenet tag --undo {report.journal})"
    elif report.count("to write"):
        line += "; a dry run: add --write to write them"
    print(line or "nothing written", file=sys.stderr)
    if report.skipped:
        print(report.skipped_summary(), file=sys.stderr)
    return 2 if len(report.skipped) == len(report.changes) and report.changes else int(bool(report.skipped))


def result_text(r: dict) -> str:
    """One predict row as text: the top labels (``unsure: ...``, ``no genre: ...``, ``error: ...``; see
    :func:`~genrenet.infer.predict.describe`), or a multi-label source's tags (independent probabilities)."""
    from .infer.predict import describe

    if "tags" not in r:
        return describe(r)
    scores = lambda pairs: ", ".join(f"{l} {p:.3f}" for l, p in pairs)  # noqa: E731
    if r["uncertain"]:
        return f"no tag passes its threshold (best: {scores(r['top'])})"
    return f"tags {scores(r['tags'])} (independent probabilities)"


def cmd_app(args):
    from .serve.app import serve

    serve(args.source, host=args.host, port=args.port, top_k=args.top_k, max_file_size=args.max_file_size,
          labels_map=args.labels_map, index=args.index)


def _beam_predict(args, source, patterns):
    """``predict --runner``: the files of the patterns on an Apache Beam runner, JSON Lines under --output."""
    if not args.output:
        raise UsageError("predict --runner needs --output PREFIX (where the JSON Lines results go)")
    from .infer.beam import predict_pipeline

    counts = predict_pipeline(source, patterns, args.output, runner=args.runner, beam_args=args.beam_args,
                              top_k=args.top_k, batch_size=args.batch_size, labels_map=args.labels_map)
    print(f"classified {counts['classified']} files, {counts['errors']} errors: {args.output}-*.jsonl")
    if counts["errors"] and not counts["classified"]:
        raise FileNotFoundError("none of the files could be classified (reasons in the output)")
    if counts["errors"]:
        print(f"genrenet: {counts['errors']} of {counts['errors'] + counts['classified']} files failed",
              file=sys.stderr)
        return 1
    return 0


def cmd_prepare(args):
    from .data.prepare import prepare

    meta = prepare(args.data, args.output, sample_rate=args.sample_rate, runner=args.runner,
                   beam_args=args.beam_args, num_shards=args.num_shards)
    print(f"prepared {meta['num_clips']} clips in {meta['num_shards']} shards ({meta['failed']} failed, "
          f"{len(meta['skipped'])} skipped); train with --data tfrecord:{args.output}")


def cmd_export(args):
    from .serve.export import export

    export(args.run, args.out, name=args.name, version=args.version, force=args.force, tflite=args.tflite,
           quantize=args.quantize, calibration_data=args.calibration_data, hop_seconds=args.hop)


def cmd_ensemble(args):
    from .infer.ensemble import ensemble

    ensemble(args.runs, args.out, method=args.method, weights=args.weights)


def cmd_embed(args):
    from .infer.classifier import embed

    result = embed(args.source, args.files, args.out, pretrained=args.pretrained, batch_size=args.batch_size,
                   verbose=1)
    for name, reason in result["skipped"]:
        print(f"skipped {name}: {reason}")
    if not len(result["files"]):
        raise FileNotFoundError("none of the files could be embedded")


def cmd_index(args):
    from .infer.source import split_source
    from .library.index import build_index, print_report

    source, paths = split_source(args.inputs)
    print_report(build_index(source, paths, args.out, batch_size=args.batch_size, runner=args.runner,
                             beam_args=args.beam_args, verbose=1))


def cmd_similar(args):
    from .library.index import similar, similar_table

    rows = similar(args.index, args.files, k=args.k, batch_size=args.batch_size, verbose=1)
    if args.json:
        for row in rows:
            _print_json(row)
    else:
        print(similar_table(rows))
    if all("error" in r for r in rows):
        raise FileNotFoundError("none of the files could be compared")


def cmd_demo(args):
    from .infer.evaluate import evaluate
    from .serve.export import export
    from .training.trainer import train

    out = args.out
    print(f"genrenet demo: training crnn_attention on the built-in synthetic music ({DEMO_DATA}) into {out}")
    run = train("crnn_attention", DEMO_DATA, out, epochs=args.epochs, seed=args.seed, verbose=args.verbose)
    metrics = evaluate(run, DEMO_TEST_DATA, verbose=0)
    target = export(run, os.path.join(out, "export"), verbose=0)
    print()
    print(f"clip accuracy on held-out synthetic music: {metrics['clip_accuracy']:.3f} "
          f"(macro-F1 {metrics['macro_f1']:.3f}, {metrics['num_clips']} clips never seen in training)")
    print(f"run:         {run.path}")
    print(f"evaluation:  {metrics['out']} (confusion.png, predictions.csv)")
    print(f"export:      {target} (TF Serving layout, signature serving_default)")


def cmd_cache(args):
    """Show (or with --clear empty) the disk cache of decoded audio and, by default, of LiteRT conversions."""
    from .data.cache import audio_cache_dir
    from .data.memory import AudioCache

    directory = args.dir or audio_cache_dir()
    if args.dir is None:
        cmd_litert_cache(args.clear)
    if not os.path.isdir(directory):
        print(f"{directory}: no cache (nothing decoded there yet)")
        return
    cache = AudioCache(directory)
    if args.clear:
        removed, freed = cache.clear()
        print(f"{directory}: removed {removed} entries, {freed / 1e9:.2f} GB freed")
        return
    entries = cache.entries()
    clips = [e for e in entries if e.endswith(".npy")]
    size = sum(os.path.getsize(e) for e in entries)
    print(f"{directory}: {len(clips)} decoded clips and {len(entries) - len(clips)} remembered decoding failures, "
          f"{size / 1e9:.2f} GB (`genrenet cache --clear` empties it; runs decode again what they need)")


def cmd_litert_cache(clear: bool):
    """Show (or empty) the models converted for ``predict --runtime tflite``."""
    from .infer.litert import clear_litert, litert_dir, litert_files

    if clear:
        removed, freed = clear_litert()
        print(f"{litert_dir()}: removed {removed} files, {freed / 1e6:.1f} MB freed")
        return
    files = litert_files()
    size = sum(os.path.getsize(f) for f in files)
    print(f"{litert_dir()}: {sum(f.endswith('.tflite') for f in files)} models converted for `predict --runtime "
          f"tflite`, {size / 1e6:.1f} MB (converted again when needed)")


def cmd_download(args):
    from .data.download import download

    download(args.dataset, args.dir, keep_archive=not args.delete_archive, progress=not args.no_progress)


def build_parser() -> argparse.ArgumentParser:
    """The ``genrenet`` argument parser: one sub-command per verb."""
    p = argparse.ArgumentParser(prog="genrenet", description="Music genre classification with Keras: train, "
                                "evaluate, export and predict from raw audio.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_models_parser, _add_presets_parser, _add_demo_parser, _add_train_parser, _add_data_service_parser,
                _add_evaluate_parser, _add_predict_parser, _add_export_parser, _add_ensemble_parser,
                _add_embed_parser, _add_tag_parser, _add_index_parser, _add_similar_parser,
                _add_download_parser, _add_app_parser, _add_prepare_parser, _add_cache_parser):
        add(sub)
    p.commands = sub.choices  # {command: its parser}: where an error's parameter finds its flag
    return p


def _add_cache_parser(sub):
    s = sub.add_parser("cache", help="show or clear the disk cache of decoded audio (train --cache auto/DIR) and, "
                       "without DIR, of models converted for predict --runtime tflite")
    s.add_argument("dir", nargs="?", default=None,
                   help="cache directory (default $GENRENET_CACHE/audio, $GENRENET_CACHE defaulting to "
                        "~/.cache/genrenet)")
    s.add_argument("--clear", action="store_true", help="remove every cached clip and converted model (other files are left "
                   "alone)")
    s.set_defaults(fn=cmd_cache)


def _add_models_parser(sub):
    s = sub.add_parser("models", help="list the registered architectures")
    s.add_argument("--json", action="store_true", help="print model_info of every model as JSON")
    s.set_defaults(fn=cmd_models)


def _add_presets_parser(sub):
    s = sub.add_parser("presets", help="list the ready-to-run models shipped with genrenet (no training needed)")
    s.add_argument("--json", action="store_true", help="print every preset's details as JSON")
    s.set_defaults(fn=cmd_presets)


def _add_demo_parser(sub):
    s = sub.add_parser("demo", help="train crnn_attention on built-in synthetic music, evaluate and export")
    s.add_argument("--out", default=os.path.join("runs", "demo"), help="run directory (default runs/demo)")
    s.add_argument("--epochs", type=COUNT, default=10, help="training epochs (default 10)")
    s.add_argument("--seed", type=_setting("seed"), default=0, help="seeds weights, splits and crops (default 0)")
    s.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras verbosity (1: progress bars; default 2)")
    s.set_defaults(fn=cmd_demo)


def _add_data_service_parser(sub):
    s = sub.add_parser("data-service", help="run a tf.data service (dispatcher + workers) on this machine for "
                       "train --data-service, until Ctrl-C")
    s.add_argument("--port", type=PORT, default=5050, help="dispatcher port (default 5050; 0: any free port)")
    s.add_argument("--workers", type=COUNT, default=1, help="tf.data service workers to start (default 1)")
    s.set_defaults(fn=cmd_data_service)


def _add_evaluate_parser(sub):
    s = sub.add_parser("evaluate", help="clip-level metrics, predictions and a confusion matrix")
    s.add_argument("run", metavar="SOURCE", help="a run directory, a preset, an exported SavedModel version "
                   "directory or a .tflite file (results of exports go to ./eval-<model>-<data>-<split>/)")
    s.add_argument("--data", required=True, help="the data spec to score: PATH | gtzan:PATH | fma:PATH | "
                   "csv:FILE | tfrecord:PREFIX | synthetic[:k=v,..]")
    s.add_argument("--split", default=None, choices=("all", "train", "val", "test"),
                   help="train/val: the clips the run trained/validated on; default: the dataset's test split, "
                        "else the run's validation clips when --data is its data, else all")
    s.add_argument("--aggregate", default="mean", choices=("mean", "vote"),
                   help="clip = mean of window probabilities, or majority vote of windows (default mean)")
    s.add_argument("--batch-size", type=COUNT, default=None,
                   help="windows per model call (default: 64 windows of 3 s, fewer when windows are longer)")
    s.add_argument("--json", action="store_true", help="print the metrics as one JSON object (last line)")
    _add_hop(s)
    s.set_defaults(fn=cmd_evaluate)


def _add_predict_parser(sub):
    s = sub.add_parser("predict", help="classify audio files (any format, length and sample rate)")
    s.add_argument("inputs", nargs="+", metavar="[SOURCE] FILE",
                   help="SOURCE: a run directory, an exported SavedModel version directory, a .tflite file or a "
                        "preset name (default: the default preset, see `genrenet presets`); then audio files or "
                        "folders")
    s.add_argument("--top-k", type=COUNT, default=3, help="labels in `top` (default 3); for a tagger without "
                   "per-tag thresholds, also the number of tags")
    s.add_argument("--runtime", choices=("auto", "keras", "tflite"), default=None,
                   help="how a run or preset runs: keras (default), tflite (converted once to LiteRT, int8 when "
                        "that keeps labels, cached in genrenet's cache) or auto (whichever measured faster for the "
                        "architecture); an export runs as it was exported")
    _add_labels_map(s)
    s.add_argument("--batch-size", type=COUNT, default=None, help="windows per model call, across files (default: "
                   "64 windows of 3 s, fewer when windows are longer)")
    s.add_argument("--json", action="store_true",
                   help="print every file's result (label, top, probabilities, windows or error) as one JSON list")
    s.add_argument("--timeline", metavar="DIR", default=None,
                   help="also write each file's genre timeline (spectrogram and genres per window) as DIR/NAME.png")
    s.add_argument("--runner", default=None, help="run on Apache Beam (DirectRunner, PrismRunner, DataflowRunner, "
                   "FlinkRunner, ...): FILE are patterns (gs://, s3:// with their Beam extras), results go to "
                   "--output as JSON Lines; other flags go to Beam's pipeline options (--flag=value)")
    s.add_argument("--output", default=None, metavar="PREFIX", help="with --runner: write PREFIX-*.jsonl")
    s.add_argument("--min-confidence", type=float, default=None, metavar="P",
                   help="a top probability below P is marked uncertain (\"unsure: rock or blues\"); default: the "
                        "threshold chosen on the model's held-out clips, else 0.5")
    _add_hop(s)
    s.set_defaults(fn=cmd_predict)


def _add_prepare_parser(sub):
    s = sub.add_parser("prepare", help="decode and resample a dataset on Apache Beam into TFRecord shards "
                       "(train/evaluate them with --data tfrecord:PREFIX)")
    s.add_argument("data", metavar="DATA_SPEC",
                   help="PATH | gtzan:PATH | fma:PATH | csv:FILE | jamendo:PATH | mtt:PATH")
    s.add_argument("--output", required=True, metavar="PREFIX",
                   help="writes PREFIX-SSSSS-of-NNNNN.tfrecord, PREFIX.index.jsonl and PREFIX.json")
    s.add_argument("--sample-rate", type=COUNT, default=22050, help="decode to this rate (default 22050)")
    s.add_argument("--num-shards", type=COUNT, default=None, help="default: one per 100 clips")
    s.add_argument("--runner", default="DirectRunner", help="Beam runner (default DirectRunner); other flags go "
                   "to Beam's pipeline options (--flag=value)")
    s.set_defaults(fn=cmd_prepare)


def _add_labels_map(s):
    s.add_argument("--labels-map", default=None, metavar="FILE",
                   help="JSON or YAML {model label: your label}: many labels may share one of yours, unmapped "
                        "labels are dropped (e.g. genrenet/presets/maps/msd-to-gtzan.json)")


def _add_hop(s):
    s.add_argument("--hop", type=SECONDS, default=None, metavar="SECONDS",
                   help="seconds between the windows a file is cut into (default: one window, no overlap)")


def _add_export_parser(sub):
    s = sub.add_parser("export", help="write a SavedModel for TF Serving: OUT/<name>/<version>/")
    s.add_argument("run", metavar="RUN_OR_PRESET", help="a run directory or a preset name")
    s.add_argument("--out", required=True, help="base folder of the export (TF Serving's model base path's parent)")
    s.add_argument("--name", default="genrenet", help="model name: the folder under --out (default genrenet)")
    s.add_argument("--version", type=VERSION, default=1,
                   help="version folder under --out/--name, a whole number ≥ 0 (default 1)")
    s.add_argument("--force", action="store_true", help="replace an existing version")
    s.add_argument("--tflite", action="store_true",
                   help="also write <version>/model.tflite (builtin ops only; input one window per row)")
    s.add_argument("--quantize", default=None, metavar="float16|dynamic|int8",
                   help="also write <version>/model-<mode>.tflite for each mode given (comma-separated; implies "
                   "--tflite); the log-mel front-end stays float32; the card records size and agreement")
    s.add_argument("--calibration-data", default=None, metavar="SPEC",
                   help="audio whose windows calibrate int8 and measure agreement with float32 (a data spec; "
                   "default: the data the run was trained on; needed for presets)")
    _add_hop(s)
    s.set_defaults(fn=cmd_export)


def _add_ensemble_parser(sub):
    s = sub.add_parser("ensemble", help="combine runs into one model (decision-level ensemble)")
    s.add_argument("runs", nargs="+", metavar="RUN", help="the run directories to combine")
    s.add_argument("--out", required=True, help="the ensemble's run directory")
    s.add_argument("--method", default="mean", choices=("mean", "vote"),
                   help="average the members' probabilities, or their one-hot votes (default mean)")
    s.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per member")
    s.set_defaults(fn=cmd_ensemble)


def _add_embed_parser(sub):
    s = sub.add_parser("embed", help="clip embeddings (penultimate features, mean over windows) to .npz or .csv")
    s.add_argument("source", metavar="RUN_OR_MODEL", help="a run directory, a preset or a registered model name")
    s.add_argument("files", nargs="+", metavar="FILE", help="audio files or folders")
    s.add_argument("--out", required=True, help="FILE.npz (files, embeddings, windows) or FILE.csv")
    s.add_argument("--pretrained", default=None, help="pretrained weights tag for a model name, e.g. msd")
    s.add_argument("--batch-size", type=COUNT, default=32, help="windows per model call (default 32)")
    s.set_defaults(fn=cmd_embed)


def _add_tag_parser(sub):
    s = sub.add_parser("tag", help="write predicted genres into audio files' tags (a dry run unless --write; "
                       "extra [library])")
    s.add_argument("inputs", nargs="*", metavar="[SOURCE] FILE",
                   help="SOURCE: a run directory, an exported SavedModel version directory, a .tflite file or a "
                        "preset name (default: the default preset); then audio files or folders")
    s.add_argument("--write", action="store_true", help="write the tags (default: only show what would change)")
    s.add_argument("--field", default="genre", choices=("genre", "grouping", "comment"),
                   help="the tag to write (default genre: ID3 TCON, Vorbis GENRE, MP4 ©gen)")
    s.add_argument("--mode", default="replace", choices=("replace", "append", "keep"),
                   help="replace the value, append to it, or keep a value already there (fill empty ones only; default replace)")
    s.add_argument("--min-confidence", type=float, default=None, metavar="P",
                   help="leave files whose predicted probability is below P as they are")
    s.add_argument("--journal", default=None, metavar="FILE",
                   help="with --write: where the old values are recorded (default: a new file in "
                        "$XDG_STATE_HOME/genrenet/journals/, path printed)")
    s.add_argument("--undo", default=None, metavar="JOURNAL", help="restore the old values a journal recorded")
    _add_labels_map(s)
    s.add_argument("--batch-size", type=COUNT, default=None, help="windows per model call, across files")
    s.add_argument("--json", action="store_true", help="print {journal, files: [...]} as JSON")
    s.set_defaults(fn=cmd_tag)


def _add_index_parser(sub):
    s = sub.add_parser("index", help="an index of clip embeddings of audio files for `genrenet similar`; run again "
                       "to update it (only new and changed files are embedded)")
    s.add_argument("inputs", nargs="+", metavar="[SOURCE] PATH",
                   help="SOURCE: a run directory or a preset (default: the default preset); then audio files, "
                        "folders or patterns")
    s.add_argument("--out", required=True, metavar="INDEX", help="the index folder (created, or updated)")
    s.add_argument("--batch-size", type=COUNT, default=32, help="windows per model call (default 32)")
    s.add_argument("--runner", default=None, help="embed on Apache Beam (DirectRunner, DataflowRunner, ...); "
                   "other flags go to Beam's pipeline options (--flag=value)")
    s.set_defaults(fn=cmd_index)


def _add_similar_parser(sub):
    s = sub.add_parser("similar", help="the most similar songs of an index to audio files (in the index or not)")
    s.add_argument("index", metavar="INDEX", help="an index folder written by `genrenet index`")
    s.add_argument("files", nargs="+", metavar="FILE", help="audio files, folders or patterns")
    s.add_argument("--k", type=COUNT, default=10, help="neighbours per file (default 10)")
    s.add_argument("--json", action="store_true", help='one JSON row per file: {"file", "neighbours": [{"file", '
                   '"score"}]}')
    s.add_argument("--batch-size", type=COUNT, default=32,
                   help="windows per model call (files not in the index; default 32)")
    s.set_defaults(fn=cmd_similar)


def _add_download_parser(sub):
    s = sub.add_parser("download", help="download, verify (published checksums) and extract a public dataset")
    s.add_argument("dataset", choices=("gtzan", "fma_small", "fma_medium", "fma_metadata"),
                   help="gtzan, fma_small, fma_medium or fma_metadata")
    s.add_argument("--dir", required=True, help="where the archive goes and is extracted (resumes if interrupted)")
    s.add_argument("--delete-archive", action="store_true", help="remove the archive after extraction")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_download)


def _add_app_parser(sub):
    s = sub.add_parser("app", help="a local web page: top genres and the genre timeline of a song (extra [app])")
    s.add_argument("source", metavar="SOURCE", nargs="?", default=None,
                   help="a run directory, an exported SavedModel version directory, a .tflite file or a preset "
                   "(default: the default preset, see `genrenet presets`)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    s.add_argument("--port", type=PORT, default=7860, help="port to serve on (default 7860)")
    s.add_argument("--top-k", type=COUNT, default=3, help="genres or tags shown in the label (default 3)")
    _add_labels_map(s)
    s.add_argument("--max-file-size", default="100mb",
                   help="largest upload accepted, e.g. 100mb or 1gb (default 100mb)")
    s.add_argument("--index", default=None, metavar="INDEX", help="an index folder (`genrenet index`): adds a "
                   "similar-songs tab")
    s.set_defaults(fn=cmd_app)


def error_line(error, parser: argparse.ArgumentParser, command: str) -> str:
    """The one line an error ends with: a genrenet error that names its parameter is printed under the flag of
    ``command`` that sets it (``--batch-size: must be ≥ 1, got 0``); its message is printed as it is."""
    if not isinstance(error, GenrenetError) or not error.param:
        return str(error)
    return f"{flag_of(error.param, parser, command)}: {error.message}"


def flag_of(param: str, parser: argparse.ArgumentParser, command: str) -> str:
    """The command-line name of a library parameter: ``batch_size`` → ``--batch-size``, ``model_kwargs.dropout``
    → ``--set dropout``; a parameter that ``command`` has no option for keeps its name."""
    name, _, key = param.partition(".")
    if name == "hop_seconds":
        return "--hop"
    if name == "model_kwargs":
        return f"--set {key}" if key else "--set"
    flag = "--" + name.replace("_", "-")
    usage = parser.commands[command].format_usage() if command in parser.commands else ""
    return flag if re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage) else param


def _version():
    from . import __version__

    return f"genrenet {__version__}"


def _parse(parser, argv):
    """Parse ``argv``; the flags genrenet does not know go to Beam for ``prepare`` and ``predict --runner``."""
    args, extra = parser.parse_known_args(argv)
    if extra and not (args.command == "prepare" or (args.command in ("predict", "index") and args.runner)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.beam_args = extra
    return args


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):  # print file names that are not valid UTF-8 as their bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    parser = build_parser()
    args = _parse(parser, argv)  # before TensorFlow loads: --help and usage errors answer at once
    if not os.environ.get("GENRENET_DEBUG"):
        import_tensorflow_quietly()
    try:
        code = args.fn(args)
    except KeyboardInterrupt:
        print("genrenet: interrupted", file=sys.stderr)
        return 130
    except (GenrenetError, OSError) as e:
        # Bad input, bad arguments and file-system errors end in one line; GENRENET_DEBUG=1 shows the traceback.
        # Anything else is a bug and keeps its traceback.
        if os.environ.get("GENRENET_DEBUG"):
            raise
        print(f"genrenet: error: {error_line(e, parser, args.command)}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
