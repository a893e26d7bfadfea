r"""Fine-tuning compiled NIR graphs with surrogate gradients and optax.

A compiled graph's ``model.params`` are the graph's own parameters in their physical form
(``weight``, ``bias``, ``tau``, ``r``, ``v_leak``, ``v_threshold``, ``v_reset``, ``w_in``,
``tau_syn``, ``tau_mem``, ``scale``, ``threshold``), so whatever is trained here exports back to
the same kind of NIR graph with :func:`nirjax.to_nir`. Spikes are differentiated with the
surrogate chosen at compile time (``nirjax.compile(..., surrogate="arctan")``, or per node with
``Semantics.override(node, surrogate=Surrogate(...))``); the forward pass is exact.

The pieces:

* **Readouts** name what the loss sees: ``None`` (the graph's output), a node name (that
  node's output at every step) or a ``(node, state_field)`` pair such as ``("lif2", "v")`` (a
  membrane trace, after the reset), or a list of those (the loss then gets a tuple).
* **Losses** ``loss(readout, targets) -> scalar`` (mean over the batch): cross-entropy on spike
  counts, on the max or final membrane of a readout; MSE on rates or traces; van Rossum
  distance of spike trains; :func:`distillation` losses against a teacher graph's readout.
* **Masks** (:func:`mask`) choose which parameters train; frozen parameters are bit-for-bit
  unchanged.
* **Bounds** (:func:`default_bounds`, :func:`project`) keep the graph valid NIR: after every
  optimizer step each bounded parameter is clipped into its interval (a projection). The
  default bounds keep every time constant ``tau``, ``tau_syn``, ``tau_mem`` at or above
  ``dt`` under forward Euler (the decay factor ``dt/tau`` then stays in ``(0, 1]``: no overshoot,
  no instability) and at or above ``dt/100`` under the exact integrator (any ``tau > 0`` is
  valid there), and never move a value the source graph already had below that floor.
* **Time constants** are in seconds (often ``1e-4``..``1e-2``), far from the unit scale of
  weights: by default their optimizer updates are made relative (:func:`relative_updates`),
  so with Adam a learning rate of ``1e-2`` changes a ``tau`` by about 1 % per step.
* :class:`Trainer` builds one jitted training step on any optax optimizer: the gradient
  goes through one optax chain (:func:`freeze` for the mask, ``optax.clip_by_global_norm``,
  the optimizer, :func:`relative_updates`), then the update is applied and projected;
  :func:`fit` loops over data, reports progress through a callback and the
  ``nirjax.train`` logger, and evaluates.
* Long sequences: compile with ``checkpoint=K`` (see :func:`nirjax.compile`) to
  rematerialize chunks of ``K`` steps in the backward pass.

The families live in submodules: :mod:`~nirjax.train.losses`, :mod:`~nirjax.train.metrics`,
:mod:`~nirjax.train.masks`, :mod:`~nirjax.train.bounds`, :mod:`~nirjax.train.quantization`
and :mod:`~nirjax.train.trainer`; every public name is also here (``nirjax.train.<name>``).

Example: train only the readout layer of a small graph to classify which of two input
channels is busier (a complete, runnable example).

>>> import nir, numpy as np, optax, nirjax
>>> from nirjax import train
>>> g = nir.NIRGraph.from_list(
...     nir.Affine(np.full((8, 2), 1.0), np.zeros(8)),
...     nir.LIF(tau=np.full(8, 1e-3), r=np.ones(8), v_leak=np.zeros(8),
...             v_threshold=np.full(8, 0.1)),
...     nir.Affine(np.zeros((2, 8)), np.zeros(2)),
...     nir.LI(tau=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2)))
>>> model = nirjax.compile(g, dt=1e-4)
>>> names = sorted(model.params)             # node names of the graph
>>> trainer = train.Trainer(model, train.max_membrane_cross_entropy, optax.adam(1e-2),
...                         mask=train.mask(model.params, nodes=names[1]),
...                         metrics={"acc": train.max_membrane_accuracy})
>>> state = trainer.init(model.params)
>>> xs = np.zeros((50, 4, 2), np.float32); xs[:, :2, 0] = 1; xs[:, 2:, 1] = 1
>>> labels = np.array([0, 0, 1, 1])
>>> state, logs = trainer.step(state, xs, labels)
>>> sorted(logs)
['acc', 'grad_norm', 'loss']
"""

from __future__ import annotations

from .bounds import (TIME_CONSTANTS, default_bounds, keep_in_bounds, project,
                     relative_updates)
from .losses import (distillation, final_membrane_cross_entropy, max_membrane_cross_entropy,
                     rate_mse, spike_count_cross_entropy, trace_mse, van_rossum)
from .masks import count_params, freeze, mask, mask_all, mask_and, mask_not, mask_or
from .metrics import (count_agreement, final_membrane_accuracy, max_membrane_accuracy,
                      spike_agreement, spike_count_accuracy)
from .quantization import fake_quantize, hardware_aware
from .trainer import FitResult, Trainer, TrainState, evaluate, fit, logger  # noqa: F401

__all__ = [
    # losses (nirjax.train.losses)
    "spike_count_cross_entropy", "max_membrane_cross_entropy",
    "final_membrane_cross_entropy", "rate_mse", "trace_mse", "van_rossum", "distillation",
    # metrics (nirjax.train.metrics)
    "spike_count_accuracy", "max_membrane_accuracy", "final_membrane_accuracy",
    "count_agreement", "spike_agreement",
    # masks (nirjax.train.masks)
    "mask", "mask_all", "mask_and", "mask_or", "mask_not", "count_params", "freeze",
    # bounds (nirjax.train.bounds)
    "default_bounds", "project", "keep_in_bounds", "relative_updates", "TIME_CONSTANTS",
    # parameter transforms (nirjax.train.quantization)
    "fake_quantize", "hardware_aware",
    # training (nirjax.train.trainer)
    "Trainer", "TrainState", "fit", "evaluate", "FitResult",
]
