"""``synthetic[:classes=6,clips=20,seconds=6,seed=0,sample_rate=22050]``: the built-in synthetic music."""
from __future__ import annotations

from ...errors import DatasetError
from .. import synthetic
from .base import Clip, ClipDataset, finish


def parse_synthetic_options(text: str) -> dict:
    opts = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise DatasetError(f"synthetic option {item!r} is not key=value")
        k, v = item.split("=", 1)
        opts[k.strip()] = v.strip()
    return opts


def synthetic_dataset(spec: str = "synthetic") -> ClipDataset:
    """``synthetic[:classes=6,clips=20,seconds=6,seed=0,sample_rate=22050]``; ``classes`` is a count or
    ``+``-separated style names."""
    opts = parse_synthetic_options(spec.split(":", 1)[1] if ":" in spec else "")
    known = {"classes", "clips", "seconds", "seed", "sample_rate"}
    if set(opts) - known:
        raise DatasetError(f"unknown synthetic options {sorted(set(opts) - known)}; known: {sorted(known)}")
    classes = opts.get("classes", str(len(synthetic.DEFAULT_CLASSES)))
    if classes.isdigit():
        names = list(synthetic.DEFAULT_CLASSES) + [s for s in synthetic.STYLES if s not in synthetic.DEFAULT_CLASSES]
        if not 2 <= int(classes) <= len(names):
            raise DatasetError(f"synthetic classes must be between 2 and {len(names)}")
        classes = names[: int(classes)]
    else:
        classes = classes.split("+")
    sample_rate = int(opts.get("sample_rate", 22050))
    try:
        items = synthetic.generate(classes=classes, clips_per_class=int(opts.get("clips", 20)),
                                   seconds=float(opts.get("seconds", 6.0)), sample_rate=sample_rate,
                                   seed=int(opts.get("seed", 0)))
    except ValueError as e:
        raise DatasetError(f"{spec}: {e}") from None
    clips = [Clip(id=i, label=lab, audio=a, sample_rate=sample_rate, group=i) for i, lab, a in items]
    return finish("synthetic", spec, clips)


