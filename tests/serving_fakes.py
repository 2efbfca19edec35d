"""A stand-in for TF Serving's REST front-end, so the client in :mod:`genrenet.serve.rest` is tested against a
loaded SavedModel without a server: how TF Serving turns a row-format request into signature inputs, and how it
answers."""
import base64

import numpy as np

from genrenet.errors import RequestError


def decode_rest_request(body: dict, input_specs: dict) -> dict:
    """What TF Serving feeds the signature for a row-format ``body``: {input name: numpy array}.

    ``input_specs`` maps the signature's input names to their ``tf.TensorSpec`` (``structured_input_signature``
    of a loaded signature). Applies TF Serving's rules (one input → instances are the values; ``{"b64": s}``
    → bytes for string inputs; otherwise one object per instance with exactly the input names) and raises
    ``ValueError`` where TF Serving would answer 400.
    """
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances:
        raise RequestError("'instances' must be a non-empty list")
    names = sorted(input_specs)

    def is_b64(v):
        return isinstance(v, dict) and set(v) == {"b64"} and isinstance(v["b64"], str)

    def value(v, name):
        dtype = input_specs[name].dtype
        if is_b64(v):
            if dtype.name != "string":
                raise RequestError(f"{name}: a b64 value for a {dtype.name} input")
            return base64.b64decode(v["b64"], validate=True)
        if isinstance(v, dict):
            raise RequestError(f"{name}: unexpected object {sorted(v)}")
        if dtype.name == "string":
            if not isinstance(v, str):
                raise RequestError(f"{name}: expected a string or {{'b64': ...}}, got {type(v).__name__}")
            return v.encode()
        return v

    columns = {n: [] for n in names}
    objects = isinstance(instances[0], dict) and not is_b64(instances[0])
    for i, inst in enumerate(instances):
        if objects:
            if not isinstance(inst, dict) or is_b64(inst) or sorted(inst) != names:
                raise RequestError(f"instance {i}: must only have keys {names}")
            for n in names:
                columns[n].append(value(inst[n], n))
        else:
            if len(names) != 1:
                raise RequestError(f"instances are plain values but the signature takes {names}")
            columns[names[0]].append(value(inst, names[0]))
    out = {}
    for n in names:
        spec = input_specs[n]
        if spec.dtype.name == "string":
            arr = np.array(columns[n], dtype=object)
        else:
            arr = np.asarray(columns[n], dtype=spec.dtype.as_numpy_dtype)
        if spec.shape.rank is not None and arr.ndim != spec.shape.rank:
            raise RequestError(f"{n}: rank {arr.ndim} does not match the signature's {spec.shape}")
        out[n] = arr
    return out


def rest_response(outputs: dict, row_format: bool = True) -> dict:
    """The JSON TF Serving answers for signature ``outputs`` (tensors or arrays), to test clients offline."""
    def plain(v):
        v = np.asarray(v)
        if v.dtype == object or v.dtype.kind == "S":
            return [s.decode() if isinstance(s, bytes) else s for s in v.tolist()]
        return v.tolist()

    columns = {k: plain(getattr(v, "numpy", lambda v=v: v)()) for k, v in outputs.items()}
    if not row_format:
        return {"outputs": columns}
    n = len(next(iter(columns.values())))
    return {"predictions": [{k: columns[k][i] for k in columns} for i in range(n)]}
