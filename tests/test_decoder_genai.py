"""The onnxruntime-genai model folder of a decoder student (issue 20): built by onnxruntime-genai's own model builder
from a tiny random Llama student, generation through og.Generator against the PyTorch student's greedy tokens,
and a one-line note (not a crash) for an architecture or head size the builder cannot take."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai not installed (edgekd[decoder])")

from decoder_helpers import make_tiny_decoder  # noqa: E402
from test_hf_helpers import random_texts  # noqa: E402

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.modalities.decoder import genai  # noqa: E402

NEW = 12  # greedy tokens compared per prompt


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 2-of-4-layer student of a tiny Llama (head size 16: CPU GroupQueryAttention needs a multiple of 16),
    its weights jittered so greedy decoding does not repeat one token, saved and built as fp32 and int4 folders."""
    import torch

    from edgekd.hf.export import save_student_dir
    from edgekd.hf.student import derive_hf_student
    from edgekd.hf.teacher import load_hf_teacher

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("genai")
    teacher = load_hf_teacher(f"hf:{make_tiny_decoder(root / 't', 'llama', hidden=64)}", max_length=32)
    student, _ = derive_hf_student(teacher, layers=2)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    save_student_dir(student, teacher, root / "student")
    dirs = {p: genai.build_genai(root / "student", root / f"genai-{p}", p) for p in ("fp32", "int4")}
    return {"root": root, "student": student.eval(), "teacher": teacher, "dirs": dirs}


def _prompts(teacher, n=3, length=8):
    from edgekd.hf.train import pack_tokens

    return [b for b in pack_tokens(teacher.tokenizer, random_texts(40, seed=7), length) if len(b) == length][:n]


def _torch_greedy(student, prompt):
    import torch

    x = torch.tensor([prompt])
    return student.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=NEW, do_sample=False, pad_token_id=0)[0, len(prompt):].tolist()


def test_folder_is_the_builders(built):
    import onnx

    for p, d in built["dirs"].items():
        cfg = json.loads((d / "genai_config.json").read_text())
        assert cfg["model"]["type"] == "llama" and cfg["model"]["decoder"]["num_hidden_layers"] == 2
        assert (d / "model.onnx").is_file() and (d / "tokenizer.json").is_file()
        assert not list(d.parent.glob("*.partial"))
    ops = {n.op_type for n in onnx.load(built["dirs"]["int4"] / "model.onnx").graph.node}
    assert "MatMulNBits" in ops and "GroupQueryAttention" in ops
    size = {p: sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) for p, d in built["dirs"].items()}
    assert size["int4"] < size["fp32"]


def test_fp32_generates_the_students_greedy_tokens(built):
    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits

    dec = genai.GenaiDecoder(built["dirs"]["fp32"], threads=1)
    prompts = _prompts(built["teacher"])
    assert len(prompts) == 3
    for p in prompts:
        ref = _torch_greedy(built["student"], p)
        assert len(set(ref)) > 1  # the jitter makes the comparison mean something
        got = dec.greedy(np.asarray([p]), NEW)
        assert genai.first_divergence(ref, got) is None, (ref, got)
    batches = lm_batches(built["teacher"].tokenizer, random_texts(20, seed=5), max_length=32)
    res = score_lms({"student": torch_logits(built["student"]), "genai": dec.logits}, torch_logits(built["teacher"].model),
                    batches, reference="student")
    assert res["genai"]["parity"]["max_abs_logit_diff"] < 1e-3  # fp32, fused ops (SkipLayerNorm, GQA): rounding only
    assert res["genai"]["parity"]["top1_match"] == 1.0


def test_int4_generates(built):
    dec = genai.GenaiDecoder(built["dirs"]["int4"], threads=1)
    for p in _prompts(built["teacher"]):
        got = dec.greedy(p, NEW)
        assert 0 < len(got) <= NEW and all(0 <= t < built["student"].config.vocab_size for t in got)


@pytest.mark.parametrize("arch,hidden,why", [("gpt2", 64, "has no GPT2LMHeadModel"), ("llama", 32, "multiple of 16")])
def test_unsupported_is_one_line(tmp_path, arch, hidden, why):
    d = make_tiny_decoder(tmp_path / "t", arch, hidden=hidden)
    note = genai.blocker(d)
    assert note and why in note and "\n" not in note
    with pytest.raises(EdgeKDError, match=why):
        genai.build_genai(d, tmp_path / "g")
    assert not (tmp_path / "g").exists()


@pytest.mark.slow
def test_compress_lists_the_genai_folder(tmp_path):
    """compress with a Llama teacher: genai/ sits beside the optimum files in the one report, scored and timed."""
    from edgekd.pipeline.compress import compress_hf

    teacher = make_tiny_decoder(tmp_path / "teacher", "llama", hidden=64)
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(random_texts(96)))
    r = compress_hf(f"hf:{teacher}", data=data, target="host", output=str(tmp_path / "out"), runs=3, threads=1,
                    eval_samples=8, tflite=False, compare_teacher=False, prompt_len=8, new_tokens=8, continuations=1,
                    max_length=32, log=lambda s: None)
    arts = {a["name"]: a for a in r["artifacts"]}
    g = arts["student-genai"]
    assert g["format"] == "onnx-genai" and g["path"] == "genai" and g["precision"] == "int4-weight-only"
    assert (tmp_path / "out" / "genai" / "genai_config.json").is_file() and g["size_bytes"] > 0
    assert g["extra"]["bits"] == 4 and g["extra"]["builder"].startswith("onnxruntime-genai")
    assert g["latency"]["kind"] == "measured" and g["latency"]["decode_tokens_per_s"] > 0
    assert g["extra"]["perplexity"] > 1 and "top1_match" in g["extra"]["parity_vs_student"]
    assert len(r["greedy"]["first_divergence"]["student-genai"]) == len(r["greedy"]["prompts"]) >= 1
    assert r["greedy"]["same_tokens"]["student-genai"] is not None
    assert "student-genai" in r["size_ratio_vs_student_onnx"] and g["path"] not in r["shipped"]
    report = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert report["stages"]["decoder-export-genai"]["status"] == "done"


def test_builder_failure_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    class Broken:
        @staticmethod
        def parse_extra_options(*a, **k):
            print("builder chatter")
            raise ValueError("unsupported rope type\nsecond line")

    d = make_tiny_decoder(tmp_path / "t", "llama", hidden=64)
    monkeypatch.setattr(genai, "_builder", lambda: Broken)
    with pytest.raises(EdgeKDError, match="model builder failed.*unsupported rope type") as e:
        genai.build_genai(d, tmp_path / "g", "int4")
    assert "\n" not in str(e.value) and "builder chatter" in str(e.value)
    assert not list(tmp_path.glob("g*"))
