"""Make the peer-exported ``.nir`` files in this directory (see README.md).

Run each part in the peer environment that has the framework (tests/peers/setup_peers.sh):

    $NIRJAX_PEERS_DIR/torch/bin/python  make_exports.py torch  tests/data/exports
    $NIRJAX_PEERS_DIR/sinabs/bin/python make_exports.py sinabs tests/data/exports
    $NIRJAX_PEERS_DIR/spyx/bin/python   make_exports.py spyx   tests/data/exports

Each model is exported with the framework's own exporter as a user would; nir's graph type
check is turned off during export (snnTorch's exporter otherwise refuses its own graph), and
a graph ``nir.write`` cannot write (scalar parameters: "Scalar datasets don't support
chunk/filter options") is written in nir.write's layout with scalars uncompressed.
"""

import pathlib
import sys
import warnings

import h5py
import nir
import numpy as np


def _np(v):
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return v

def _write(group, d):
    for k, v in d.items():
        v = _np(v)
        if k == "metadata":
            if v:
                _write(group.create_group(k), v)
        elif isinstance(v, dict):
            _write(group.create_group(str(k)), v)
        elif isinstance(v, str):
            group.create_dataset(k, data=v, dtype=h5py.string_dtype())
        elif v is None:
            continue
        else:
            arr = np.asarray(v)
            if arr.dtype.kind in "UO":
                group.create_dataset(k, data=arr.astype(object), dtype=h5py.string_dtype())
            elif arr.ndim:
                group.create_dataset(k, data=arr, compression="gzip")
            else:
                group.create_dataset(k, data=arr)

def write_like_nir(path, graph):
    """nir.write's file layout (nir 1.0.8), but scalar fields are stored uncompressed
    (nir.write refuses to write a scalar with gzip) and torch tensors as numpy arrays."""
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data=nir.version, dtype=h5py.string_dtype())
        _write(f.create_group("node"), graph.to_dict())

def no_type_check():
    """Turn off nir's graph type inference/check (exporters build graphs it refuses)."""
    nir.NIRGraph.infer_types = lambda self: None
    nir.NIRGraph.check_types = lambda self: True

def export_torch(out):
    warnings.simplefilter("ignore")
    import torch, nir
    no_type_check()
    out = pathlib.Path(out); out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    log = []
    def report(name, fn):
        try:
            g = fn()
            try:
                nir.write(str(out / name), g); how = "nir.write"
            except Exception as e:
                write_like_nir(str(out / name), g); how = f"nir layout (nir.write: {type(e).__name__}: {e})"
            log.append(f"{name}: ok, {how}")
        except Exception as e:
            import traceback; traceback.print_exc()
            log.append(f"{name}: FAILED {type(e).__name__}: {e}")

    def norse_export():
        import norse.torch as norse
        model = norse.SequentialState(torch.nn.Linear(4, 3), norse.LIFBoxCell())
        return norse.to_nir(model, torch.randn(1, 4))
    report("norse_linear_lif.nir", norse_export)

    def norse_export2():
        import norse.torch as norse
        p = norse.LIFParameters(tau_mem_inv=torch.full((3,), 100.0), tau_syn_inv=torch.full((3,), 200.0),
                                v_th=torch.full((3,), 0.5), v_leak=torch.zeros(3))
        model = norse.SequentialState(torch.nn.Linear(4, 3), norse.LIFCell(p),
                                      torch.nn.Linear(3, 2), norse.LIBoxCell())
        return norse.to_nir(model, torch.randn(1, 4))
    report("norse_cubalif_li.nir", norse_export2)

    def snntorch_export():
        import snntorch as snn
        from snntorch.export_nir import export_to_nir
        net = torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True),
                                  torch.nn.Linear(3, 2), snn.Leaky(beta=0.8, init_hidden=True, output=True))
        return export_to_nir(net, torch.randn(1, 4))
    report("snntorch_leaky.nir", snntorch_export)

    def snntorch_rleaky():
        import snntorch as snn
        from snntorch.export_nir import export_to_nir
        net = torch.nn.Sequential(torch.nn.Linear(4, 3),
                                  snn.RLeaky(beta=0.9, linear_features=3, init_hidden=True),
                                  torch.nn.Linear(3, 2), snn.Leaky(beta=0.8, init_hidden=True, output=True))
        return export_to_nir(net, torch.randn(1, 4))
    report("snntorch_rleaky.nir", snntorch_rleaky)

    def rockpool_export():
        from rockpool.nn.modules import LinearTorch, LIFTorch, ExpSynTorch
        from rockpool.nn.combinators import Sequential
        from rockpool.nn.modules.torch.nir import to_nir
        net = Sequential(LinearTorch((4, 3)), LIFTorch(3), LinearTorch((3, 2)), ExpSynTorch(2))
        for p in net.parameters().astorch() if hasattr(net.parameters(), "astorch") else []:
            p.requires_grad_(False)
        with torch.no_grad():
            return to_nir(net)
    report("rockpool_lif_expsyn.nir", rockpool_export)
    print("\n".join(log))
    for n in ("torch", "norse", "snntorch", "rockpool", "nir", "nirtorch"):
        try:
            m = __import__(n); print(n, getattr(m, "__version__", "?"))
        except Exception as e: print(n, e)

def export_sinabs(out):
    warnings.simplefilter("ignore")
    import torch, nir
    no_type_check()
    out = pathlib.Path(out); out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    import sinabs, sinabs.layers as sl
    log = []
    def report(name, fn):
        try:
            g = fn()
            try:
                nir.write(str(out / name), g); how = "nir.write"
            except Exception as e:
                write_like_nir(str(out / name), g); how = f"nir layout (nir.write: {type(e).__name__}: {e})"
            log.append(f"{name}: ok, {how}")
        except Exception as e:
            import traceback; traceback.print_exc()
            log.append(f"{name}: FAILED {type(e).__name__}: {e}")
    def lin():
        m = torch.nn.Sequential(torch.nn.Linear(4, 3), sl.IAFSqueeze(batch_size=1), torch.nn.Linear(3, 2), sl.LIFSqueeze(tau_mem=20.0, batch_size=1))
        return sinabs.to_nir(m, torch.randn(1, 4))
    report("sinabs_iaf_lif.nir", lin)
    def cnn():
        m = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1),
                                sl.SumPool2d(2), torch.nn.Conv2d(4, 4, 3, stride=2), sl.IAFSqueeze(batch_size=1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3), sl.IAFSqueeze(batch_size=1))
        return sinabs.to_nir(m, torch.randn(1, 2, 8, 8))
    report("sinabs_cnn.nir", cnn)
    print("\n".join(log)); print("sinabs", sinabs.__version__, "torch", torch.__version__, "nir", nir.version)

def export_spyx(out):
    warnings.simplefilter("ignore")
    import numpy as np, nir
    out = pathlib.Path(out); out.mkdir(parents=True, exist_ok=True)
    import spyx, spyx.nn as snn, spyx.nir as snir
    from flax import nnx
    log = []
    def report(name, fn):
        try:
            g = fn()
            try:
                nir.write(str(out / name), g); how = "nir.write"
            except Exception as e:
                write_like_nir(str(out / name), g); how = f"nir layout (nir.write: {type(e).__name__}: {e})"
            log.append(f"{name}: ok, {how}")
        except Exception as e:
            import traceback; traceback.print_exc()
            log.append(f"{name}: FAILED {type(e).__name__}: {e}")
    def lif():
        rngs = nnx.Rngs(0)
        m = nnx.Sequential(nnx.Linear(4, 3, rngs=rngs), snn.LIF((3,), beta=0.9, rngs=rngs),
                           nnx.Linear(3, 2, rngs=rngs), snn.CuBaLIF((2,), alpha=0.8, beta=0.9, rngs=rngs))
        return snir.to_nir(m, {"input": np.array([4])}, {"output": np.array([2])}, dt=1e-3)
    report("spyx_lif_cubalif.nir", lif)
    def rlif():
        rngs = nnx.Rngs(1)
        m = nnx.Sequential(nnx.Linear(4, 3, rngs=rngs), snn.RLIF((3,), beta=0.9, rngs=rngs),
                           nnx.Linear(3, 2, rngs=rngs), snn.LIF((2,), beta=0.8, rngs=rngs))
        return snir.to_nir(m, {"input": np.array([4])}, {"output": np.array([2])}, dt=1e-3)
    report("spyx_rlif.nir", rlif)
    print("\n".join(log)); print("spyx", getattr(spyx, "__version__", "?"), "nir", nir.version)

if __name__ == "__main__":
    {"torch": export_torch, "sinabs": export_sinabs, "spyx": export_spyx}[sys.argv[1]](sys.argv[2])
