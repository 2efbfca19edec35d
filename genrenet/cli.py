"""The ``genrenet`` command line (DESIGN.md §4). Known errors end with one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter is not for users

DEMO_DATA = "synthetic"
DEMO_TEST_DATA = "synthetic:seed=1,clips=10"


def _known_errors():
    from .data import AudioError, AugmentError, DatasetError
    from .data.download import DownloadError
    from .export import ExportError
    from .resume import CheckpointError
    from .runs import RunError
    from .training import TrainingError

    from .ensemble import EnsembleError

    return (KeyError, TypeError, FileNotFoundError, AudioError, DatasetError, ExportError, RunError, TrainingError,
            CheckpointError, EnsembleError, AugmentError, DownloadError)


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


def _model_kwargs(pairs):
    out = {}
    for item in pairs or []:
        if "=" not in item:
            raise TypeError(f"--set {item!r} is not name=value")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
        if isinstance(out[k], list):
            out[k] = tuple(out[k])
    return out


def _run_dir_and_resume(args):
    """``--resume`` continues ``--out``; ``--resume RUN`` names the run directory itself."""
    from .training import TrainingError

    if isinstance(args.resume, str):
        if args.out and os.path.normpath(args.out) != os.path.normpath(args.resume):
            raise TrainingError(f"--resume {args.resume} and --out {args.out} name different run directories")
        return args.resume, True
    if args.resume and not args.out:
        raise TrainingError("--resume needs the run directory: --resume RUN or --out RUN --resume")
    return args.out, bool(args.resume)


def cmd_train(args):
    from .training import train

    out, resume = _run_dir_and_resume(args)
    run = train(args.model, args.data, out, epochs=args.epochs, batch_size=args.batch_size,
                learning_rate=args.learning_rate, lr_schedule=args.lr_schedule, seed=args.seed,
                patience=args.patience,
                val_fraction=args.val_fraction, window_seconds=args.window_seconds,
                model_kwargs=_model_kwargs(args.set), pretrained=args.pretrained,
                freeze_backbone=args.freeze_backbone, fine_tune_epochs=args.fine_tune_epochs,
                fine_tune_learning_rate=args.fine_tune_learning_rate, verbose=args.verbose, resume=resume,
                deterministic=args.deterministic, mixed_precision=args.mixed_precision, strategy=args.strategy,
                augment="default" if args.augment is None else args.augment,
                cache=_cache_option(args.cache), data_service=args.data_service)
    if run is not None:  # None: a non-chief worker of a multi-worker run (the chief writes the run)
        print(f"run saved to {run.path}")


def _add_engine_options(s):
    """Reliability and scale options of ``train``: resume, determinism, mixed precision, distribution."""
    s.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN",
                   help="continue an interrupted run from its last completed epoch (same results as an "
                   "uninterrupted run); --resume RUN or --out RUN --resume")
    s.add_argument("--deterministic", action="store_true",
                   help="deterministic TF ops: with --seed, two runs give bit-identical weights on CPU")
    s.add_argument("--mixed-precision", default="off", choices=("off", "mixed_float16", "mixed_bfloat16"),
                   help="compute in float16/bfloat16, keep variables, front-end and softmax in float32")
    s.add_argument("--strategy", default="default", choices=("default", "mirrored", "multi_worker", "tpu"),
                   help="tf.distribute strategy: mirrored = all local GPUs, multi_worker = machines in "
                   "TF_CONFIG, tpu; --batch-size is per replica")
    s.add_argument("--data-service", default=None, metavar="grpc://HOST:PORT",
                   help="make the training batches on a tf.data service's workers (start one with `genrenet "
                   "data-service`); needs --cache DIR readable by the workers at the same path")


def _cache_option(value):
    return {"memory": True, "none": False}.get(value, value)


def cmd_data_service(args):
    from .data_service import serve

    # serve() returns on Ctrl-C or SIGTERM with the servers still up and referenced, so that no destructor runs:
    # TF's stop() and destructors can block for long after a trainer left mid-job, so the process just ends.
    servers = serve(port=args.port, workers=args.workers)  # noqa: F841
    print("tf.data service stopped", flush=True)
    sys.stderr.flush()
    os._exit(0)


def cmd_evaluate(args):
    from .evaluation import evaluate

    metrics = evaluate(args.run, args.data, args.split, batch_size=args.batch_size, aggregate=args.aggregate,
                       verbose=0 if args.json else 1)
    if args.json:
        _print_json(metrics)
        return
    print(f"{metrics['data']} ({metrics['split']}): clip accuracy {metrics['clip_accuracy']:.3f}, "
          f"macro-F1 {metrics['macro_f1']:.3f}, window accuracy {metrics['window_accuracy']:.3f} "
          f"on {metrics['num_clips']} clips")
    print(f"wrote {metrics['out']}/metrics.json, predictions.csv, confusion.png")


def _expand_files(paths):
    from .data.audio import is_audio_file

    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if is_audio_file(f))
        else:
            files.append(p)
    if not files:
        raise FileNotFoundError("no audio files given")
    return files


def cmd_predict(args):
    from .predict import predict

    results = predict(args.source, _expand_files(args.files), top_k=args.top_k, batch_size=args.batch_size,
                      verbose=1)  # the progress bar goes to stderr, and only on a terminal
    if args.json:
        _print_json(results)
    else:
        for r in results:
            if "error" in r:
                print(f"{r['file']}: error: {r['error']}")
            else:
                print(f"{r['file']}: " + ", ".join(f"{l} {p:.3f}" for l, p in r["top"]))
    if all("error" in r for r in results):
        raise FileNotFoundError("none of the files could be classified")


def cmd_export(args):
    from .export import export

    export(args.run, args.out, name=args.name, version=args.version, force=args.force, tflite=args.tflite)


def cmd_ensemble(args):
    from .ensemble import ensemble

    ensemble(args.runs, args.out, method=args.method, weights=args.weights)


def cmd_embed(args):
    from .embed import embed

    result = embed(args.source, _expand_files(args.files), args.out, pretrained=args.pretrained,
                   batch_size=args.batch_size, verbose=1)
    for name, reason in result["skipped"]:
        print(f"skipped {name}: {reason}")
    if not len(result["files"]):
        raise FileNotFoundError("none of the files could be embedded")


def cmd_demo(args):
    from .evaluation import evaluate
    from .export import export
    from .training import train

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


def cmd_download(args):
    from .data.download import download

    download(args.dataset, args.dir, keep_archive=not args.delete_archive, progress=not args.no_progress)


def build_parser() -> argparse.ArgumentParser:
    """The ``genrenet`` argument parser: one sub-command per verb (DESIGN.md §4)."""
    p = argparse.ArgumentParser(prog="genrenet", description="Music genre classification with Keras: train, "
                                "evaluate, export and predict from raw audio.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("models", help="list the registered architectures")
    s.add_argument("--json", action="store_true", help="print model_info of every model as JSON")
    s.set_defaults(fn=cmd_models)

    s = sub.add_parser("demo", help="train crnn_attention on built-in synthetic music, evaluate and export")
    s.add_argument("--out", default=os.path.join("runs", "demo"), help="run directory (default runs/demo)")
    s.add_argument("--epochs", type=int, default=10)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras verbosity (1: progress bars)")
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("train", help="train a model on a dataset into a run directory")
    s.add_argument("model", help="a registered model name (see `genrenet models`)")
    s.add_argument("--data", default="synthetic", help="synthetic[:k=v,..] | PATH | gtzan:PATH | fma:PATH | csv:FILE")
    s.add_argument("--out", default=None, help="run directory (default runs/<model>-<time>)")
    s.add_argument("--epochs", type=int, default=None,
                   help="default 60 from scratch, 30 for the head of a frozen --pretrained backbone")
    s.add_argument("--batch-size", type=int, default=32, help="batch size per replica (default 32)")
    s.add_argument("--learning-rate", type=float, default=1e-3)
    s.add_argument("--lr-schedule", default=None, choices=("cosine", "constant"),
                   help="cosine: decay the learning rate to ~0 over --epochs (default from scratch); constant: "
                        "keep it (default for a frozen backbone's head)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--patience", type=int, default=10, help="early-stopping patience in epochs")
    s.add_argument("--val-fraction", type=float, default=None,
                   help="held-out validation part for datasets without their own split (default 0.2 when every "
                        "class has 10+ clips, else none); 0 = no validation")
    s.add_argument("--window-seconds", type=float, default=None, help="window length (default: the model's)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a model hyper-parameter, e.g. --set dropout=0.5 --set filters=[16,32,64]")
    s.add_argument("--pretrained", default=None, metavar="TAG",
                   help="start from pretrained weights, e.g. msd or mtt for musicnn/vgg_musicnn")
    s.add_argument("--freeze-backbone", action=argparse.BooleanOptionalAction, default=None,
                   help="with --pretrained: train only the new head (default: frozen)")
    s.add_argument("--fine-tune-epochs", type=int, default=0,
                   help="after the head, train the whole model for up to N more epochs")
    s.add_argument("--fine-tune-learning-rate", type=float, default=1e-5)
    s.add_argument("--augment", default=None, metavar="NAMES",
                   help="training-only augmentation: comma-separated names from shift, gain, noise, stretch, "
                        "pitch, specaugment, mixup (or 'all'), or a JSON dict of parameters, e.g. "
                        "'{\"noise\": {\"snr_db\": [10, 20]}}'; default mixup (none for a frozen backbone's head), "
                        "'none' for none. Parameters: see the README (Augmentation)")
    s.add_argument("--cache", default="memory", metavar="memory|none|DIR",
                   help="keep decoded audio in memory (default), decode every epoch, or cache it in DIR "
                        "(for datasets larger than memory; reused by later runs)")
    s.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    _add_engine_options(s)
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("data-service", help="run a tf.data service (dispatcher + workers) on this machine for "
                       "train --data-service, until Ctrl-C")
    s.add_argument("--port", type=int, default=5050, help="dispatcher port (default 5050; 0: any free port)")
    s.add_argument("--workers", type=int, default=1, help="tf.data service workers to start (default 1)")
    s.set_defaults(fn=cmd_data_service)

    s = sub.add_parser("evaluate", help="clip-level metrics, predictions and a confusion matrix")
    s.add_argument("run")
    s.add_argument("--data", required=True)
    s.add_argument("--split", default=None, choices=("all", "train", "val", "test"),
                   help="default: test when the dataset has a split, else all")
    s.add_argument("--aggregate", default="mean", choices=("mean", "vote"),
                   help="clip = mean of window probabilities, or majority vote of windows")
    s.add_argument("--batch-size", type=int, default=None,
                   help="windows per model call (default: 64 windows of 3 s, fewer when windows are longer)")
    s.add_argument("--json", action="store_true", help="print the metrics as one JSON object (last line)")
    s.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("predict", help="classify audio files (any format, length and sample rate)")
    s.add_argument("source", metavar="RUN_OR_EXPORT",
                   help="a run directory, an exported SavedModel version directory or a .tflite file")
    s.add_argument("files", nargs="+", metavar="FILE", help="audio files or folders")
    s.add_argument("--top-k", type=int, default=3)
    s.add_argument("--batch-size", type=int, default=None, help="windows per model call, across files (default: "
                   "64 windows of 3 s, fewer when windows are longer)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_predict)

    s = sub.add_parser("export", help="write a SavedModel for TF Serving: OUT/<name>/<version>/")
    s.add_argument("run")
    s.add_argument("--out", required=True)
    s.add_argument("--name", default="genrenet")
    s.add_argument("--version", type=int, default=1)
    s.add_argument("--force", action="store_true", help="replace an existing version")
    s.add_argument("--tflite", action="store_true",
                   help="also write <version>/model.tflite (builtin ops only; input one window per row)")
    s.set_defaults(fn=cmd_export)

    s = sub.add_parser("ensemble", help="combine runs into one model (decision-level ensemble)")
    s.add_argument("runs", nargs="+", metavar="RUN")
    s.add_argument("--out", required=True, help="the ensemble's run directory")
    s.add_argument("--method", default="mean", choices=("mean", "vote"),
                   help="average the members' probabilities, or their one-hot votes")
    s.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per member")
    s.set_defaults(fn=cmd_ensemble)

    s = sub.add_parser("embed", help="clip embeddings (penultimate features, mean over windows) to .npz or .csv")
    s.add_argument("source", metavar="RUN_OR_MODEL", help="a run directory or a registered model name")
    s.add_argument("files", nargs="+", metavar="FILE", help="audio files or folders")
    s.add_argument("--out", required=True, help="FILE.npz (files, embeddings, windows) or FILE.csv")
    s.add_argument("--pretrained", default=None, help="pretrained weights tag for a model name, e.g. msd")
    s.add_argument("--batch-size", type=int, default=32)
    s.set_defaults(fn=cmd_embed)

    s = sub.add_parser("download", help="download, verify (published checksums) and extract a public dataset")
    s.add_argument("dataset", choices=("gtzan", "fma_small", "fma_medium", "fma_metadata"))
    s.add_argument("--dir", required=True, help="where the archive goes and is extracted (resumes if interrupted)")
    s.add_argument("--delete-archive", action="store_true", help="remove the archive after extraction")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_download)
    return p


def _version():
    from . import __version__

    return f"genrenet {__version__}"


def main(argv=None) -> int:
    for stream in (sys.stdout, sys.stderr):  # print file names that are not valid UTF-8 as their bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except KeyboardInterrupt:
        print("genrenet: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        # Bad input and bad arguments end in one line; GENRENET_DEBUG=1 shows the traceback.
        if isinstance(e, _known_errors() + (ValueError, ImportError)) and not os.environ.get("GENRENET_DEBUG"):
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"genrenet: error: {message}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
