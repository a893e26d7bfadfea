"""Evaluate Rockpool 3.1.0's Xylo ``cycles_model`` (the oracle of
``tests/test_cost_xylo.py``).

Launched with the Python of the ``torch`` peer environment (Rockpool 3.1.0); never imports
nirjax. Usage::

    python rockpool_cycles_runner.py JOBS.npz OUT.json

``JOBS.npz`` holds, per job ``<k>``: ``<k>:w_in`` ``[Nin, Nhid]``, ``<k>:w_rec``
``[Nhid, Nhid]``, ``<k>:w_out`` ``[Nhid, Nout]`` (Rockpool's ``[pre, post]`` layout) and the
spike rasters ``<k>:input``, ``<k>:hidden``, ``<k>:output`` (``[steps, channels]``), plus
``<k>:model`` (``syns61201`` or ``syns63300``). ``OUT.json`` maps each job to the cycles
Rockpool's ``cycles_model`` computes from a chip configuration holding those weights and
from those rasters.

Rockpool's cycle-model modules import ``samna`` (the chip driver, not installable here)
only for the configuration class used in their type hints; a stand-in ``samna`` module
provides those names, and the configuration is a plain object with the fields
``cycles_model`` reads (``input.weights``, ``reservoir``/``hidden`` ``.weights`` and
``.neurons[i].alias_target``, ``readout.weights``, ``synapse2_enable``). The modules are
loaded from their files, so that ``rockpool.devices.xylo``'s package ``__init__`` (which
needs the real samna) is not run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import types

import numpy as np


def _stub_samna():
    samna = types.ModuleType("samna")
    for family in ("xyloCore2", "xyloImu", "xyloAudio3"):
        conf = types.SimpleNamespace(XyloConfiguration=type("XyloConfiguration", (), {}))
        setattr(samna, family, types.SimpleNamespace(configuration=conf))
    sys.modules["samna"] = samna


def _load(model):
    import rockpool

    path = os.path.join(os.path.dirname(rockpool.__file__), "devices", "xylo", model,
                        "power_cycles_model.py")
    spec = importlib.util.spec_from_file_location(f"_rockpool_cycles_{model}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(w_in, w_rec, w_out, model):
    neurons = [types.SimpleNamespace(alias_target=None) for _ in range(w_rec.shape[0])]
    hidden = types.SimpleNamespace(weights=w_rec, neurons=neurons)
    cfg = types.SimpleNamespace(input=types.SimpleNamespace(weights=w_in),
                                readout=types.SimpleNamespace(weights=w_out),
                                synapse2_enable=False)
    if model == "syns61201":
        cfg.reservoir = hidden
    else:
        cfg.hidden = hidden
    return cfg


def main(argv):
    _stub_samna()
    import rockpool

    data = np.load(argv[1])
    jobs = sorted({k.split(":")[0] for k in data.files})
    out = {"rockpool": rockpool.__version__}
    modules = {}
    for job in jobs:
        model = str(data[f"{job}:model"])
        module = modules.setdefault(model, _load(model))
        cfg = _config(data[f"{job}:w_in"], data[f"{job}:w_rec"], data[f"{job}:w_out"], model)
        res = module.cycles_model(cfg, data[f"{job}:input"], data[f"{job}:hidden"],
                                  data[f"{job}:output"])
        out[job] = float(res[0] if isinstance(res, tuple) else res)
    with open(argv[2], "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv)
