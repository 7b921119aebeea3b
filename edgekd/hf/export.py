"""Ship an HF student: a Hugging Face directory, an optimum ORTModel-loadable ONNX directory,
its int8 (ONNX Runtime dynamic quantization) twin, and a fixed-shape TFLite file via litert-torch.

Directories are written beside their final name and renamed on success (never half-written);
single files go through edgekd.core.atomic_path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from edgekd.errors import EdgeKDError
from edgekd.hf.forward import accepts
from edgekd.hf.offline import hf_offline

ONNX_NAME = "model.onnx"


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; on success it replaces `final`, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        # mkdtemp makes a private (0700) directory; the shipped one gets the usual permissions
        for d in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            d.chmod(0o777 & ~umask)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def save_student_dir(student, teacher, out_dir: Path) -> Path:
    """save_pretrained (safetensors) + the teacher's tokenizer + its sentence-transformers files,
    so the student loads with AutoModel, SentenceTransformer and optimum alike."""
    with atomic_dir(out_dir) as tmp:
        student.save_pretrained(tmp, safe_serialization=True)
        teacher.tokenizer.save_pretrained(tmp)
        for rel in teacher.st_files:
            dst = tmp / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(teacher.path / rel, dst)
    return Path(out_dir)


def export_optimum(model_dir: Path, out_dir: Path, task: str, *, opset: int | None = None) -> Path:
    """optimum-onnx's exporter (the one optimum's ORTModel classes are made for) -> out_dir/model.onnx."""
    hf_offline()
    try:
        from optimum.exporters.onnx import main_export
    except ImportError as exc:
        raise EdgeKDError(f"ONNX export of HF models needs optimum-onnx (pip install 'edgekd[hf]'): {exc}") from None
    with atomic_dir(out_dir) as tmp:
        try:
            main_export(str(model_dir), output=tmp, task=task, opset=opset, device="cpu",
                        library_name="transformers", local_files_only=True, do_validation=False)
        except Exception as exc:  # optimum raises many types; the user needs one line
            raise EdgeKDError(f"optimum ONNX export failed: {str(exc).strip().splitlines()[0][:300]}") from None
        if not (tmp / ONNX_NAME).is_file():
            raise EdgeKDError(f"optimum ONNX export wrote no {ONNX_NAME}")
    return Path(out_dir) / ONNX_NAME


def quantize_onnx_int8(onnx_dir: Path, out_dir: Path) -> Path:
    """ONNX Runtime dynamic int8 (weights int8 per channel, activations quantized at run time): the
    standard int8 scheme for transformer encoders on CPU. Copies config + tokenizer so the result is
    ORTModel-loadable on its own."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = Path(onnx_dir)
    with atomic_dir(out_dir) as tmp:
        _copy_side_files(src, tmp)
        try:
            quantize_dynamic(src / ONNX_NAME, tmp / ONNX_NAME, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul", "Gemm"])
        except Exception as exc:
            raise EdgeKDError(f"ONNX Runtime int8 quantization failed: {str(exc).strip().splitlines()[0][:300]}") from None
    return Path(out_dir) / ONNX_NAME


def _copy_side_files(src: Path, dst_dir: Path) -> None:
    """config, tokenizer, generation config: what makes a quantized copy ORTModel-loadable on its own."""
    for f in src.rglob("*"):
        if f.is_file() and f.suffix != ".onnx" and not f.name.endswith(".onnx_data"):
            dst = dst_dir / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)


def gemm_to_matmul(model) -> int:
    """GPT-2's Conv1D layers export as Gemm(x, W, b), which MatMulNBits does not take: rewrite each plain one
    (alpha = beta = 1, no transposes, constant W) as MatMul + Add, the same arithmetic. Returns how many."""
    from onnx import helper

    consts = {i.name for i in model.graph.initializer}
    nodes, n = [], 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA") \
            and not attrs.get("transB")
        if node.op_type != "Gemm" or not plain or node.input[1] not in consts:
            nodes.append(node)
            continue
        mm = f"{node.output[0]}_matmul"
        nodes.append(helper.make_node("MatMul", node.input[:2], [mm if len(node.input) > 2 else node.output[0]],
                                      name=f"{node.name}_MatMul"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [mm, node.input[2]], list(node.output), name=f"{node.name}_Add"))
        n += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return n


def fold_weight_transposes(model) -> dict[str, str]:
    """A tied LM head can export as MatMul(x, Transpose(embedding table)): the quantizer takes only MatMuls whose
    weight is a constant, so the head stayed fp32 and kept the whole fp32 table alive beside its int4 copy (SmolLM2's
    10-layer student: int4 file 0.60x the fp32 one). Each Transpose of a 2-D initializer becomes the transposed
    initializer (the same values). Returns {initializer made: the table it transposes}."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    keep, made = [], {}
    for node in model.graph.node:
        src = inits.get(node.input[0]) if node.op_type == "Transpose" and node.input else None
        perm = [helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"]
        if src is None or len(src.dims) != 2 or (perm and list(perm[0]) != [1, 0]) or node.output[0] in outputs:
            keep.append(node)
            continue
        model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(src).T.copy(), node.output[0]))
        made[node.output[0]] = src.name
    del model.graph.node[:]
    model.graph.node.extend(keep)
    _drop_unused_initializers(model)
    return made


def _drop_unused_initializers(model) -> None:
    used = {i for node in model.graph.node for i in node.input} | {o.name for o in model.graph.output}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)


def share_tied_table(model, made: dict[str, str], *, bits: int, block_size: int) -> int:
    """One quantized copy of a tied embedding: each Gather(table, ids) whose table also feeds a MatMulNBits LM head
    (through a folded transpose) becomes GatherBlockQuantized over that head's packed weight, reshaped to
    [vocab, hidden * bits / 8] (the layout onnxruntime-genai's builder shares with `shared_embeddings`; a uint8
    GatherBlockQuantized reads MatMulNBits' packing and default zero point). Both then read one initializer, so the
    file holds one quantized table instead of two. Returns how many Gathers now share a head's weight."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    heads = {}
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            src = next((t for m, t in made.items() if node.input[1].startswith(m + "_Q")), None)
            if src is not None and attrs["K"] % block_size == 0 and attrs["bits"] == bits:
                heads[src] = (node, attrs)
    nodes, n = [], 0
    for node in model.graph.node:
        hit = heads.get(node.input[0]) if node.op_type == "Gather" else None
        zp = hit[0].input[3] if hit and len(hit[0].input) > 3 and hit[0].input[3] else None
        if hit is None or (zp and inits[zp].data_type != 2):  # float zero points (HQQ): GatherBlockQuantized takes none
            nodes.append(node)
            continue
        head, attrs = hit
        vocab, k_blocks = attrs["N"], attrs["K"] // block_size
        if zp and k_blocks % 2:  # a flat zero-point array splits rows inside a byte: no row layout to share
            nodes.append(node)
            continue
        name = node.name or node.output[0]
        shapes = {f"{name}_data_shape": [vocab, attrs["K"] * bits // 8], f"{name}_scales_shape": [vocab, k_blocks]}
        ins = [f"{name}_data", node.input[1], f"{name}_scales"]
        reshape = [(head.input[1], ins[0], f"{name}_data_shape"), (head.input[2], ins[2], f"{name}_scales_shape")]
        if zp:
            shapes[f"{name}_zp_shape"] = [vocab, (k_blocks * bits + 7) // 8]
            ins.append(f"{name}_zp")
            reshape.append((zp, ins[3], f"{name}_zp_shape"))
        for k, v in shapes.items():
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(v, np.int64), k))
        nodes += [helper.make_node("Reshape", [a, s], [o], name=f"{name}_{o}") for a, o, s in reshape]
        nodes.append(helper.make_node("GatherBlockQuantized", ins, list(node.output), name=name, domain="com.microsoft",
                                      bits=bits, block_size=block_size, gather_axis=0, quantize_axis=1))
        n += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused_initializers(model)
    return n


HEADS = ("shared", "int8", "separate")


def quantize_onnx_weight_only(onnx_dir: Path, out_dir: Path, *, bits: int, block_size: int = 32, symmetric: bool = True,
                              algo: str = "default", accuracy_level: int | None = None, head: str = "int8",
                              calibration=None, int8_nodes: tuple[str, ...] = (), head_block: int | None = None) -> Path:
    """ONNX Runtime's MatMulNBits quantizer: MatMul weights to `bits` (4 or 8) in blocks of `block_size`, activations
    stay float (the on-device LLM scheme). `algo`: ORT's default (round to nearest, C++), "hqq", "rtn" or "k_quant"
    (its neural-compressor port) or "gptq" (needs `calibration`, an ORT CalibrationDataReader).

    At 4 bits a tied LM head exported as MatMul(x, Transpose(table)) gets the table as its weight, and the embedding
    Gather is quantized too. `head`: "int8" (default) - the head its own int8 copy beside an int4 GatherBlockQuantized
    table; "shared" - the Gather reads the head's int4 weight, one int4 table in the file (share_tied_table); "separate"
    - two int4 copies (the same values as "shared", a larger file). `int8_nodes`: MatMuls whose node name contains one
    of these strings (sensitive layers) are quantized at 8 bits instead. `head_block`: the tied head's (and shared
    table's) int4 block, when it differs from the body's. SmolLM2's 10-layer student, 8 128 held-out tokens
    (benchmarks/results/decoder_int4_options.json): int8 head 0.28x the fp32 file at 1.13x its perplexity; shared
    0.16x at 1.23x, round to nearest. GPTQ runs with edgekd's corrected step (edgekd/hf/gptq.py; ORT's own is round
    to nearest): on the MLP-1024 KD student, shared and asymmetric, 0.162x at 1.037x (round to nearest 1.277x)."""
    import logging

    import onnx

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line per node
    if head not in HEADS:
        raise EdgeKDError(f"head {head!r}: want one of {', '.join(HEADS)}")
    src = Path(onnx_dir)
    with atomic_dir(out_dir) as tmp:
        _copy_side_files(src, tmp)
        try:
            model = onnx.load(src / ONNX_NAME)
            gemm_to_matmul(model)
            made = fold_weight_transposes(model) if bits == 4 else {}
            head_nodes = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in made]
            eight = [n.name for n in model.graph.node if n.op_type == "MatMul" and any(s in n.name for s in int8_nodes)]
            eight += head_nodes if head == "int8" else []
            tables = set(made.values())
            gathers = [n.name for n in model.graph.node if n.op_type == "Gather" and n.input[0] in tables]
            hb = head_block or block_size
            own = head_nodes + gathers if hb != block_size and head != "int8" else []  # the head's own pass, below
            model = _nbits(model, bits, block_size, symmetric, algo, accuracy_level, calibration,
                           exclude=eight + own + (gathers if head == "shared" else []), gather=bits == 4)
            if own:
                model = _nbits(model, bits, hb, symmetric, "default", accuracy_level, None,
                               exclude=gathers if head == "shared" else [], gather=head != "shared")
            if eight and bits == 4:
                model = _nbits(model, 8, block_size, True, "default", accuracy_level, None, exclude=[], gather=False)
            if head == "shared" and head_nodes:
                if not share_tied_table(model, made, bits=bits, block_size=hb):  # cannot share: quantize the table
                    model = _nbits(model, bits, hb, True, "default", None, None, exclude=[], gather=True,
                                   matmul=False)
            onnx.save(model, str(tmp / ONNX_NAME))
        except EdgeKDError:
            raise
        except Exception as exc:
            raise EdgeKDError(f"ONNX Runtime int{bits} weight-only quantization failed: "
                              f"{str(exc).strip().splitlines()[0][:300]}") from None
    return Path(out_dir) / ONNX_NAME


def _nbits(model, bits, block_size, symmetric, algo, accuracy_level, calibration, *, exclude, gather, matmul=True):
    """One pass of ORT's MatMulNBitsQuantizer -> the quantized ModelProto. Gathers (the embedding table) always take the
    default round-to-nearest path: the other algorithms quantize MatMuls only."""
    from onnxruntime.quantization import matmul_nbits_quantizer as mq

    ops = tuple(o for o, on in (("MatMul", matmul), ("Gather", gather)) if on)
    axes = (("MatMul", 0), ("Gather", 1))
    if algo != "default" and "Gather" in ops:  # the others take MatMuls only: the table first, round to nearest
        if gather:
            model = _nbits(model, bits, block_size, True, "default", None, None, exclude=exclude, gather=True,
                           matmul=False)
        ops = ("MatMul",)
    if algo == "default":
        cfg = mq.DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric, bits=bits,
                                              accuracy_level=accuracy_level, op_types_to_quantize=ops, quant_axes=axes)
    elif algo == "hqq":
        cfg = mq.HQQWeightOnlyQuantConfig(block_size=block_size, bits=bits, op_types_to_quantize=ops, quant_axes=axes)
    elif algo == "rtn":
        cfg = mq.RTNWeightOnlyQuantConfig(op_types_to_quantize=ops)
    elif algo == "k_quant":
        cfg = mq.KQuantWeightOnlyQuantConfig(op_types_to_quantize=ops)
    elif algo == "gptq":
        if calibration is None:
            raise EdgeKDError("GPTQ weight-only quantization needs calibration inputs")
        cfg = mq.GPTQWeightOnlyQuantConfig(calibration_data_reader=calibration, block_size=128,
                                           op_types_to_quantize=ops)
    else:
        raise EdgeKDError(f"weight-only algorithm {algo!r}: want default, hqq, rtn, k_quant or gptq")
    q = mq.MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=symmetric, algo_config=cfg,
                                accuracy_level=accuracy_level, op_types_to_quantize=ops, quant_axes=axes,
                                nodes_to_exclude=list(exclude))
    if algo == "gptq":
        from edgekd.hf.gptq import ort_gptq_fixed

        # ORT's GPTQ path quantizes every MatMul, nodes_to_exclude or not (only its RTN path marks them "fp32")
        plan, skip = q._generate_q4_node_config, {n: "fp32" for n in exclude}
        q._generate_q4_node_config = lambda: {**plan(), **skip}
        with ort_gptq_fixed():  # and its own GPTQ step spreads no error (edgekd/hf/gptq.py)
            q.process()
    else:
        q.process()
    return getattr(q.model, "model", q.model)  # an ONNXModel, or a ModelProto after the neural-compressor paths


class _Deployable:
    """Fixed-shape forward for TFLite: (input_ids, attention_mask) -> sentence embedding or logits."""

    def __new__(cls, model, kind: str, pooling: str, normalize: bool, type_ids: bool):
        import torch

        from edgekd.hf.forward import pool

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask):
                extra = {"token_type_ids": torch.zeros_like(input_ids)} if type_ids else {}
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
                if kind == "embedding":
                    return pool(out.last_hidden_state, attention_mask, pooling, normalize)
                return out.logits

        return Wrapped().eval()


def export_tflite(student, teacher, path: Path, *, seq_len: int) -> Path:
    """litert-torch conversion at batch 1, sequence `seq_len` (int32 inputs, as on-device runtimes
    feed). Outputs the pooled sentence embedding (embedding kind) or the logits."""
    import torch

    from edgekd.core import atomic_path

    try:
        import litert_torch
    except ImportError as exc:
        raise EdgeKDError(f"TFLite export needs litert-torch: {exc}") from None
    wrapped = _Deployable(student, teacher.kind, teacher.pooling, teacher.normalize,
                          "token_type_ids" in teacher.tokenizer.model_input_names and accepts(student, "token_type_ids"))
    args = (torch.ones(1, seq_len, dtype=torch.int32), torch.ones(1, seq_len, dtype=torch.int32))
    with atomic_path(path) as tmp:
        try:
            litert_torch.convert(wrapped, args).export(str(tmp))
        except Exception as exc:
            raise EdgeKDError(f"litert-torch could not convert the student: {str(exc).strip().splitlines()[0][:300]}") from None
    return Path(path)
