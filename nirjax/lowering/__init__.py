"""Lowering NIR graphs to neuromorphic chips: design rules, quantization, vendor files.

One module per target family. ``speck_quantize`` (NumPy only) discretizes a convolutional
network as sinabs' DYNAP-CNN backend does and maps its layers to Speck's cores;
``speck_nir`` reads such a network out of a NIR graph and writes the discretized graph back;
``spinnaker2`` holds SpiNNaker2's import rules and weight scaling.
"""
