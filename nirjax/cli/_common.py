"""Helpers shared by the commands: graphs, inputs, records, metadata, output files."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import pathlib
import sys
import warnings

import numpy as np

from ..errors import InputError, NirFileError

#: the graph ``nirjax run`` simulates when no FILE is given
DEFAULT_EXAMPLE = "braille_bias_zero"
#: dt of the shipped examples (the NIR paper's)
EXAMPLE_DT = 1e-4
#: defaults of the generated Bernoulli input
DEFAULT_STEPS, DEFAULT_BATCH, DEFAULT_RATE = 256, 16, 0.1


# ----------------------------------------------------------------------------- graphs

@dataclasses.dataclass
class LoadedGraph:
    """A graph read from a file or a shipped example, with what reading it said."""

    path: pathlib.Path
    graph: object
    shipped: bool
    notes: list
    sha256: str
    example: str | None = None


def add_graph_argument(parser, *, optional: bool = False) -> None:
    """The FILE positional (a ``.nir`` file or a shipped example name) and ``--dt``."""
    from ..examples import EXAMPLES

    names = ", ".join(n for n in EXAMPLES if not n.endswith("_trace"))
    if optional:
        parser.add_argument("graph", nargs="?", default=None, metavar="FILE",
                            help=f"a .nir file or a shipped example ({names}); default: the "
                                 f"NIR paper's Braille graph, {DEFAULT_EXAMPLE}")
    else:
        parser.add_argument("graph", metavar="FILE",
                            help=f"a .nir file or a shipped example ({names})")
    parser.add_argument("--dt", type=float, default=None,
                        help=f"time step in the graph's time unit (seconds for the paper "
                             f"graphs); required for a file, {EXAMPLE_DT:g} for shipped examples")


def sha256(path) -> str:
    """The SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_graph(name: str | None) -> LoadedGraph:
    """Read a ``.nir`` file or a shipped example; warnings of the reader become notes."""
    import nirjax
    from ..examples import EXAMPLES, example_path

    key = name or DEFAULT_EXAMPLE
    shipped = key in EXAMPLES and not key.endswith("_trace")
    path = example_path(key) if shipped else pathlib.Path(key)
    if not shipped and not path.exists():
        known = ", ".join(n for n in EXAMPLES if not n.endswith("_trace"))
        raise NirFileError(f"{str(path)!r}: no such file (nor a shipped example: {known})")
    if path.is_dir():
        raise NirFileError(f"{str(path)!r}: is a directory, expected a .nir file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = nirjax.read(path)
    notes = [str(w.message) for w in caught]
    return LoadedGraph(path, graph, shipped, notes, sha256(path), key if shipped else None)


def resolve_dt(args, loaded: LoadedGraph):
    """``--dt``, or the examples' dt for a shipped example (``None`` otherwise: compile says
    that dt is required)."""
    from ..errors import SemanticsError

    if args.dt is not None:
        return args.dt
    if loaded.shipped:
        return EXAMPLE_DT
    raise SemanticsError(
        f"{str(loaded.path)!r}: --dt is required: a NIR graph is continuous-time and carries no "
        f"time step; give it in the graph's time unit, e.g. --dt 1e-4 for the NIR paper graphs "
        f"(time constants in seconds)")


def compile_model(loaded: LoadedGraph, dt, semantics="nir", **options):
    """``nirjax.compile`` (with compile ``options``, e.g. ``mesh``), with compile-time
    warnings collected as notes."""
    import nirjax

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = nirjax.compile(loaded.graph, dt=dt, semantics=semantics, **options)
    loaded.notes.extend(str(w.message) for w in caught)
    return model


def param(model, node: str, field: str):
    """A parameter of a node (``model.params[node].field``), or ``None``."""
    p = model.params.get(node) if isinstance(model.params, dict) else None
    if p is None:
        return None
    value = p.get(field) if isinstance(p, dict) else getattr(p, field, None)
    return None if value is None else np.asarray(value)


# ----------------------------------------------------------------------------- inputs

def add_input_arguments(parser) -> None:
    """Options that choose the input: a file, or generated Bernoulli spikes."""
    g = parser.add_argument_group(
        "input",
        "X is .npy/.npz/.h5 holding [T, B, *input_shape] (or [T, *input_shape] for one "
        "sample; in a .npz or .h5 the array named after the Input node, or the only one); "
        "or tonic-style events (structured arrays with fields t, x, y, p: a .npy, or a .npz "
        "with one array per sample) binned to dt; or a file of NIR's data format "
        "(nir.write_data; the Input node's observable). Without --input: generated "
        "Bernoulli spikes.")
    g.add_argument("--input", "-i", metavar="X", default=None, help="the input file")
    g.add_argument("--steps", type=int, default=None,
                   help=f"time steps: of the generated input (default {DEFAULT_STEPS}), or of "
                        f"the binned events (default: up to the last event)")
    g.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help=f"samples of generated input (default {DEFAULT_BATCH})")
    g.add_argument("--rate", type=float, default=DEFAULT_RATE,
                   help=f"probability of a generated input spike per channel and step "
                        f"(default {DEFAULT_RATE})")
    g.add_argument("--seed", type=int, default=0, help="seed of the generated input (default 0)")
    e = parser.add_argument_group("events", "how event files are binned (see nirjax.events)")
    e.add_argument("--sensor-size", metavar="W,H,P", default=None,
                   help="sensor width, height, polarities (tonic's order; H = 1 for audio); "
                        "default: from the Input shape (P, H, W) or (N,)")
    e.add_argument("--time-unit", type=float, default=1e-6,
                   help="seconds per unit of the events' t (default 1e-6: tonic's microseconds)")
    e.add_argument("--t-start", type=float, default=0.0,
                   help="start of the time window, in the unit of t (default 0)")
    e.add_argument("--t-stop", type=float, default=None,
                   help="end of the time window (exclusive), in the unit of t "
                        "(default: --steps, or the last event)")


def _fit(name: str, a: np.ndarray, shape: tuple, where: str) -> np.ndarray:
    """``[T, B, *shape]`` from ``[T, B, *shape]``, ``[T, *shape]`` or flattened neurons."""
    a = np.asarray(a)
    if a.dtype.names:
        raise InputError(f"{where}: a structured array with fields {list(a.dtype.names)}; event "
                         f"arrays need the fields t, x, p")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{where}: expected numbers, got dtype {a.dtype}")
    n = int(np.prod(shape))
    if a.ndim == len(shape) + 2 and tuple(a.shape[2:]) == tuple(shape):
        out = a
    elif a.ndim == len(shape) + 1 and tuple(a.shape[1:]) == tuple(shape):
        out = a[:, None]
    elif a.ndim >= 2 and int(np.prod(a.shape[2:])) == n and a.ndim != len(shape) + 1:
        out = a.reshape(a.shape[:2] + tuple(shape))
    else:
        dims = ", ".join(map(str, shape))
        raise InputError(f"{where}: array of shape {tuple(a.shape)} does not fit Input {name!r} of "
                         f"shape {tuple(shape)}: expected [T, B, {dims}] or [T, {dims}]")
    if out.shape[0] == 0 or out.shape[1] == 0:
        raise InputError(f"{where}: array of shape {tuple(a.shape)} has no time steps or no samples")
    out = np.ascontiguousarray(out, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{where}: {int(np.sum(~np.isfinite(out)))} values are NaN or infinite")
    return out


def _sensor_size(args, shape: tuple, camera: bool, where: str):
    if args.sensor_size:
        try:
            size = tuple(int(s) for s in args.sensor_size.replace("x", ",").split(","))
        except ValueError:
            raise InputError(f"--sensor-size {args.sensor_size!r}: expected W,H,P integers") from None
        if len(size) != 3:
            raise InputError(f"--sensor-size {args.sensor_size!r}: expected three numbers W,H,P")
        return size
    if len(shape) == 3:
        return (shape[2], shape[1], shape[0])
    if len(shape) == 2:
        return (shape[1], shape[0], 1)
    if len(shape) == 1 and not camera:
        return (shape[0], 1, 1)
    raise InputError(f"{where}: cannot infer the sensor size from Input shape {shape} for events "
                     f"{'with' if camera else 'without'} a y field; give --sensor-size W,H,P")


def _bin_events(args, arrays: list, model, where: str) -> tuple[dict, dict]:
    from ..io import events as ev

    if len(model.input_names) != 1:
        raise InputError(f"{where}: event input needs a graph with one Input node; this graph has "
                         f"{len(model.input_names)}: {', '.join(model.input_names)}")
    name = model.input_names[0]
    shape = tuple(model.input_shapes[name])
    camera = "y" in arrays[0].dtype.names
    size = _sensor_size(args, shape, camera, where)
    dt = float(model.program.dt)
    if args.steps is not None and args.t_stop is not None:
        raise InputError("give --steps or --t-stop for the time window of events, not both")
    integral = lambda v: int(v) if v is not None and float(v).is_integer() else v
    window = dict(time_unit=args.time_unit, t_start=integral(args.t_start),
                  t_stop=integral(args.t_stop), n_steps=args.steps)
    try:
        frames = ev.to_frames(arrays, size, dt, **window)
        outside = ev.count_outside(arrays, dt, **window)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    total = sum(len(a) for a in arrays)
    if int(np.prod(frames.shape[2:])) != int(np.prod(shape)):
        raise InputError(f"{where}: binned events have shape {frames.shape[2:]} per step (sensor "
                         f"size {size}) but Input {name!r} has shape {shape}")
    xs = {name: frames.reshape(frames.shape[:2] + shape)}
    info = {"kind": "events", "sensor_size": list(size), "events": total,
            "events_outside_window": outside, "steps": int(frames.shape[0]),
            "t_start": args.t_start, "t_stop": args.t_stop, "time_unit": args.time_unit}
    return xs, info


def _pick(arrays: dict, model, where: str) -> dict:
    """The arrays of the Input nodes from a name -> array mapping (``input/<name>`` keys of
    an ``OUT.npz`` that ``nirjax run`` wrote count as the Input's)."""
    names = list(model.input_names)
    if not all(n in arrays for n in names) and all(f"input/{n}" in arrays for n in names):
        return {n: arrays[f"input/{n}"] for n in names}
    if all(n in arrays for n in names):
        return {n: arrays[n] for n in names}
    if len(names) == 1 and len(arrays) == 1:
        return {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    raise InputError(f"{where}: holds {', '.join(map(repr, arrays)) or 'nothing'}; expected an "
                     f"array named after each Input node (missing: {', '.join(map(repr, missing))})"
                     + ("" if len(names) > 1 else " or exactly one array"))


def _read_hdf5(path, where: str) -> dict:
    import h5py

    out = {}
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    out[name] = obj[()]
            f.visititems(visit)
    except OSError as exc:
        raise InputError(f"{where}: cannot read it as HDF5 ({exc})") from None
    return out


def load_input(args, model) -> tuple[dict, dict]:
    """The inputs ``{Input name: [T, B, *shape]}`` chosen by the options, and a description
    of where they came from (for the printout and the metadata)."""
    from ..io import events as ev
    from ..io.data import from_nir_data, is_nir_data, read_data

    if args.input is None:
        steps = DEFAULT_STEPS if args.steps is None else args.steps
        for flag, value, ok in (("--steps", steps, steps >= 1), ("--batch", args.batch, args.batch >= 1),
                                ("--rate", args.rate, 0.0 <= args.rate <= 1.0)):
            if not ok:
                raise InputError(f"{flag} {value}: expected "
                                 + ("a probability in [0, 1]" if flag == "--rate" else "a positive integer"))
        rng = np.random.default_rng(args.seed)
        xs = {name: (rng.random((steps, args.batch) + tuple(shape)) < args.rate).astype(np.float32)
              for name, shape in model.input_shapes.items()}
        return xs, {"kind": "generated", "distribution": "bernoulli", "rate": args.rate,
                    "seed": args.seed, "steps": steps, "batch": args.batch}
    path = pathlib.Path(args.input)
    where = f"input {str(path)!r}"
    if not path.exists():
        raise InputError(f"{where}: no such file")
    if not path.is_file():
        raise InputError(f"{where}: not a file")
    info = {"path": str(path), "sha256": sha256(path)}
    suffix = path.suffix.lower()
    import h5py

    if suffix in (".h5", ".hdf5", ".nird", ".nirdata") or (suffix not in (".npy", ".npz")
                                                          and h5py.is_hdf5(path)):
        if is_nir_data(path):
            data = from_nir_data(read_data(path), model=model)
            outputs = {k: v for k, v in data.items() if isinstance(k, str)}
            for name in model.input_names:  # an Input's only observable, whatever its name
                others = [k for k in data if isinstance(k, tuple) and k[0] == name]
                if name not in outputs and len(others) == 1:
                    outputs[name] = data[others[0]]
            xs = _pick(outputs, model, where + " (NIR data)")
            info.update(kind="nir_data")
        else:
            arrays = _read_hdf5(path, where)
            events = {k: v for k, v in arrays.items() if ev.is_event_array(v)}
            if events:
                xs, binned = _bin_events(args, list(events.values()), model, where)
                info.update(binned)
                return {**xs}, info
            xs = _pick(arrays, model, where)
            info.update(kind="array")
    else:
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{where}: cannot read it as .npy/.npz ({exc})") from None
        if isinstance(loaded, np.ndarray):
            arrays = {"": loaded}
        else:
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
        if arrays and all(ev.is_event_array(a) for a in arrays.values()):
            xs, binned = _bin_events(args, list(arrays.values()), model, where)
            info.update(binned)
            return xs, info
        xs = _pick(arrays, model, where)
        info.update(kind="array")
    xs = {n: _fit(n, a, tuple(model.input_shapes[n]), where) for n, a in xs.items()}
    lengths = {a.shape[:2] for a in xs.values()}
    if len(lengths) > 1:
        raise InputError(f"{where}: the inputs differ in steps or batch size: "
                         + ", ".join(f"{n} {a.shape[:2]}" for n, a in xs.items()))
    return xs, info


def describe_input(xs: dict, info: dict) -> list:
    """Lines for the printout."""
    steps, batch = next(iter(xs.values())).shape[:2]
    kind = info["kind"]
    if kind == "generated":
        head = (f"input: {steps} steps x {batch} samples of generated Bernoulli spikes "
                f"(p = {info['rate']} per channel and step, seed {info['seed']})")
    elif kind == "events":
        head = (f"input: {info['path']}: {info['events']} events binned to {steps} steps x "
                f"{batch} samples (sensor size W,H,P = {tuple(info['sensor_size'])}; "
                f"{info['events_outside_window']} events outside the time window)")
    elif kind == "nir_data":
        head = f"input: {info['path']} (NIR data): {steps} steps x {batch} samples"
    else:
        head = f"input: {info['path']}: {steps} steps x {batch} samples"
    lines = [head]
    for name, x in xs.items():
        lines.append(f"  {name}: shape {x.shape}, {x.sum():g} in total")
    return lines


# ----------------------------------------------------------------------------- records

def parse_records(items, model) -> list:
    """``NODE`` or ``NODE:FIELD`` strings (also comma-separated) -> ``model.run`` records."""
    names = {n.name for n in model.program.nodes}
    out = []
    for item in items or ():
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if part in names or ":" not in part:
                out.append(part)
            else:
                node, field = part.rsplit(":", 1)
                out.append((node, field))
    return out


def record_key(key) -> str:
    """``"node"`` or ``"node:field"``."""
    return key if isinstance(key, str) else f"{key[0]}:{key[1]}"


# ----------------------------------------------------------------------------- metadata

def metadata(loaded: LoadedGraph, model, info: dict, records: list, argv) -> dict:
    """What is needed to reproduce a run."""
    import jax
    import nir

    import nirjax

    sem = model.program.semantics
    xs_shapes = {n: list(s) for n, s in model.input_shapes.items()}
    return {
        "nirjax_version": nirjax.__version__,
        "nir_version": getattr(nir, "version", None),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "graph": str(loaded.path),
        "example": loaded.example,
        "graph_sha256": loaded.sha256,
        "nir_file_version": nirjax.file_version(loaded.graph),
        "dt": float(model.program.dt),
        "semantics": sem.name,
        "semantics_fields": {f.name: _plain(getattr(sem, f.name)) for f in dataclasses.fields(sem)},
        "inputs": xs_shapes,
        "outputs": {n: list(s) for n, s in model.output_shapes.items()},
        "input": info,
        "records": [record_key(r) for r in records],
        "command": "nirjax " + " ".join(argv) if argv is not None else None,
    }


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return repr(value)


# ----------------------------------------------------------------------------- output files

def save_npz(path, outputs: dict, records: dict, inputs: dict, meta: dict) -> None:
    """``OUT.npz``: ``output/<Output node>``, ``record/<node>`` and
    ``record/<node>/<field>``, ``input/<Input node>``, ``metadata`` (JSON) and the scalar
    keys ``dt``, ``semantics``, ``graph_sha256``, ``nirjax_version``."""
    arrays = {f"output/{k}": np.asarray(v) for k, v in outputs.items()}
    for k, v in records.items():
        arrays["record/" + (k if isinstance(k, str) else f"{k[0]}/{k[1]}")] = np.asarray(v)
    for k, v in inputs.items():
        arrays[f"input/{k}"] = np.asarray(v)
    arrays["metadata"] = np.array(json.dumps(meta))
    arrays["dt"] = np.array(meta["dt"])
    arrays["semantics"] = np.array(meta["semantics"])
    arrays["graph_sha256"] = np.array(meta["graph_sha256"])
    arrays["nirjax_version"] = np.array(meta["nirjax_version"])
    try:
        np.savez_compressed(path, **arrays)
    except OSError as exc:
        raise NirFileError(f"{str(path)!r}: cannot write ({exc.strerror or exc})") from None


def save_nir_data(path, model, outputs: dict, records: dict, inputs: dict, meta: dict,
                  events: bool = False) -> None:
    """Any other extension: NIR's data format (``nir.read_data`` reads it), with the
    metadata as JSON in the root attribute ``nirjax_metadata``."""
    from ..io.data import to_nir_data, write_data

    values = {**inputs, **outputs, **records}
    # input spikes (0/1 or counts) are the Input node's "spikes", other inputs its "output"
    spiking = {n for n, x in inputs.items()
               if np.all(x >= 0) and np.all(x == np.round(x))}
    write_data(path, to_nir_data(values, float(model.program.dt), model=model, spiking=spiking,
                                 events=events), metadata=meta)


def check_writable(path, what: str) -> pathlib.Path:
    """Fail before simulating when an output file cannot be written."""
    p = pathlib.Path(path)
    if p.is_dir():
        raise InputError(f"{what} {str(p)!r}: is a directory")
    if not p.parent.exists():
        raise InputError(f"{what} {str(p)!r}: directory {str(p.parent)!r} does not exist")
    return p


def check_plot_path(path) -> pathlib.Path:
    """``--plot``: writable, matplotlib installed, a format it writes (checked before the
    simulation)."""
    from ..plot import _mpl

    p = check_writable(path, "--plot")
    _, figure = _mpl()
    formats = figure().canvas.get_supported_filetypes()
    suffix = p.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise InputError(f"--plot {str(p)!r}: unknown image format {suffix or '(no extension)'!r}; "
                         f"use one of {', '.join(sorted(formats))}")
    return p


def progress_flag(args):
    """``--quiet`` -> False, ``--progress`` -> True, else ``None`` (on a terminal only)."""
    if getattr(args, "quiet", False):
        return False
    if getattr(args, "progress", False):
        return True
    return None


def note(text: str) -> None:
    """A one-line note on stderr."""
    print(f"nirjax: note: {' '.join(str(text).split())}", file=sys.stderr)


def add_quiet_arguments(parser) -> None:
    """``--quiet`` and ``--progress``."""
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress and no notes on stderr")
    parser.add_argument("--progress", action="store_true",
                        help="show progress even when stderr is not a terminal")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v
