"""Lowering NIR graphs to neuromorphic chips: design rules, quantization, vendor files.

One module per target family:

* Xylo (SynSense Audio 2, Audio 3, IMU): ``xylo_quantize`` (NumPy only) maps a float network
  of Xylo's shape to the chip's integer specification as Rockpool's mapper and quantizers do,
  reports every rounding and writes the ``.npz`` that ``XyloSim.from_specification`` reads;
  ``xylo_rules`` holds the chips' design rules as data; ``xylo_nir`` reads such a network out
  of a NIR graph.
* Speck (SynSense DYNAP-CNN): ``speck_quantize`` (NumPy only) discretizes a convolutional
  network as sinabs' DYNAP-CNN backend does and maps its layers to Speck's cores;
  ``speck_nir`` reads such a network out of a NIR graph and writes the discretized graph back.
* SpiNNaker2: ``spinnaker2`` holds its import rules and weight scaling.
"""
