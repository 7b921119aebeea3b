"""int4 weight-only options on one trained decoder student: each option's file size and held-out perplexity against
the student's fp32 ONNX file (ONNX Runtime CPU EP, 1 thread). Options: MatMulNBits block (16/32/64), symmetric or
asymmetric, ORT's algorithms (default round-to-nearest, HQQ, neural-compressor RTN, k_quant, GPTQ calibrated on
training text), accuracy_level, and the tied embedding's storage (one shared int4 table, an int8 head copy, or two
int4 copies). Writes benchmarks/results/decoder_int4_options.json.

    python benchmarks/decoder_int4_options.py --student DIR [--eval-blocks 64] [--options head:block:sym:algo:acc,...]

DIR: an HF student directory (e.g. decoder_distill.py's WORK/student); its optimum ONNX export is made beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "decoder_int4_options.json"
DATA = "python-docs+wordnet+fortunes"
OPTIONS = ("int8:32:1:default:0,shared:32:1:default:0,shared:32:0:default:0,separate:32:1:default:0,"
           "shared:64:0:default:0,shared:16:1:default:0,shared:32:0:gptq:0,shared:32:0:k_quant:0,shared:32:1:hqq:0,"
           "shared:32:0:default:4,shared:32:1:rtn:0")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True, help="HF student directory")
    ap.add_argument("--eval-blocks", type=int, default=64, help="held-out blocks of 128 tokens")
    ap.add_argument("--options", default=OPTIONS, help="comma-separated head:block:symmetric(1/0):algo:accuracy_level")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    import numpy as np
    import onnx
    from transformers import AutoTokenizer

    from edgekd.hf.decoder_runtime import OrtDecoder
    from edgekd.hf.export import export_optimum, quantize_onnx_weight_only
    from edgekd.hf.gptq import PrefillCalibration, calibration_blocks
    from edgekd.hf.lm_eval import lm_batches
    from edgekd.hf.text_data import load_texts

    student = Path(a.student)
    if not (student / "config.json").is_file():
        raise SystemExit(f"{student}: not an HF model directory (no config.json)")
    onnx_dir = student.parent / (student.name + "-onnx")
    if not (onnx_dir / "model.onnx").exists():
        export_optimum(student, onnx_dir, "text-generation-with-past")
    tok = AutoTokenizer.from_pretrained(student)
    data = load_texts(DATA, seed=0)
    test = [b for b in lm_batches(tok, data.test.texts, max_length=128, batch_size=4, limit=a.eval_blocks)
            if b["input_ids"].shape[1] == 128]
    calib = calibration_blocks(tok, data.train.texts[:400])

    def nll(path):
        f = OrtDecoder(path, threads=1).logits
        s = n = 0.0
        for b in test:
            x = f(b)[:, :-1].astype(np.float64)
            ids = b["input_ids"][:, 1:]
            m = x.max(-1, keepdims=True)
            lp = x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))
            s -= np.take_along_axis(lp, ids[..., None], -1).sum()
            n += ids.size
        return s / n, int(n)

    out = Path(a.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    opts = res.setdefault("options", {})
    fp = onnx_dir / "model.onnx"
    v, n = nll(fp)
    res["fp32"] = {"bytes": os.path.getsize(fp), "perplexity": math.exp(v), "tokens": n}
    for head, block, sym, algo, acc in (o.split(":") for o in a.options.split(",")):
        key = f"{head} b{block} {'sym' if sym == '1' else 'asym'} {algo} acc{acc}"
        qdir = onnx_dir.parent / ("q-" + key.replace(" ", "_"))
        t0 = time.time()
        q = quantize_onnx_weight_only(onnx_dir, qdir, bits=4, block_size=int(block), symmetric=sym == "1", algo=algo,
                                      accuracy_level=int(acc) or None, head=head,
                                      calibration=PrefillCalibration(fp, calib) if algo == "gptq" else None)
        qs = time.time() - t0
        v, n = nll(q)
        ops: dict[str, int] = {}
        for nd in onnx.load(q).graph.node:
            ops[nd.op_type] = ops.get(nd.op_type, 0) + 1
        size = os.path.getsize(q)
        opts[key] = {"bytes": size, "size_ratio": size / res["fp32"]["bytes"], "perplexity": math.exp(v),
                     "ppl_ratio": math.exp(v - math.log(res["fp32"]["perplexity"])), "tokens": n,
                     "quantize_seconds": round(qs, 1),
                     "ops": {k: ops[k] for k in ("MatMulNBits", "GatherBlockQuantized", "MatMul", "Gather") if k in ops}}
        print(key, {k: round(x, 4) if isinstance(x, float) else x for k, x in opts[key].items()}, flush=True)
        shutil.rmtree(qdir, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
