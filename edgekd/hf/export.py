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


def fold_weight_transposes(model) -> int:
    """A tied LM head can export as MatMul(x, Transpose(embedding table)): the quantizer takes only MatMuls whose
    weight is a constant, so the head stayed fp32 and kept the whole fp32 table alive beside its int4 copy (SmolLM2's
    10-layer student: int4 file 0.60x the fp32 one). Each Transpose of a 2-D initializer becomes the transposed
    initializer (the same values). Returns the names of the initializers made."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    keep, made = [], []
    for node in model.graph.node:
        src = inits.get(node.input[0]) if node.op_type == "Transpose" and node.input else None
        perm = [helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"]
        if src is None or len(src.dims) != 2 or (perm and list(perm[0]) != [1, 0]) or node.output[0] in outputs:
            keep.append(node)
            continue
        model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(src).T.copy(), node.output[0]))
        made.append(node.output[0])
    del model.graph.node[:]
    model.graph.node.extend(keep)
    used = {i for node in keep for i in node.input} | outputs
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)
    return made


def quantize_onnx_weight_only(onnx_dir: Path, out_dir: Path, *, bits: int, block_size: int = 32) -> Path:
    """ONNX Runtime's MatMulNBits quantizer: MatMul weights to `bits` (4 or 8) in blocks of `block_size`,
    symmetric, activations stay float (the on-device LLM scheme). At 4 bits the embedding table is quantized
    too (GatherBlockQuantized; ORT takes only 4-bit Gathers), and a tied LM head exported as MatMul(x, Transpose(table))
    gets its own weight, quantized at 8 bits (int4 RTN on the head cost SmolLM2's student 0.59 -> 0.39 top-1
    agreement with the fp32 file; at 8 bits the file is still far smaller than with an fp32 head)."""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line per node

    ops = ("MatMul", "Gather") if bits == 4 else ("MatMul",)
    axes = (("MatMul", 0), ("Gather", 1))
    src = Path(onnx_dir)
    with atomic_dir(out_dir) as tmp:
        _copy_side_files(src, tmp)
        try:
            cfg = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=bits,
                                               op_types_to_quantize=ops, quant_axes=axes)
            model = onnx.load(src / ONNX_NAME)
            gemm_to_matmul(model)
            heads = []
            if bits == 4:  # the table is quantized too (Gather): the head's own copy replaces an fp32 table
                made = set(fold_weight_transposes(model))
                heads = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in made]
            q = MatMulNBitsQuantizer(model, bits=bits, block_size=block_size, is_symmetric=True, algo_config=cfg,
                                     op_types_to_quantize=ops, quant_axes=axes, nodes_to_exclude=heads)
            q.process()
            if heads:
                cfg8 = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, bits=8,
                                                    op_types_to_quantize=("MatMul",), quant_axes=axes)
                q = MatMulNBitsQuantizer(q.model.model, bits=8, block_size=block_size, is_symmetric=True,
                                         algo_config=cfg8, op_types_to_quantize=("MatMul",), quant_axes=axes)
                q.process()
            q.model.save_model_to_file(str(tmp / ONNX_NAME), use_external_data_format=False)
        except Exception as exc:
            raise EdgeKDError(f"ONNX Runtime int{bits} weight-only quantization failed: "
                              f"{str(exc).strip().splitlines()[0][:300]}") from None
    return Path(out_dir) / ONNX_NAME


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
