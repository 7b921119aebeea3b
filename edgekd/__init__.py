"""edgekd: turn a trained PyTorch model into a fast on-device model file.

Stages (each usable alone, chained by `edgekd compress`): distill, prune, quantize, export, profile, gate.
Heavy libraries are imported inside the functions that need them so `import edgekd` stays cheap.
"""

__version__ = "0.1.0"
