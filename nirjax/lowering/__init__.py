"""Lowering NIR graphs to neuromorphic chips: design rules, quantization, vendor export.

One module per target. ``loihi_quantize`` maps float NIR layers to Loihi 2 / lava-dl netx
integer parameters and checks Loihi's design rules; ``loihi_netx`` writes and reads netx
HDF5 files.
"""
