"""The int4 file of decoder_distill.py's student, re-made by the current quantize_onnx_weight_only (the tied LM head
read through Transpose(table) gets its own int8 weight) beside the file the benchmark made, both scored against the
fp32 ONNX student on the same held-out blocks (ONNX Runtime, 1 thread). Needs decoder_distill.py's --work folder.
Writes benchmarks/results/decoder_int4_head.json.

    python benchmarks/decoder_int4_head.py [--work /tmp/edgekd_decoder_bench]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "decoder_int4_head.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/edgekd_decoder_bench")
    ap.add_argument("--eval-blocks", type=int, default=16)
    a = ap.parse_args()
    import onnx
    import transformers as tf

    from edgekd.hf.export import quantize_onnx_weight_only
    from edgekd.hf.lm_eval import lm_batches, score_lms
    from edgekd.hf.text_data import load_texts
    from edgekd.runtime.decoder import OrtDecoder

    b = Path(a.work)
    t = time.time()
    quantize_onnx_weight_only(b / "onnx", b / "onnx-int4-head8", bits=4, block_size=32)
    q_s = round(time.time() - t, 1)
    names = {"fp32": "onnx", "int4 (benchmark run: fp32 head + fp32 table kept)": "onnx-int4",
             "int4 (now: int8 head, no fp32 table)": "onnx-int4-head8"}
    sizes = {k: os.path.getsize(b / d / "model.onnx") for k, d in names.items()}
    ops = {k: {op: sum(n.op_type == op for n in onnx.load(b / d / "model.onnx", load_external_data=False).graph.node)
               for op in ("MatMulNBits", "GatherBlockQuantized", "MatMul")} for k, d in names.items()}
    tok = tf.AutoTokenizer.from_pretrained(b / "student")
    data = load_texts("python-docs+wordnet+fortunes", seed=0)
    test = [x for x in lm_batches(tok, data.test.texts, max_length=128, batch_size=4, limit=a.eval_blocks)
            if x["input_ids"].shape[1] == 128]
    decs = {k: OrtDecoder(b / d / "model.onnx", threads=1).logits for k, d in names.items()}
    res = score_lms({k: v for k, v in decs.items() if k != "fp32"}, decs["fp32"], test)
    out = {"files": {k: {"bytes": sizes[k], "size_ratio_vs_fp32": round(sizes[k] / sizes["fp32"], 4), "ops": ops[k],
                         **({"perplexity": res[k]["perplexity"], "ppl_ratio_vs_fp32": res[k]["perplexity"] / res["teacher"]["perplexity"],
                             "top1_agreement_with_fp32": res[k]["top1_agreement"], "kl_to_fp32": res[k]["kl_to_teacher"]}
                            if k != "fp32" else {"perplexity": res["teacher"]["perplexity"]})} for k in names},
           "eval": {"blocks": len(test), "tokens": res["teacher"]["tokens"], "data": "python-docs+wordnet+fortunes test split"},
           "quantize_seconds": q_s, "threads": 1, "how": "ONNX Runtime CPU EP logits on the same held-out blocks; "
           "'teacher' in score_lms is the fp32 ONNX student here"}
    OUT.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(json.dumps({k: {kk: v[kk] for kk in v if kk != "ops"} for k, v in out["files"].items()}, indent=1))


if __name__ == "__main__":
    main()
