r"""Platform profiles: the same NIR graph simulated the way each framework or chip runs it.

A NIR graph is continuous-time; every platform that imports one discretizes it its own way
(integrator, reset, threshold test, how ``r``, ``w_in``, ``v_leak`` enter, latency, ...), so
the same file gives different spikes on different platforms. Each profile below is one
:class:`~nirjax.Semantics` value, passed by name::

    model = nirjax.compile(graph, dt=1e-4, semantics="snntorch")

Profiles (``nirjax.PROFILES``; each function below documents one):

============  ===========================================================================
``nir``       the NIR 1.0.8 spec, forward Euler (the default)
``exact``     the NIR spec, exact exponential integration
``norse``     Norse 1.1.0, ``norse.torch.from_nir``
``snntorch``  snnTorch 1.0.0, ``snntorch.import_nir.import_from_nir``
``spyx``      Spyx 0.1.20 (haiku), ``spyx.nir.from_nir``: the Spyx of the NIR paper
``spyx1``     Spyx 1.0.0 (flax.nnx), ``spyx.nir.from_nir``
``sinabs``    Sinabs 3.1.3, ``sinabs.from_nir``, time constants converted to steps
``rockpool``  Rockpool 3.1.0, ``rockpool.nn.modules.from_nir``
``lava``      Lava's floating-point CUBA LIF, through the NIR paper's ``nir_to_lava``
``lava_fixed`` Lava's bit-accurate fixed-point LIF (Loihi 2), LIF only
``spinnaker2`` py-spinnaker2 ``s2_nir.from_nir`` with the NIR paper's configuration
``nengo``     Nengo 4.1.0 running the graph as the NIR paper's scripts convert it
============  ===========================================================================

The discrete updates are written with ``k = dt/tau``, ``x`` the node's summed input at the
step, ``theta`` the threshold and ``H`` the step function. Every fact about a platform comes
from its own source code (package and file named in each docstring) and was checked by
running the package; ``tests/test_conformance_peers.py`` runs the real packages.

What a profile cannot change: a profile is a semantics of the *simulation*; graphs a platform
refuses to import (e.g. snnTorch needs ``v_leak = 0``) still run under its profile with the
platform's equations applied as documented. ``dt`` is always the one given to
:func:`nirjax.compile`, even where the platform fixes or infers its own (snnTorch fixes
1e-4, Norse defaults to 1e-3, Rockpool infers it from ``r``, Sinabs has none).

The graph-level part of a profile (which edges carry a one-step latency, as inserted one-step
``Delay`` nodes named ``"src->dst"``, and recurrent-weight biases a platform drops) is a
compiler pass over the flattened graph: :func:`nirjax.compiler.passes.graph_pass`.
"""

from __future__ import annotations

from .core import PROFILE_DOCS, PROFILES, Semantics

__all__ = [
    "norse", "snntorch", "spyx", "spyx1", "sinabs", "rockpool", "lava", "lava_fixed",
    "spinnaker2", "nengo",
]


def norse() -> Semantics:
    r"""Norse 1.1.0: ``norse.torch.from_nir(graph, dt)`` (norse/torch/utils/import_nir.py).

    Norse maps LIF to ``LIFBoxCell``, CubaLIF to ``w_in*x -> LIBoxCell -> *r -> LIFBoxCell``,
    IF to ``IAFCell``, and runs the graph with NIRTorch's ``GraphExecutor``, stepping once per
    time step. Discrete updates (norse/torch/functional/lif_box.py, leaky_integrator_box.py,
    iaf.py; ``1/tau`` is computed first, in float32)::

        LIF     v' = v + (dt*(1/tau)) * ((x + v_leak) - v)          r is ignored
                z = H(v' - theta);  v = v'*(1-z) + 0*z               same step, strict >
        CubaLIF i' = i + (dt*(1/tau_syn)) * ((v_leak - i) + w_in*x)  synapse relaxes to v_leak
                v' = v + (dt*(1/tau_mem)) * ((r*i' + v_leak) - v)    the NEW current
                z = H(v' - theta);  v = reset(v', z)                 to 0 (reset_method)
        IF      v' = v + x  (no dt, no r);  z = H(v' - theta);  v = v'*(1-z)
        start   v = v_leak, i = v_leak (IF: 0)

    Departures from the NIR spec and why: ``r`` of a LIF and IF is ignored and ``v_reset`` is
    never read (resets go to 0; import_nir.py only warns about ``r``); the CubaLIF membrane
    integrates the updated current (the spec's forward Euler uses the old one); a CubaLIF
    synapse leaks towards the neuron's ``v_leak`` and starts there (import_nir.py passes the
    neuron's ``v_leak`` to the synapse); IF adds its input without ``dt`` or ``r``. For the
    Braille "subtract" graph, Norse's ``reset_method=reset_subtract`` applies to CubaLIF
    only: ``PROFILES["norse"].replace(reset="subtract")`` reproduces it (LIF and IF keep
    their reset to 0, as in Norse). LI, CubaLI, I, Scale, Threshold, Delay, AvgPool2d and
    Conv1d are not imported by Norse (NIRTorch then drops them); nirjax simulates them with
    the spec's equations in Norse's Euler form.

    Graph: a cycle is closed with the previous step's output of the edge NIRTorch evaluates
    last, which for a recurrent layer is the recurrent weight's output, absent at t = 0 (so
    no recurrent bias at t = 0) - nirjax's own rule gives the same. Known Norse defects not
    reproduced: ``Flatten`` dims are not shifted for the batch (runs with batch 1 only),
    ``SumPool2d`` ignores padding, and in a DAG with joins NIRTorch may evaluate a node
    before one of its parents (that edge silently gets a one-step delay). Norse's default
    ``dt`` is 1e-3, not the paper's 1e-4.
    """
    reset0 = dict(ignore=("r", "v_reset"), reset="v_reset")
    return (Semantics(name="norse", form="norse", cuba_current="new", ignore=("v_reset",))
            .override_type("LIF", **reset0)
            .override_type("IF", form="decay", input_gain="unit", initial_v="zero", **reset0))


def snntorch() -> Semantics:
    r"""snnTorch 1.0.0: ``snntorch.import_nir.import_from_nir(graph)`` (snntorch/import_nir.py,
    snntorch/_neurons/leaky.py, synaptic.py, rsynaptic.py; the equations are the same in 0.9.4).

    snnTorch fixes ``dt = 1e-4``, uses ``beta = 1 - dt/tau`` (clamped to [0, 1]) and, instead
    of scaling the input by ``r*dt/tau``, divides the threshold by that factor: its membrane
    ``m`` is the spec's Euler ``v`` divided by ``S``. Discrete updates (``m`` in those units;
    ``q = H(m_prev - theta')`` is snnTorch's reset flag from the carried membrane)::

        LIF     S = (r*dt)/tau;  theta' = theta/S   (unscaled when every S is within 1e-5 of 1)
                m' = beta*m + x;  m' -= q*m';  z = H(m' - theta');  m = m' - (z - q)*m'
        CubaLIF S = (w_in*(dt/tau_syn)) * ((r*dt)/tau_mem);  theta' = theta/S
                s = alpha*s + x  (alpha = 1 - dt/tau_syn);  m' = beta*m + s   (NEW current)
                then the reset as for LIF (reset to zero, same step: reset_delay=False)
        IF      a leaky neuron with beta = 0.9 and reset by subtraction (a snnTorch bug,
                import_nir.py builds snn.Leaky(beta=0.9) for nir.IF): m' = 0.9*m + x, ...
        start   m = 0, s = 0
        z = H(m' - theta') is strict (>); spikes are 1 for one step.

    With reset to zero and ``theta > 0`` the flag ``q`` is always 0 and this is a plain
    same-step reset to 0; with ``reset="subtract"`` (snnTorch's native models, IF) it is
    snnTorch's rule: a membrane still above threshold after a spike pre-subtracts ``theta'``
    the next step, so it needs ``2*theta'`` to fire again.

    Departures from the NIR spec and why: ``v_leak`` and ``v_reset`` are ignored (snnTorch
    asserts ``v_leak = 0`` and always resets to zero); the CubaLIF membrane integrates the
    updated current; snnTorch asserts ``r = tau_mem/dt`` for CubaLIF (then the spec's Euler
    update is exactly ``m' = beta*m + s``). Recording ``(node, "v")`` returns ``m``; the
    spec's ``v`` is ``m*S``.

    Recurrence: snnTorch rewrites a LIF/CubaLIF <-> Affine/Linear two-cycle into an RLeaky/
    RSynaptic whose recurrent weight acts on the previous step's spikes inside the step:
    ``s = alpha*s + x + (W_rec @ z_prev + b_rec)``, bias included at t = 0. The profile puts
    the cycle's one-step delay on the edge out of the neuron (``cycle_break="neuron"``). No
    released snnTorch runs the paper's Braille graph: 1.0.0 with NIRTorch 2.6 fails on import
    (``AttributeError: 'GraphModule' object has no attribute 'items'``) and every release
    since 0.8.0 ships an ``RSynaptic.forward`` that fails on its first call without a state
    and writes the same-step reset to a discarded local. The profile reproduces the
    recurrent layer as the NIR paper ran it (snnTorch commit a204457, Oct 2023: state
    passed explicitly, the reset applied to the returned membrane), i.e. the same equations
    as the feed-forward Synaptic above. A recurrent LIF (RLeaky) fails the same way on
    import in 1.0.0; through NIRTorch's GraphExecutor (the path of 0.8-0.9) its state comes
    back as ``(mem,)`` into the ``spk`` argument, so the recurrent weight acts on the
    membrane instead of the spikes; the profile follows RLeaky's own equation
    ``m' = beta*m + x + (W_rec @ z_prev + b_rec)``.
    """
    return (Semantics(name="snntorch", form="decay", input_gain="threshold", clip_decay=True,
                      cuba_current="new", initial_v="zero", ignore=("v_leak", "v_reset"),
                      reset="v_reset", reset_flag="previous_v", cycle_break="neuron")
            .override_type("IF", fixed_decay=0.9, reset="subtract"))


def spyx() -> Semantics:
    r"""Spyx 0.1.20 (haiku): ``spyx.nir.from_nir(graph, sample, dt)`` (spyx/nir.py, spyx/nn.py),
    the Spyx version the NIR paper used.

    Spyx 0.1 folds the input scaling into the incoming weights: an Affine/Linear/Conv before a
    LIF is multiplied by ``dt/tau``, before a CubaLIF by ``w_in*dt/tau_syn`` (bias included);
    the profile applies the same factor ``g`` to the neuron's summed input (``g = dt/tau``,
    ``g_s = w_in*(dt/tau_syn)``; equal up to float rounding of the product). Discrete updates
    (spyx/nn.py, LIF, IF, CuBaLIF, RCuBaLIF)::

        LIF     z = H(V - theta);  V = beta*V + g*x - z*theta       beta = clip(1 - dt/tau, 0, 1)
        IF      z = H(V - theta);  V = V + g*x - z*theta
        CubaLIF z = H(V - theta);  V = V - z*theta;  I = alpha*I + g_s*x;  V = beta*V + I
        start   V = 0, I = 0
        z is strict (>) and is the output of the step: it tests the membrane carried from the
        previous step, so every neuron layer adds one step of latency.
        Non-recurrent CubaLIF (CuBaLIF in 0.1.x) subtracts the reset twice:
                V = beta*(V - z*theta) + I - z*theta   (a Spyx 0.1 bug, reproduced)

    Departures from the NIR spec and why: ``r``, ``v_leak`` and ``v_reset`` are ignored (never
    read by spyx/nir.py); reset is always by subtraction; the spike of step ``t`` is computed
    from the membrane before that step's input (Spyx's neuron cores emit the spike first);
    the CubaLIF membrane integrates the updated current with gain 1 (as if ``r =
    tau_mem/dt``).

    Recurrence (a LIF/CubaLIF <-> Affine/Linear two-cycle becomes RLIF/RCuBaLIF):
    ``I = alpha*I + g_s*x + W_rec @ z`` with this step's output ``z`` (so no extra delay:
    Spyx's neurons have no same-step feedthrough) and the recurrent bias dropped (spyx/nir.py
    keeps only ``W_rec``). Import bugs of every 0.1.x release, not reproduced here but
    worked around by the tests: ``UnboundLocalError: ... 'w_in'`` for any Affine -> LIF,
    ``module 'nir' has no attribute 'Sequence'`` with nir 1.x. Spyx walks a single chain from
    a node named ``"input"``; branches and joins are dropped there, not here.
    """
    return (Semantics(name="spyx", form="decay", input_gain="input", clip_decay=True,
                      ignore=("r", "v_leak", "v_reset"), reset="subtract", fire="before",
                      initial_v="zero", cuba_current="new", recurrent_bias="drop",
                      recurrent_overrides=(("reset_at", "carried"),))
            .override_type("CubaLIF", reset_at="both"))


def spyx1() -> Semantics:
    r"""Spyx 1.0.0 (flax.nnx): ``spyx.nir.from_nir(graph, data, dt)`` (spyx/nir.py, spyx/nn.py).

    Unlike 0.1, Spyx 1.0 loads Affine/Linear/Conv weights unscaled (``g = g_s = 1``: each input
    spike adds the raw weight to the membrane). Discrete updates (spyx/nn.py)::

        LIF     z = H(V - theta);  V = beta*V + x - z*theta         beta = clip(1 - dt/tau, 0, 1)
        IF      z = H(V - theta);  V = V + x - z*theta
        CubaLIF z = H(V - theta);  V = V - z*theta;  I = alpha*I + x;  V = beta*V + I
        start   V = 0, I = 0
        z is strict (>) and is the output of the step: it tests the membrane carried from the
        previous step, so every neuron layer adds one step of latency. CuBaLIF and RCuBaLIF
        both reset the carried membrane once.

    Departures from the NIR spec and why: ``r``, ``v_leak``, ``v_reset`` and ``w_in`` are
    ignored and the input is not scaled by ``dt/tau`` (spyx/nir.py L317-332 load only the
    weights, ``1 - dt/tau`` and thresholds); the rest as in :func:`spyx`. Spyx runs convolutions
    channels-last and its Flatten reshapes the (H, W, C) tensor while the next Affine keeps
    NIR's (C, H, W) column order (spyx/nn.py ``Flatten``): the profile reproduces this
    (``flatten_order="hwc"``); recurrent biases are dropped as in 0.1. Spyx's default
    ``dt`` is 1.
    """
    return (Semantics(name="spyx1", form="decay", input_gain="unit", clip_decay=True,
                      ignore=("r", "v_leak", "v_reset", "w_in"), reset="subtract",
                      fire="before", initial_v="zero", cuba_current="new",
                      recurrent_bias="drop", flatten_order="hwc")
            .override_type("CubaLIF", reset_at="carried"))


def sinabs() -> Semantics:
    r"""Sinabs 3.1.3: ``sinabs.from_nir(graph, batch_size)`` (sinabs/nir.py,
    sinabs/layers/functional/lif.py, activation/spike_generation.py, reset_mechanism.py),
    with time constants converted to steps (``tau/dt``) as the NIR paper did by hand.

    Sinabs has no ``dt``: it reads ``tau`` in time steps and decays by ``exp(-1/tau)``; with a
    NIR graph in seconds that is ``exp(-dt/tau)`` only after dividing ``tau`` by ``dt``, which
    the paper's notebook did (``lif.tau_mem.data /= dt``); the profile does it for you.
    Discrete updates (``norm_input=False``, MultiSpike, MembraneSubtract)::

        LIF     v' = a*v + x                  a = exp(-dt/tau); the input is NOT scaled
                n = floor(v'/theta) if v' >= theta else 0      several spikes per step
                v = v' - n*theta              subtractive reset, same step
        IF      v' = v + x; n as above; v = v' - n*theta; v = max(v + theta, 0) - theta
                                              (lower clamp at -theta, min_v_mem = -theta)
        LI      v' = a*v + x  (ExpLeak; from_nir requires r = 1 and v_leak = 0)
        CubaLIF (a Sinabs LIF with tau_syn; sinabs.from_nir itself does not map CubaLIF)
                i = b*(i + x)  (b = exp(-dt/tau_syn));  v' = a*v + i;  then as LIF
        start   v = 0, i = 0

    Departures from the NIR spec and why: exponential decay without the ``(1 - a)*r`` input
    factor, ``r``, ``v_leak`` and ``v_reset`` ignored (sinabs/nir.py reads only ``tau`` and
    ``v_threshold``), reset by subtraction, an inclusive threshold test and multi-spikes
    (Sinabs' ``MultiSpike``). The NIR paper's published Sinabs trace also scaled the input
    by ``dt/tau = 0.04`` (the input column of ``lif_sinabs.csv``). Not reproduced: without
    the ``tau/dt`` conversion Sinabs decays by ``exp(-1/tau) = 0`` for ``tau`` in seconds;
    ``SumPool2d`` padding is ignored; Linear, CubaLIF, AvgPool2d are not imported; recurrent
    graphs cannot run (Sinabs layers process a whole sequence per call).
    """
    return (Semantics(name="sinabs", form="decay", integrator="exact", input_gain="unit",
                      ignore=("r", "v_leak", "v_reset"), reset="subtract", threshold_test=">=",
                      spikes="multi", initial_v="zero", cuba_current="new",
                      synapse="add_decay")
            .override_type("IF", v_min="-threshold")
            .override_type("LI", synapse="decay_add"))  # ExpLeak: v = a*v + x


def rockpool() -> Semantics:
    r"""Rockpool 3.1.0: ``rockpool.nn.modules.from_nir(graph)`` (rockpool/nn/modules/torch/nir.py,
    lif_neuron_torch.py, lif_torch.py).

    LIF becomes ``LIFNeuronTorch``, CubaLIF ``LIFTorch``, a CubaLIF <-> Affine/Linear subgraph
    ``LIFTorch(has_rec=True)``, LI ``ExpSynTorch`` (exp_syn_torch.py). Discrete updates
    (``a = exp(-dt/tau_mem)``, ``b = exp(-dt/tau_syn)``, LI ``b = exp(-dt/tau)``, each
    rounded as PyTorch computes ``torch.exp(-dt / tau)``: ``Tensor.__rtruediv__`` takes the
    reciprocal and multiplies, ``exp((1/tau) * (-dt))``, ``rate='reciprocal'``)::

        LIF     v' = (a*v + x) + v_leak          the input is NOT scaled; v_leak is a bias
        CubaLIF i = b*(i + x);  v' = (a*v + i) + v_leak     the current decays in the step
                                                             it receives input; v uses it
        both    n = min(floor(v'/theta), 2**16) if v' >= theta else 0
                                  (multi-spike, inclusive test, at most max_spikes_per_dt
                                   = 2**16 per step: StepPWL in lif_torch.py)
                v = v' - n*theta                             (subtractive reset, same step)
        LI      i = b*(i + x)     output i (an exponential synapse: isyn += x; isyn *= b)
        start   v = 0, i = 0

    Departures from the NIR spec and why: exponential decay without the ``(1 - a)*r`` factor
    and ``r``, ``w_in``, ``v_reset`` ignored (nir.py passes ``tau_mem``, ``tau_syn``,
    ``threshold``, ``bias=v_leak`` and a dt only; an LI's ``r`` and ``v_leak`` too, and its
    input decays in the step it arrives); Rockpool infers its ``dt`` from ``r`` as
    ``min(tau/(1+r))``, which fits only Rockpool's own exporter (``lif_rockpool.nir``: 9.992e-5
    instead of 1e-4); the profile uses the ``dt`` given to compile. The NIR paper's Rockpool
    trace is ``lif_rockpool.nir`` (Linear weight 0.04) run natively with ``dt = 1e-4``.

    Recurrence (``has_rec``): ``i = b*(i + x + z_prev @ W_rec)`` - last step's spikes, the
    Affine bias dropped with a warning (as Rockpool does). Known Rockpool defects not
    reproduced: ``from_nir`` fails on every ``nir.LIF`` (``'LIF' object has no attribute
    'tau_mem'``; the tests alias it); it builds an LI as ``ExpSynTorch(tau=tau.int())``, so
    every ``tau`` below 1 s becomes 0 (the synapse outputs 0) and a one-element LI raises
    ``AttributeError: 'float' object has no attribute 'int'`` (pinned by the tests): the
    profile simulates the ``ExpSynTorch`` that Rockpool exports as LI, with the graph's
    ``tau``; a flat recurrent graph runs its cycle across calls, not steps.
    """
    return (Semantics(name="rockpool", form="decay", integrator="exact", input_gain="unit",
                      ignore=("r", "v_reset", "w_in"), reset="subtract", threshold_test=">=",
                      spikes="multi", max_spikes=2.0 ** 16, initial_v="zero",
                      cuba_current="new", synapse="add_decay", rate="reciprocal",
                      cycle_break="neuron", recurrent_bias="drop")
            .override_type("LI", ignore=("r", "v_leak", "v_reset", "w_in")))


def lava() -> Semantics:
    r"""Lava (lava-nc) floating-point CUBA LIF (``PyLifModelFloat``, src/lava/proc/lif/models.py;
    ``Dense``, src/lava/proc/dense/models.py), through the NIR paper's importer
    (paper/nir_to_lava.py of the NIR repository: LIF -> ``Dense(w=dt/tau)`` + ``LIF(du=1,
    dv=dt/tau)``; CubaLIF through lava-dl's CUBA block with ``w_in*dt/tau_syn`` input scaling).

    Discrete updates::

        LIF     u = x*(dt/tau)  (du = 1: no current memory);  v' = v*(1 - dt/tau) + u
                z = H(v' - theta);  v = 0 where z             (reset to 0, same step)
        CubaLIF u = u*(1 - dt/tau_syn) + (w_in*dt/tau_syn)*x;  v' = v*(1 - dt/tau_mem) + u
        IF      v' = v + x  (lava-dl CUBA with current_decay 1, voltage_decay 0)
        start   u = v = 0

    Latency: a Lava ``Dense`` sends the accumulation of the previous step (dense/models.py),
    so every weight layer (Affine, Linear, Conv) delays its output by one step; this also
    closes cycles. The published LIF traces (CPU float, CPU fixed point, Loihi) all spike
    one step after Norse: 461, 511, 711, 761.

    Departures from the NIR spec and why: ``r``, ``v_leak`` and ``v_reset`` are ignored (the
    importer reads ``tau`` and ``v_threshold``; lava-dl asserts ``r = tau_mem/dt`` and
    ``v_leak = 0``), the CubaLIF membrane adds the updated current unscaled, the reset is to
    0, and the latency above. Lava's float model computes in float64; nirjax in the compile
    dtype. The importer refuses a nonzero Affine bias (Lava's Dense has none); nirjax keeps
    it. The fixed-point (Loihi) model is the separate profile :func:`lava_fixed`.
    """
    return (Semantics(name="lava", form="decay", input_gain="input",
                      ignore=("r", "v_leak", "v_reset"), reset="v_reset", initial_v="zero",
                      cuba_current="new", latency="weights")
            .override_type("IF", input_gain="unit"))


def lava_fixed() -> Semantics:
    r"""Lava's bit-accurate fixed-point LIF (``PyLifModelBitAcc``, src/lava/proc/lif/models.py,
    the model of Loihi 2), through the NIR paper's importer with ``fixed_pt=True``
    (paper/nir_to_lava.py): the integer rule table ``"loihi"`` (:mod:`nirjax.rules.loihi`,
    kernels in :mod:`nirjax.kernels.loihi`), selected by ``arithmetic="loihi"``.

    Discrete updates (integers; ``w = int(256*dt/tau)``, ``dv = int(4095*dt/tau)``, ``du =
    4095``, ``vth = int(131071*theta) >> 9``; ``decay(x, d) = sign(x)*((|x|*(4096-d)) >> 12)``)::

        a = w * [x != 0]                      (the LIF's Dense sees binary events)
        u = decay(u, du + 1) + (a << 6)       (= a << 6: du + 1 = 4096 decays u fully)
        v = clip(decay(v, dv) + u, ±(2**23 - 1));  z = v > (vth << 6);  v = 0 where z
        start   u = v = 0; latency: one step per weight layer, as in ``lava``

    Departures from the NIR spec and why: quantized decay, input weight and threshold (the
    importer truncates, e.g. ``dv = 163`` for ``dt/tau = 0.04``); the input's magnitude is lost
    (an Affine output only triggers an event); ``r``, ``v_leak``, ``v_reset`` are ignored;
    reset to 0. The importer maps Affine weights to ``int(256*weight)`` (Lava's fixed-point
    Dense, no bias: a nonzero bias is refused). LIF nodes only (the importer supports Affine
    and LIF; other types raise a LoweringError naming them). Values are int32: ``record`` of
    ``v`` gives Lava's integer voltage, bit-exact to the published ``lif_lava_cpu_fixed.csv``;
    the outputs are not differentiable. The same arithmetic with Loihi 2's general mapping
    (CUBA LIF/CubaLIF/IF, convolutions, biases, delays, a netx file for Lava) is the
    ``loihi2`` lowering target: ``nirjax.lower(graph, "loihi2", dt=...)``.
    """
    return Semantics(name="lava_fixed", arithmetic="loihi", initial_v="zero",
                     ignore=("r", "v_leak", "v_reset"), latency="weights")


def spinnaker2() -> Semantics:
    r"""SpiNNaker2: py-spinnaker2 ``s2_nir.from_nir(graph, ConversionConfig(...))``
    (gitlab.com/spinnaker2/py-spinnaker2, ``s2_nir.py``, ``convert_LIF``) with the NIR paper's
    configuration ``dt=1e-4, integrator=FORWARD, reset=ZERO, conn_delay=0``.

    SpiNNaker2 keeps the input unscaled and divides the threshold by ``r_factor = dt/tau*r``
    (FORWARD); ``v_leak`` becomes an offset current. Discrete updates (``m = v/S``)::

        LIF     S = (r*dt)/tau;  theta' = theta/S
                m' = (1 - dt/tau)*m + x + v_leak/r;  z = H(m' - theta');  m = 0 where z
        CubaLIF (lif_curr_exp_no_delay; exc_decay = 1 - dt/tau_syn, threshold / (r_factor*w_in
                factor)): s = (1 - dt/tau_syn)*s + x;  m' = (1 - dt/tau_mem)*m + s
        IF      m' = m + x;  theta' = theta/r
        start   m = 0

    Departures from the NIR spec and why: the threshold scaling (equivalent to the spec's
    Euler update in units of ``v/S``), reset to 0 whatever ``v_reset`` is, and the CubaLIF
    membrane integrating the updated current (an assumption: py-spinnaker2 is not on PyPI
    and could not be run; the LIF task is checked against the published trace). Not
    modelled: int8 weights (``scale_weights=True``); the paper's LIF run scaled weights and
    threshold by 102.02 by hand, which changes no spike. py-spinnaker2's *default*
    configuration differs: ``PROFILES["spinnaker2"].replace(integrator="exact",
    reset="subtract", latency="weights")`` approximates it (EXPONENTIAL, SUBTRACT,
    ``conn_delay=1``). Cycles are assumed to carry last step's spikes
    (``cycle_break="neuron"``).
    """
    return Semantics(name="spinnaker2", form="decay", input_gain="threshold",
                     ignore=("v_reset",), reset="v_reset", initial_v="zero", cuba_current="new",
                     cycle_break="neuron")


def nengo() -> Semantics:
    r"""Nengo 4.1.0 running a NIR graph converted as the NIR paper converted it.

    Nengo has no NIR importer; the paper's conversions are the NIR repository's
    ``paper/01_lif/lif_nengo.ipynb``, ``paper/03_rnn/nir_to_nengo.py`` and
    ``paper/02_cnn/nengo_import.py`` (facts from Nengo's nengo/neurons.py, synapses.py,
    builder/connection.py, builder/ensemble.py, utils/simulator.py; kernels:
    :mod:`nirjax.kernels.nengo`). The conversion makes every LIF, CubaLIF and IF an
    ``Ensemble`` whose neurons are driven directly (``J = gain*x``, bias 0), every
    Affine/Linear a Python ``Node`` (``W @ x + b``), Input/Output/Flatten/LI pass-through
    Nodes, Conv2d and SumPool2d ``nengo.Convolution`` transforms, and every edge a
    ``Connection`` without synapse, except edges into a CubaLIF or an LI: those carry a
    ``nengo.synapses.Lowpass``. Discrete updates (``v`` is Nengo's ``voltage``, in units of
    the threshold; nengo/neurons.py L667-699)::

        LIF     J = x/v_threshold;  v' = v - (J - v)*expm1(-dt/tau[0])  one tau per layer
                z = H(v' - 1);  v = 0 where z, else max(v', 0)          output z/dt
        CubaLIF X' = a*X + b*x on the incoming edges, read one step later (a Lowpass of
                tau' = -dt/log(1 - dt/tau_syn[0]), so a = exp(-dt/tau') = 1 - dt/tau_syn,
                b = -expm1(-dt/tau'));  J = ((w_in*r[0])/v_threshold)*X
                v' = v - (J - v)*expm1(-dt/tau_mem[0]);  z, v as for LIF   output z
        IF      v' = v + dt*(((1/v_threshold)/dt)*x);  z = H(v' - 1);  v = 0 where z
                (no floor)                                                output z
        LI      X' = a*X + b*x, a = exp(-dt/tau[0]), b = -expm1(-dt/tau[0]), read one
                step later: the output is the filter                      output X
        start   v = 0, X = 0 (tau_ref = 0: the refractory time never shortens a step)

    Departures from the NIR spec and why: the membrane is floored at 0 (``nengo.LIF``'s
    ``min_voltage``); LIF and IF do not read ``r``, ``v_leak`` or ``v_reset``, CubaLIF not
    ``v_leak`` or ``v_reset``, LI not ``r`` or ``v_leak`` (a Lowpass has unit gain): every
    reset goes to 0, so the Braille "subtract" graph runs with reset to 0; one ``tau``,
    ``tau_mem``, ``tau_syn`` and CubaLIF ``r`` per layer (the first element; gradients reach
    that element only); LIF spikes are Dirac-like (``1/dt``, ``amplitude = 1``) while CubaLIF
    and IF spikes are 1 (``amplitude = dt``); the CubaLIF synapse decays like the spec's
    forward Euler but its output arrives one step later, and the membrane integrates
    exactly; Conv2d biases are dropped (nengo_import.py builds a bare ``nengo.Convolution``)
    and so is SumPool2d padding. The scripts ``assert`` ``r = 1`` and ``v_leak = 0`` (LIF,
    IF, CubaLIF's ``v_leak``) and one ``r``, ``v_threshold``, ``tau_syn``, ``tau_mem`` per
    CubaLIF layer: nirjax runs such graphs anyway with the formulas above and compile warns
    (:class:`~nirjax.NirjaxWarning`) naming each value it does not read, as it does for a
    nonzero dropped bias or padding. Not converted by the scripts (compile warns): I,
    CubaLI, Scale, Threshold, Delay, Conv1d, AvgPool2d, run with the spec's exact
    equations (``integrator='exact'``).

    Graph: edges into a CubaLIF or LI read last step's filter (Nengo builds synapses in
    update mode and runs its operators as sets, incs, reads, then updates): nirjax inserts a
    one-step ``Delay`` node named ``"<src>-><dst>"`` on each such edge (``latency=
    'synapse'``) and the neuron filters the delayed input. Every other edge, Nodes included,
    is evaluated within the step in topological order, so each CubaLIF/LI layer adds one
    step of latency, LIF and IF none, and an Affine bias on an edge into a CubaLIF is
    filtered and delayed like any input. Only a CubaLIF or LI can close a cycle: Nengo
    refuses a LIF <-> Affine loop (``BuildError: Input graph has cycles``), and so does
    nirjax (``cycle_break='none'``: a :class:`~nirjax.SemanticsError` naming the loop).
    Input step n is Nengo's step at time ``(n+1)*dt`` (``PresentInput``) and the output is
    that step's value. ``record`` of ``v`` gives Nengo's ``voltage`` (``lif_nengo.csv``'s
    second column); a CubaLIF's ``i_syn`` is the summed filter state ``X``.

    Precision: Nengo computes in float64; the CubaLIF's ``w_in*r[0]`` is a product in the
    file's dtype (float32 for a float32 file, as NumPy rounds the script's expression),
    ``tau'`` in float64 as under the NumPy 1 the paper ran; several edges into one neuron are
    summed before the gain (Nengo adds ``gain*x`` per connection) and one filter runs on
    their sum (Nengo filters each connection): both differ from Nengo by rounding only.
    Compiled with ``dtype="float64"`` (``jax_enable_x64``) the profile follows Nengo to
    float64 rounding (Lowpass coefficients within a few units in the last place of Nengo's
    Pade matrix exponential; exp/log/expm1 of XLA) and is the recommended setting for
    spike-identity. In the default float32 every output matched Nengo on the test cases
    (the LIF task, both Braille graphs, the paper CNN, random chains and recurrent layers;
    ``tests/test_conformance_peers.py``), but a spike can flip where Nengo's float64
    membrane comes within float32 rounding of the threshold: not guaranteed.
    """
    return (Semantics(name="nengo", form="nengo", integrator="exact", initial_v="zero",
                      cuba_current="new", v_min="zero", latency="synapse",
                      cycle_break="none", imports=_NENGO_IMPORTS)
            .override_type("LIF", spike_amplitude="dirac")
            .override_type("IF", v_min="none")
            .override_type("Conv2d", ignore=("bias",))
            .override_type("SumPool2d", ignore=("padding",)))


# the node types the NIR paper's Nengo scripts convert
_NENGO_IMPORTS = ("Input", "Output", "Affine", "Linear", "LIF", "CubaLIF", "IF", "LI",
                  "Flatten", "Conv2d", "SumPool2d")


for _fn in (norse, snntorch, spyx, spyx1, sinabs, rockpool, lava, lava_fixed, spinnaker2,
            nengo):
    PROFILES[_fn.__name__] = _fn()
    PROFILE_DOCS[_fn.__name__] = _fn.__doc__
PROFILE_DOCS["nir"] = ("The NIR 1.0.8 specification with forward Euler: v' = v + dt/tau*((v_leak"
                       " - v) + r*x); z = H(v' - theta) (strict); v = v_reset where z, same "
                       "step; CubaLIF integrates the previous step's current; v starts at "
                       "v_leak.")
PROFILE_DOCS["exact"] = ("The NIR 1.0.8 specification with exact exponential integration "
                         "(input held over the step): v' = u + (v - u)*exp(-dt/tau), u = "
                         "v_leak + r*x; reset to v_reset in the same step.")
