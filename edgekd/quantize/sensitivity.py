"""Which layers lose most when quantized: per-layer error of quantized vs float activations.

Both files are run on the same calibration samples with every intermediate tensor kept. A layer's
SQNR (dB) is measured on its output in the quantized file against the float file; the error a layer
*adds* is its inputs' SQNR minus its output's SQNR, so errors inherited from earlier layers are not
blamed on it. Layers are ranked by that loss, worst first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekd.export import execute

CLEAN_DB = 80.0  # SQNR of an input that carries no quantization error


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64).ravel()
    got = got.astype(np.float64).reshape(-1)[: ref.size]
    noise = float(((ref - got) ** 2).sum())
    sig = float((ref**2).sum())
    if noise <= sig * 10 ** (-CLEAN_DB / 10):
        return CLEAN_DB
    return 10.0 * np.log10(max(sig, 1e-30) / noise)


def rank(float_path: Path, quant_path: Path, layer_list: list[dict], samples: np.ndarray, value_name=None) -> list[dict]:
    """layer_list: [{name, op, inputs, output}] of the float file. value_name(inter, tensor) finds the tensor
    in the quantized file's intermediates (QDQ files rename). Returns layers with sqnr_db and loss_db."""
    lookup = value_name or (lambda inter, t: t if t in inter else None)
    sq: dict[str, list[float]] = {}
    for i in range(len(samples)):
        x = samples[i : i + 1]
        _, f_int = execute.run_file(float_path, [x], intermediates=True)
        _, q_int = execute.run_file(quant_path, [x], intermediates=True)
        for name, ref in f_int.items():
            k = lookup(q_int, name)
            if k is None or q_int[k].size != ref.size or not np.issubdtype(ref.dtype, np.floating):
                continue
            sq.setdefault(name, []).append(_sqnr(ref, q_int[k]))
    mean = {k: float(np.mean(v)) for k, v in sq.items()}
    ranked = []
    for layer in layer_list:
        if layer["output"] not in mean:
            continue
        ins = [mean.get(t, CLEAN_DB) for t in layer["inputs"]]
        out_db = mean[layer["output"]]
        ranked.append({**layer, "sqnr_db": round(out_db, 2), "loss_db": round(min(ins) - out_db, 2)})
    ranked.sort(key=lambda d: d["loss_db"], reverse=True)
    return ranked
