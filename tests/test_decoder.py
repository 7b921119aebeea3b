"""Decoder LMs (issue 20): tiny random GPT-2 and Llama teachers through derive, token-level KD, KV-cache ONNX,
int8/int4 weight-only ONNX, scoring, profiling, and bad inputs (a directory without a tokenizer, a corrupt GGUF)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")

from decoder_helpers import make_tiny_decoder  # noqa: E402
from test_hf_helpers import random_texts  # noqa: E402

from edgekd.errors import EdgeKDError  # noqa: E402


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def teacher(request, tmp_path_factory):
    import torch

    from edgekd.hf.teacher import load_hf_teacher

    torch.set_num_threads(1)
    d = make_tiny_decoder(tmp_path_factory.mktemp(request.param) / "t", request.param)
    return load_hf_teacher(f"hf:{d}", max_length=32)


@pytest.fixture(scope="module")
def exported(teacher, tmp_path_factory):
    """The teacher-derived student saved, exported with KV cache, and quantized to int8 and int4."""
    from edgekd.hf.export import export_optimum, quantize_onnx_weight_only, save_student_dir
    from edgekd.hf.student import derive_hf_student

    root = tmp_path_factory.mktemp("exp")
    student, _ = derive_hf_student(teacher, layers=2)
    save_student_dir(student, teacher, root / "student")
    onnx = export_optimum(root / "student", root / "onnx", teacher.export_task)
    q = {b: quantize_onnx_weight_only(root / "onnx", root / f"onnx-int{b}", bits=b) for b in (8, 4)}
    return {"root": root, "student": student, "onnx": onnx, "q": q}


def test_kind_and_pad_token(teacher):
    assert teacher.kind == "causal-lm" and teacher.export_task == "text-generation-with-past"
    assert teacher.tokenizer.pad_token == teacher.tokenizer.eos_token  # GPT-2 style tokenizer had none


def test_derive_keeps_first_last_layers_tied_embeddings(teacher):
    import torch

    from edgekd.hf.student import derive_hf_student

    student, info = derive_hf_student(teacher, layers=2)
    assert info["layers"] == [0, 3] and info["init"] == "teacher" and info["params"] < info["teacher_params"]
    assert student.get_output_embeddings().weight.data_ptr() == student.get_input_embeddings().weight.data_ptr()
    s, t = student.state_dict(), teacher.model.state_dict()
    last_s = next(k for k in s if ".1." in k and k.endswith("weight"))
    assert torch.equal(s[last_s], t[last_s.replace(".1.", ".3.", 1)])  # student layer 1 is teacher layer 3


def test_layers_by_block_influence(teacher):
    """`influence:k` keeps the first, the last and the layers that turn the hidden state most, measured on text;
    a bad spec or no text is a one-line error."""
    from edgekd.hf.layer_influence import block_influence, most_influential
    from edgekd.hf.student import derive_hf_student, parse_layers

    assert most_influential([0.9, 0.1, 0.5, 0.2, 0.8], 3) == [0, 2, 4]  # ends kept, then the highest
    assert most_influential([0.9, 0.3, 0.3, 0.9], 3) == [0, 1, 3]  # a tie goes to the earlier layer
    assert parse_layers("influence:2", 4, [0.9, 0.1, 0.5, 0.2]) == [0, 3]
    texts = random_texts(8, seed=3)
    infl = block_influence(teacher, texts, max_length=32)
    assert len(infl) == teacher.num_layers and all(-1e-9 <= x <= 2 for x in infl)
    student, info = derive_hf_student(teacher, layers="influence:3", texts=texts, max_length=32)
    assert info["layers"] == most_influential(infl, 3) and info["layers"][0] == 0 and info["layers"][-1] == 3
    assert info["block_influence"] == infl and "influence" in info["layer_choice"]
    for bad, msg in (("influence:x", "want influence or influence:<count>"), ("influence:9", "want 1..4")):
        with pytest.raises(EdgeKDError, match=msg):
            derive_hf_student(teacher, layers=bad, texts=texts)
    with pytest.raises(EdgeKDError, match="needs texts"):
        derive_hf_student(teacher, layers="influence")


def test_narrower_mlp(teacher):
    from edgekd.hf.student import derive_hf_student

    student, info = derive_hf_student(teacher, layers=2, intermediate_size=16)
    assert info["intermediate_size"] == 16 and "mlp_neurons" in info
    with pytest.raises(EdgeKDError, match="intermediate-size"):
        derive_hf_student(teacher, layers=2, intermediate_size=10 ** 6)


@pytest.mark.parametrize("with_text", [False, True])
def test_narrower_mlp_keeps_the_teachers_important_neurons(teacher, with_text):
    """With text, neurons planted with large weights (so large activations and output norms) survive, with all of
    their weights; the leading slice (what derive did before, and still does without text) keeps neurons 0..15."""
    import copy

    import torch

    from edgekd.hf.mlp_neurons import mlp_axes
    from edgekd.hf.student import _layer_prefix, _mlp_width, derive_hf_student

    t = copy.copy(teacher)
    t.model = copy.deepcopy(teacher.model)
    full, planted = _mlp_width(t.model.config), [3, 20, 41, 60]
    prefix = _layer_prefix(t.model, t.num_layers)
    state = t.model.state_dict()
    with torch.no_grad():
        for key, w in state.items():  # layer 0's MLP tensors: the planted neurons' rows / columns x 10
            if key.startswith(f"{prefix}.0.") and w.dim() == 2 and list(w.shape).count(full) == 1:
                w.index_copy_(w.shape.index(full), torch.tensor(planted),
                              10 * w.index_select(w.shape.index(full), torch.tensor(planted)))
    student, info = derive_hf_student(t, layers=[0, t.num_layers - 1], intermediate_size=16,
                                      texts=random_texts(8, seed=5) if with_text else None, max_length=32)
    assert ("mean |activation|" in info["mlp_neurons"]) == with_text
    s_state = student.state_dict()
    layer0 = {k[len(f"{prefix}.0."):]: v for k, v in state.items() if k.startswith(f"{prefix}.0.")}
    s0 = {k[len(f"{prefix}.0."):]: v for k, v in s_state.items() if k.startswith(f"{prefix}.0.")}
    axes = mlp_axes(layer0, s0, full, 16)
    assert len([k for k in axes if layer0[k].dim() == 2]) >= 2  # up (and gate) and down
    for key, axis in axes.items():
        kept = s0[key]
        if not with_text:
            assert torch.equal(kept, layer0[key].narrow(axis, 0, 16)[tuple(slice(0, d) for d in kept.shape)])
            continue
        for p in planted:  # each planted neuron's weights appear, whole, among the student's neurons
            col = layer0[key].select(axis, p)
            assert any(torch.equal(kept.select(axis, j), col) for j in range(16)), (key, p)


def _kl(student, teacher, batches):
    from edgekd.hf.lm_eval import score_lms, torch_logits

    return score_lms({"s": torch_logits(student)}, torch_logits(teacher.model), batches)["s"]


def test_token_kd_moves_student_to_teacher(teacher):
    import copy

    import torch

    from edgekd.hf.lm_eval import lm_batches
    from edgekd.hf.student import derive_hf_student
    from edgekd.hf.train import TrainConfig, distill_hf

    texts = random_texts(200)
    val = lm_batches(teacher.tokenizer, random_texts(40, seed=3), max_length=32)
    student, _ = derive_hf_student(teacher, layers=2)
    with torch.no_grad():  # start away from the teacher (a random teacher is nearly uniform, so is its copy)
        for p in student.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ce = copy.deepcopy(student)
    before = _kl(student, teacher, val)
    kw = dict(epochs=3, batch_size=8, lr=3e-3, max_length=32, pack=True, temperature=2.0)
    hist = distill_hf(teacher, student, texts, cfg=TrainConfig(**kw, weights={"soft": 1.0, "hard": 0.0}))
    distill_hf(teacher, ce, texts, cfg=TrainConfig(**kw, weights={"soft": 0.0, "hard": 1.0}))
    after, after_ce = _kl(student, teacher, val), _kl(ce, teacher, val)
    assert hist["steps"] > 0 and hist["train_tokens"] > 0
    # KD pulls the distributions together, and closer than next-token CE on the same steps
    assert after["kl_to_teacher"] < 0.5 * before["kl_to_teacher"] and after["kl_to_teacher"] < after_ce["kl_to_teacher"]


def test_ce_only_never_runs_the_teacher(teacher, monkeypatch):
    from edgekd.hf.student import derive_hf_student
    from edgekd.hf.train import TrainConfig, distill_hf

    student, _ = derive_hf_student(teacher, layers=2)
    calls = []
    monkeypatch.setattr(teacher.model, "forward", lambda *a, **k: calls.append(1))
    cfg = TrainConfig(epochs=1, batch_size=8, max_length=32, pack=True, weights={"soft": 0.0}, max_steps=2)
    hist = distill_hf(teacher, student, random_texts(100), cfg=cfg)
    assert hist["steps"] == 2 and not calls


def test_padding_is_masked_out_of_both_losses():
    import torch

    from edgekd.distill import TokenKDLoss
    from edgekd.hf.train import next_token_ce

    s, t = torch.randn(2, 6, 11), torch.randn(2, 6, 11)
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    s2, t2 = s.clone(), t.clone()
    s2[1, 3:] += 100 * torch.randn(3, 11)  # padded positions: anything
    ids = torch.randint(0, 11, (2, 6))
    labels = ids.masked_fill(mask == 0, -100)
    kd = TokenKDLoss(2.0)
    assert torch.allclose(kd(s, t, mask), kd(s2, t2, mask))
    assert torch.allclose(next_token_ce(s, labels), next_token_ce(s2, labels))


def test_kv_cache_onnx_parity_and_ortmodel_generates(teacher, exported):
    import torch
    from optimum.onnxruntime import ORTModelForCausalLM

    from edgekd.hf.decoder_runtime import OrtDecoder
    from edgekd.hf.lm_eval import lm_batches, score_lms, torch_logits

    student, onnx = exported["student"], exported["onnx"]
    batches = lm_batches(teacher.tokenizer, random_texts(30, seed=5), max_length=32)
    res = score_lms({"student": torch_logits(student), "onnx": OrtDecoder(onnx, threads=1).logits},
                    torch_logits(teacher.model), batches, reference="student")
    assert res["onnx"]["parity"]["max_abs_logit_diff"] < 1e-4  # fp32 export: rounding only
    assert res["onnx"]["parity"]["top1_match"] == 1.0
    assert res["onnx"]["perplexity"] == pytest.approx(res["student"]["perplexity"], rel=1e-4)
    prompt = batches[0]["input_ids"][:1, :8]
    ref = student.generate(torch.from_numpy(prompt), attention_mask=torch.ones(1, 8, dtype=torch.long), max_new_tokens=6,
                           do_sample=False, pad_token_id=teacher.tokenizer.pad_token_id)[0, 8:].tolist()
    om = ORTModelForCausalLM.from_pretrained(onnx.parent)
    got = om.generate(torch.from_numpy(prompt), attention_mask=torch.ones(1, 8, dtype=torch.long), max_new_tokens=6,
                      do_sample=False, pad_token_id=teacher.tokenizer.pad_token_id)[0, 8:].tolist()
    assert got == ref == OrtDecoder(onnx, threads=1).greedy(prompt, 6)  # KV-cache decoding, same greedy tokens


def test_weight_only_int8_int4(exported):
    import onnx

    fp32 = exported["onnx"].stat().st_size
    for bits, path in exported["q"].items():
        ops = {n.op_type for n in onnx.load(path).graph.node}
        assert "MatMulNBits" in ops and path.stat().st_size < fp32  # GPT-2's Gemm layers included
        assert (path.parent / "config.json").is_file() and (path.parent / "tokenizer.json").is_file()
    assert "GatherBlockQuantized" in {n.op_type for n in onnx.load(exported["q"][4]).graph.node}


def test_profile_is_measured_and_labelled(exported):
    from edgekd.modalities.decoder.latency import measure_decoders

    prompt = np.arange(3, 11, dtype=np.int64)[None]
    lat = measure_decoders({"fp32": exported["onnx"], "int4": exported["q"][4]}, prompt, new_tokens=4, threads=1, runs=3)
    for v in lat.values():
        assert v["kind"] == "measured" and "not a phone" in v["where"] and v["decode_tokens_per_s"] > 0
        assert v["prefill_ms_p50"] > 0 and v["prompt_len"] == 8 and v["p50_ms"] > 0
        assert v.get("peak_rss_mb", 1) > 0


def test_directory_without_tokenizer_is_one_line(tmp_path):
    from edgekd.hf.teacher import load_hf_teacher

    d = make_tiny_decoder(tmp_path / "t", "gpt2", tokenizer=False)
    with pytest.raises(EdgeKDError, match="cannot load a tokenizer") as e:
        load_hf_teacher(f"hf:{d}")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content", [b"", b"not a gguf file at all", b"GGUF\x03\x00\x00\x00" + b"\x00" * 7])
def test_corrupt_gguf_is_one_line(tmp_path, content):
    from edgekd.hf.teacher import load_hf_teacher

    p = tmp_path / "model.gguf"
    p.write_bytes(content)
    with pytest.raises(EdgeKDError, match="GGUF") as e:
        load_hf_teacher(f"gguf:{p}")
    assert "\n" not in str(e.value)


def test_gguf_teacher_saves_no_copy_of_the_gguf_file(tmp_path):
    """transformers records the GGUF file as the tokenizer's vocab_file; Llama's fast tokenizer used to copy it as
    tokenizer.model into every saved folder (student/, teacher-hf/, then onnx*/ and genai/): 98 MB for SmolLM2."""
    pytest.importorskip("gguf")
    import transformers as tf

    from decoder_helpers import make_tiny_gguf
    from edgekd.hf.export import save_student_dir
    from edgekd.hf.student import derive_hf_student
    from edgekd.hf.teacher import load_hf_teacher

    g = make_tiny_gguf(tmp_path / "g" / "tiny.gguf")
    t = load_hf_teacher(f"gguf:{g}", max_length=32)
    assert t.kind == "causal-lm" and t.gguf_file == "tiny.gguf" and t.num_layers == 2
    # the file's EOS (id 2), not its BOS: transformers' converter swaps them, texts are packed and padded with EOS
    assert (t.tokenizer.eos_token_id, t.tokenizer.bos_token_id, t.tokenizer.pad_token_id) == (2, 1, 2)
    student, _ = derive_hf_student(t, layers=1)
    for name, model in (("student", student), ("teacher-hf", t.model)):
        out = save_student_dir(model, t, tmp_path / name)
        files = sorted(p.name for p in out.iterdir())
        assert "tokenizer.model" not in files and "tokenizer.json" in files, files
        for p in out.iterdir():
            with open(p, "rb") as f:
                assert f.read(4) != b"GGUF", p
        text = " the man said that the water was hot"
        assert tf.AutoTokenizer.from_pretrained(out)(text)["input_ids"] == t.tokenizer(text)["input_ids"]


def test_gate_on_decode_tokens_per_s(teacher, exported, tmp_path):
    """`edgekd gate` on two KV-cache decoder files: the timed call is one decode step (prefilled context), so the
    A/B is on decode tokens/s; a decoder with 4x the layers and 2x the width is a confirmed regression."""
    import shutil

    from edgekd.gate import Limits, TimingSettings, gate
    from edgekd.hf.export import export_optimum

    if teacher.model.config.model_type != "gpt2":
        pytest.skip("one architecture is enough for the gate")
    fast = TimingSettings(warmup=5, min_pairs=30, max_pairs=300, budget_s=0.6)
    base = exported["onnx"]
    same = tmp_path / "same" / base.name
    shutil.copytree(base.parent, same.parent)
    r = gate(same, base, "host", timing=fast)
    ab = r.check("latency.ab")
    assert ab.status in ("pass", "warn") and "tokens/s" in ab.message, ab.message  # warn: a wide CI on a busy host
    tps = ab.details["decode_tokens_per_s"]
    assert tps["baseline"] > 0 and tps["candidate"] > 0
    lat = r.candidate["latency"]
    assert lat["decode_tokens_per_s"] > 0 and "decoded token" in lat["metric"]
    # a stored gate JSON as the baseline: absolute tokens/s from two runs (the weaker comparison), labelled so
    stored = tmp_path / "base.json"
    stored.write_text(r.to_json())
    r2 = gate(same, stored, "host", timing=fast)
    assert "tokens/s" in r2.check("latency.absolute").message

    big = make_tiny_decoder(tmp_path / "big", "gpt2", layers=8, hidden=64)
    slow = export_optimum(big, tmp_path / "big-onnx", teacher.export_task)
    r3 = gate(slow, base, "host", timing=fast, limits=Limits(max_size_growth=100.0, max_macs_growth=100.0))
    ab = r3.check("latency.ab")
    assert ab.status == "fail" and "confirmed on re-measure" in ab.message, ab.message
    assert ab.details["decode_tokens_per_s"]["candidate"] < ab.details["decode_tokens_per_s"]["baseline"]
    assert not r3.passed


def _tied_model(tmp_path, rng):
    """Gather(table, ids) -> one body MatMul -> MatMul(h, Transpose(table)): a tied LM head as optimum exports it.
    Returns (table, body weight)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = rng.standard_normal((256, 64)).astype(np.float32)
    body = (rng.standard_normal((64, 64)) / 8).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["h"], name="embed"),
         helper.make_node("MatMul", ["h", "w"], ["h1"], name="/model/layers.0/mlp/MatMul"),
         helper.make_node("Transpose", ["table"], ["tT"], perm=[1, 0]),
         helper.make_node("MatMul", ["h1", "tT"], ["logits"], name="lm_head")], "tied",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5, 256])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(body, "w")])
    (tmp_path / "src").mkdir()
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "src" / "model.onnx")
    return table, body


@pytest.mark.parametrize("head,symmetric,extra", [("shared", True, {}), ("shared", False, {}), ("int8", True, {}),
                                                  ("separate", True, {}), ("shared", True, {"head_block": 16}),
                                                  ("shared", True, {"int8_nodes": ("layers.0/",)})])
def test_int4_tied_head_and_table(tmp_path, head, symmetric, extra):
    """MatMul(x, Transpose(table)) + Gather(table): folded, the head is MatMulNBits and no fp32 table is left. "int8"
    (the default): the head has its own int8 copy; "shared": the Gather reads the head's int4 weight, so the file holds
    one packed table; "separate": two int4 copies. head_block: the head and table in their own block size; int8_nodes:
    the MatMuls so named stay at 8 bits. The logits stay within a few % of the range of the fp32 ones."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edgekd.hf.export import quantize_onnx_weight_only

    rng = np.random.default_rng(0)
    table, body = _tied_model(tmp_path, rng)
    kw = ({} if symmetric else {"symmetric": False}) | ({} if head == "int8" else {"head": head})  # int8: the default
    out = quantize_onnx_weight_only(tmp_path / "src", tmp_path / "q4", bits=4, **kw, **extra)
    m = onnx.load(out)
    ops = [n.op_type for n in m.graph.node]
    assert "Transpose" not in ops and "GatherBlockQuantized" in ops and "Gather" not in ops
    attrs = {n.name: {a.name: helper.get_attribute_value(a) for a in n.attribute} for n in m.graph.node}
    mm = next(n for n in m.graph.node if n.op_type == "MatMulNBits" and n.name.startswith("lm_head"))
    assert attrs[mm.name]["bits"] == (8 if head == "int8" else 4)
    assert attrs[mm.name]["block_size"] == extra.get("head_block", 32)
    body_mm = next(n for n in m.graph.node if n.op_type == "MatMulNBits" and "layers.0" in n.name)
    assert attrs[body_mm.name]["bits"] == (8 if "int8_nodes" in extra else 4) and attrs[body_mm.name]["block_size"] == 32
    assert not [i for i in m.graph.initializer if i.data_type == TensorProto.FLOAT and list(i.dims) == [256, 64]]
    packed = [i for i in m.graph.initializer if i.data_type in (TensorProto.UINT8, TensorProto.UINT4, TensorProto.INT4)
              and np.prod(i.dims) >= 256 * 64 // 2]  # table-sized (the body weight, zero points, scales: smaller)
    assert len(packed) == (1 if head == "shared" else 2)
    gbq = next(n for n in m.graph.node if n.op_type == "GatherBlockQuantized")
    assert attrs[gbq.name]["block_size"] == extra.get("head_block", 32)
    if head == "shared":  # the Gather's data is a Reshape of the head's weight
        assert any(n.op_type == "Reshape" and n.input[0] == mm.input[1] and n.output[0] == gbq.input[0] for n in m.graph.node)
    ids = rng.integers(0, 256, (1, 5)).astype(np.int64)
    ref = table[ids] @ body @ table.T
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]
    rel = np.sqrt(((got - ref) ** 2).mean() / (ref ** 2).mean())
    assert rel < 0.25, rel  # up to three int4 matrices of random values, ~9 % RMS error each (wrong packing: >100 %)


def test_weight_only_bad_head(tmp_path):
    from edgekd.hf.export import quantize_onnx_weight_only

    _tied_model(tmp_path, np.random.default_rng(0))
    with pytest.raises(EdgeKDError, match="head 'fp16'"):
        quantize_onnx_weight_only(tmp_path / "src", tmp_path / "q4", bits=4, head="fp16")
