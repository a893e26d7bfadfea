"""Lowering NIR graphs to neuromorphic chips: design rules, quantization, vendor files.

One module per target family. Xylo (SynSense Audio 2, Audio 3, IMU):
``xylo_quantize`` (NumPy only) maps a float network of Xylo's shape to the chip's integer
specification as Rockpool's mapper and quantizers do, reports every rounding and writes the
``.npz`` that ``XyloSim.from_specification`` reads; ``xylo_rules`` holds the chips' design
rules as data; ``xylo_nir`` reads such a network out of a NIR graph.
"""
