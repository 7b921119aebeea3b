"""Quantization on real digits: ONNX QDQ / dynamic, TFLite int8 / fp16, and the accuracy budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.quantize import QuantReport, quantize  # noqa: E402

try:  # helpers live beside the tests; works with or without tests/__init__.py
    from tolerance_helpers import FP16_UNIT_ROUNDOFF, assert_top1_agrees_except_near_ties
except ImportError:
    from tests.tolerance_helpers import FP16_UNIT_ROUNDOFF, assert_top1_agrees_except_near_ties


@pytest.fixture(scope="module")
def data():
    from edgekd.data import load_data

    torch.set_num_threads(1)
    return load_data("digits", seed=0)


@pytest.fixture(scope="module")
def trained(data):
    """A small CNN trained for a few seconds on real digits (~90 % held-out accuracy)."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    for _ in range(8):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def float_files(trained, data, tmp_path_factory):
    from edgekd.export import export_onnx, export_tflite

    d = tmp_path_factory.mktemp("float")
    export_onnx(trained, data.test.x[:16], d / "f.onnx")
    export_tflite(trained, data.test.x[:16], d / "f.tflite", converters=("litert-torch",))
    return d / "f.onnx", d / "f.tflite"


@pytest.fixture(scope="module")
def outlier_onnx(trained, data, tmp_path_factory):
    """The same function with one channel scaled x1000 between two convs: per-tensor int8 activations
    lose every other channel, a known int8 failure that keeping layers in float repairs."""
    import copy

    from edgekd.export import export_onnx

    m = copy.deepcopy(trained)
    with torch.no_grad():
        m[0].weight[0] *= 1000
        m[0].bias[0] *= 1000
        m[2].weight[:, 0] /= 1000
    path = tmp_path_factory.mktemp("outlier") / "f.onnx"
    export_onnx(m, data.test.x[:16], path)
    return path


def _held(data):
    return data.val.x, data.val.y


def test_onnx_static_int8_qdq_keeps_accuracy(float_files, data, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize(float_files[0], out, mode="int8", calib=data.calibration(64), eval_data=_held(data), max_drop=3.0)
    assert isinstance(rep, QuantReport) and out.is_file()
    assert rep.ops.get("QuantizeLinear", 0) > 0 and rep.ops.get("DequantizeLinear", 0) > 0
    assert rep.precision == "int8" and rep.calib_samples == 64 and rep.method == "minmax"
    assert rep.accuracy_float > 80 and rep.budget_met and rep.drop_points <= 3.0
    assert rep.kept_float == [] and rep.parity["top1_agreement"] >= 0.9
    json.dumps(rep.to_dict())  # JSON-able for report.json


def test_tflite_int8_float_io_and_int8_io(float_files, data, tmp_path):
    from edgekd.inspect import model_info

    calib = data.calibration(32)
    a = quantize(float_files[1], tmp_path / "q.tflite", calib=calib, eval_data=_held(data))
    b = quantize(float_files[1], tmp_path / "qio.tflite", calib=calib, eval_data=_held(data), int8_io=True)
    ia, ib = model_info(tmp_path / "q.tflite"), model_info(tmp_path / "qio.tflite")
    assert ia["inputs"][0]["dtype"] == "float32" and ib["inputs"][0]["dtype"] == "int8"
    assert ib["outputs"][0]["dtype"] == "int8" and a.ops.get("QUANTIZE") == 1
    assert abs(a.accuracy - a.accuracy_float) < 5 and abs(b.accuracy - b.accuracy_float) < 5
    # bias correction found and rewrote the buffers of all 3 weight layers (2 convs, the linear layer)
    assert "bias correction: 3 layer(s)" in " ".join(a.notes)


# fp16 weights against the fp32 file: each weight is rounded to fp16, a relative change of at most
# FP16_UNIT_ROUNDOFF (2**-11 = 4.9e-4). To first order the errors of the 3 weight layers add (3u) and sums with
# cancelling terms amplify them a little; 8u (3.9e-3) of the largest logit leaves room for that. On this project's
# CPU the digits model measures 0.57u, so the bound has ~14x headroom and does not depend on the CPU's kernels.
FP16_REL_TOL = 8 * FP16_UNIT_ROUNDOFF


def test_tflite_fp16_and_onnx_dynamic(float_files, data, tmp_path):
    from edgekd.runtime import load_runner

    f = quantize(float_files[1], tmp_path / "h.tflite", mode="fp16", eval_data=_held(data))
    assert f.precision == "fp16" and f.ops.get("DEQUANTIZE", 0) >= 2
    assert f.parity["cosine"] > 0.999
    # Not "loses 0 points": a prediction whose two top logits are closer than the fp16 rounding of the weights
    # can flip, and which way depends on the CPU's fp32 kernels (one of 144 digits flipped on an AVX-512 EPYC).
    x, _ = _held(data)
    ref = load_runner(float_files[1], threads=1).predict(x)  # the same runner and threads as the report's accuracy
    got = load_runner(tmp_path / "h.tflite", threads=1).predict(x)
    bound = FP16_REL_TOL * float(np.abs(ref).max())
    assert float(np.abs(got - ref).max()) <= bound
    flips = assert_top1_agrees_except_near_ties(ref, got, bound)
    # accuracy only moves on flipped samples; 0.002: the three figures are each rounded to 3 decimals
    assert abs(f.drop_points) <= 100 * flips / len(x) + 0.002
    assert sum(n.startswith("fp16 compute: ") for n in f.notes) == 1  # fp16 or fp32 arithmetic on this CPU
    d = quantize(float_files[0], tmp_path / "d.onnx", mode="dynamic", eval_data=_held(data), calib=data.calibration(8))
    assert d.precision == "dynamic-int8" and d.ops.get("DynamicQuantizeLinear", 0) > 0
    assert abs(d.drop_points) < 3
    r = quantize(float_files[1], tmp_path / "dr.tflite", mode="dynamic", eval_data=_held(data))
    assert r.precision == "dynamic-int8" and r.size_bytes < 0.5 * r.float_size_bytes and abs(r.drop_points) < 3
    assert r.parity["cosine"] > 0.99


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_onnx_calibration_methods(float_files, data, tmp_path, method):
    # 40 samples: not a multiple of the calibration batch (ORT's histograms refused a short last batch)
    rep = quantize(float_files[0], tmp_path / "q.onnx", calib=data.calibration(40), method=method, eval_data=_held(data))
    assert rep.method == method and rep.accuracy > rep.accuracy_float - 5


def test_budget_keeps_sensitive_layers_in_float(outlier_onnx, data, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize(outlier_onnx, out, calib=data.calibration(64), eval_data=_held(data), max_drop=2.0)
    first = rep.search[0]["accuracy"]
    assert rep.accuracy_float - first > 20  # plain int8 really breaks on this model
    assert rep.budget_met and rep.drop_points <= 2.0 and rep.precision == "mixed"
    assert rep.kept_float and all(k.startswith("node_conv2d") for k in rep.kept_float)
    assert rep.sensitivity[0]["loss_db"] > 10  # the broken layer tops the ranking
    lat = rep.latency
    assert lat["shipped"]["kind"] == "measured" and lat["shipped"]["runs"] > 0 and lat["shipped_vs_int8_all"] > 0
    assert out.is_file()


def test_budget_unreachable_fails_unless_allow_drop(outlier_onnx, data, tmp_path):
    out = tmp_path / "q.onnx"
    # dynamic int8 quantizes activations per tensor at run time: no layer choice repairs it here
    with pytest.raises(EdgeKDError, match="over the --max-drop 1.0 budget"):
        quantize(outlier_onnx, out, mode="dynamic", eval_data=_held(data), max_drop=1.0)
    assert not out.exists()
    rep = quantize(outlier_onnx, out, mode="dynamic", eval_data=_held(data), max_drop=1.0, allow_drop=True)
    assert out.is_file() and rep.budget_met is False


@pytest.mark.parametrize("kwargs, msg", [
    ({"out": "q.bin"}, r"\.onnx, \.tflite, \.pte or \.mlpackage"),
    ({"mode": "fp16"}, "not available for .onnx"),
    ({"method": "magic"}, "unknown calibration method"),
    ({"calib": None}, "needs calibration samples"),
    ({"calib": np.full((4, 1, 8, 8), np.nan, np.float32)}, "finite"),
    ({"max_drop": 1.0}, "needs held-out data"),
    ({"int8_io": True}, "TFLite int8 files only"),
    ({"src": "missing.onnx"}, "does not exist"),
    ({"out": "q.tflite"}, "cannot quantize f.onnx into .tflite"),
])
def test_bad_input_is_one_line_error(float_files, data, tmp_path, kwargs, msg):
    kwargs = dict(kwargs)
    out = tmp_path / kwargs.pop("out", "q.onnx")
    src = tmp_path / kwargs.pop("src") if "src" in kwargs else float_files[0]
    args = {"calib": data.calibration(8), **kwargs}
    with pytest.raises(EdgeKDError, match=msg):
        quantize(src, out, **args)
    assert not out.exists()


def test_cli_quantize_json(float_files, tmp_path):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.quantize import quantize_cmd

    app = typer.Typer()
    app.command()(quantize_cmd)
    out = tmp_path / "q.onnx"
    res = CliRunner().invoke(app, [str(float_files[0]), "--output", str(out), "--data", "digits",
                                   "--calib-samples", "32", "--eval-samples", "100", "--max-drop", "5", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output[res.output.index("{"):])
    assert rep["budget_met"] and rep["calib_samples"] == 32 and out.is_file()
    bad = CliRunner().invoke(app, [str(float_files[0]), "--output", str(tmp_path / "x.onnx"), "--data", "digits",
                                   "--mode", "fp16"])
    assert bad.exit_code != 0 and isinstance(bad.exception, EdgeKDError)


@pytest.mark.slow
def test_tflite_budget_keeps_sensitive_layers_in_float(trained, data, tmp_path):
    """The same repair on a litert-torch file: ai-edge-quantizer leaves the ranked op scopes in float."""
    import copy

    from edgekd.export import export_tflite

    m = copy.deepcopy(trained)
    with torch.no_grad():
        m[0].weight[0] *= 1000
        m[0].bias[0] *= 1000
        m[2].weight[:, 0] /= 1000
    export_tflite(m, data.test.x[:16], tmp_path / "f.tflite", converters=("litert-torch",))
    rep = quantize(tmp_path / "f.tflite", tmp_path / "q.tflite", calib=data.calibration(64), eval_data=_held(data),
                   max_drop=2.0)
    assert rep.accuracy_float - rep.search[0]["accuracy"] > 20 and rep.budget_met and rep.precision == "mixed"
    # the scaled channel is conv0's output and conv2's input: with global min-max calibration either op can rank
    # first (its int8 tensor is the one whose range the channel blows up)
    assert rep.kept_float and any(k in rep.sensitivity[0]["name"] for k in ("Conv2d_0", "Conv2d_2"))
    assert rep.latency["shipped"]["kind"] == "measured"


class _LogitsAndFeatures(nn.Module):
    """Returns (logits, pooled features): the features are a model output *and* the head's input."""

    def __init__(self, body):
        super().__init__()
        self.body, self.head = body[:-1], body[-1]

    def forward(self, x):
        z = self.body(x)
        return self.head(z), z


def test_tflite_int8_of_a_model_that_returns_its_features(trained, data, tmp_path):
    from edgekd.export import export_tflite
    from edgekd.export.execute import run_file

    model = _LogitsAndFeatures(trained).eval()
    export_tflite(model, data.test.x[:16], tmp_path / "f.tflite", converters=("litert-torch",))
    rep = quantize(tmp_path / "f.tflite", tmp_path / "q.tflite", mode="int8", calib=data.calibration(64),
                   eval_data=(data.val.x, data.val.y))
    assert any("also a model output stay float" in n for n in rep.notes), rep.notes
    logits, feats = run_file(tmp_path / "q.tflite", [data.test.x[:4]])  # loads and runs, both outputs float
    assert logits.shape == (4, 10) and feats.shape == (4, 32) and feats.dtype == np.float32
    assert rep.accuracy >= rep.accuracy_float - 3.0


def _with_reduced_precision_metadata(src, dst, value: bytes):
    """A copy of a real .tflite with a `reduced_precision_support` metadata entry (what TF's converter writes
    for _experimental_supported_accumulation_type)."""
    from ai_edge_litert import schema_py_generated as s
    import flatbuffers

    m = s.ModelT.InitFromObj(s.Model.GetRootAs(src.read_bytes(), 0))
    buf = s.BufferT()
    buf.data = list(value)
    m.buffers.append(buf)
    md = s.MetadataT()
    md.name, md.buffer = "reduced_precision_support", len(m.buffers) - 1
    m.metadata = [*(m.metadata or []), md]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    dst.write_bytes(bytes(b.Output()))
    return dst


def test_fp16_compute_note_follows_cpu_flags_and_file_metadata(tmp_path, monkeypatch):
    """The fp16 note says what XNNPACK does: fp16 arithmetic only on ARM/RISC-V CPUs that have it, and only for
    files whose metadata allows fp16 accumulation; everywhere else fp16 weights are dequantized to fp32."""
    from pathlib import Path

    from edgekd.quantize import fp16_compute as fc

    tiny = Path(__file__).parent / "fixtures" / "profile" / "tiny_fp32.tflite"
    plain = tiny  # no reduced_precision_support metadata, like ai-edge-quantizer's fp16 files
    allowed = _with_reduced_precision_metadata(tiny, tmp_path / "acc16.tflite", b"fp16accfp16")
    acc32 = _with_reduced_precision_metadata(tiny, tmp_path / "acc32.tflite", b"fp16accfp32")
    assert fc.reduced_precision_metadata(plain) is None and fc.reduced_precision_metadata(allowed) == "fp16accfp16"

    def note(machine, flags, path):
        monkeypatch.setattr(fc, "cpu_flags", lambda: (machine, set(flags)))
        return fc.fp16_compute_note(path)

    n = note("x86_64", {"avx2", "f16c", "avx512f"}, allowed)  # F16C converts, it does not compute
    assert n.startswith("fp16 compute: no native fp16 arithmetic on this CPU (x86_64)")
    assert "dequantizes the fp16 weights to fp32 and computes in fp32" in n and "different fp32 kernels" in n
    n = note("x86_64", {"avx512f", "avx512_fp16"}, allowed)  # Sapphire Rapids: XNNPACK still computes fp32
    assert "has native fp16 arithmetic (avx512_fp16)" in n and "only on ARM and RISC-V" in n
    assert "computed in fp32" in n and "may compute in fp16" not in n
    n = note("aarch64", {"fp", "asimd", "fphp", "asimdhp"}, allowed)
    assert "has native fp16 arithmetic (asimdhp)" in n and "XNNPACK may compute in fp16" in n
    assert "measured as it runs here" in n
    for path in (plain, acc32):  # fp16 accumulation not allowed by the file
        n = note("aarch64", {"fp", "asimd", "asimdhp"}, path)
        assert "has native fp16 arithmetic" in n and "no reduced_precision_support metadata" in n
        assert "computes in fp32" in n
    n = note("aarch64", {"fp", "asimd"}, allowed)  # Cortex-A53/A72: no ARMv8.2 FP16
    assert n.startswith("fp16 compute: no native fp16 arithmetic on this CPU (aarch64)")


def test_cpu_flags_from_cpuinfo_text():
    from edgekd.quantize.fp16_compute import flags_from_cpuinfo, native_fp16_flag

    x86 = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu sse2 avx2 f16c avx512f avx512_fp16\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes fphp asimdhp asimddp\nCPU part\t: 0xd0b\n"
    riscv = "processor\t: 0\nisa\t\t: rv64imafdcv_zicsr_zifencei_zfh_zvfh\n"
    assert native_fp16_flag("x86_64", flags_from_cpuinfo(x86)) == "avx512_fp16"
    assert native_fp16_flag("aarch64", flags_from_cpuinfo(arm)) == "asimdhp"
    assert native_fp16_flag("riscv64", flags_from_cpuinfo(riscv)) == "zvfh"
    assert native_fp16_flag("x86_64", flags_from_cpuinfo(x86.replace(" avx512_fp16", ""))) is None
    assert native_fp16_flag("aarch64", flags_from_cpuinfo("Features\t: fp asimd crc32\n")) is None


@pytest.mark.slow
@pytest.mark.skipif(not __import__("edgekd.emulate", fromlist=["x"]).arm_env_available(),
                    reason="ARM emulation environment absent: run `make arm-env` to enable this test")
def test_fp16_file_computes_in_fp16_on_arm_only_when_its_metadata_allows(float_files, data, tmp_path):
    """What the fp16 note says, run by LiteRT's aarch64 XNNPACK on an emulated Cortex-A76 (ARMv8.2 FP16 arithmetic):
    ai-edge-quantizer's fp16 file (no reduced_precision_support metadata) computes in fp32 there as on this host;
    the same file with metadata allowing fp16 accumulation computes in fp16."""
    from edgekd.emulate import emulate_profile

    quantize(float_files[1], tmp_path / "h.tflite", mode="fp16")
    _with_reduced_precision_metadata(tmp_path / "h.tflite", tmp_path / "h16.tflite", b"fp16accfp16")
    x = data.val.x[:8]
    (plain,) = emulate_profile(tmp_path / "h.tflite", "android", sample=x, runs=1, warmup=0)
    (acc16,) = emulate_profile(tmp_path / "h16.tflite", "android", sample=x, runs=1, warmup=0)
    # fp32 on both CPUs: NEON vs x86 kernels differ by reordered sums only (1.4e-6 on logits up to ~17 here)
    assert plain["numerics"]["max_abs_error"] < 1e-4
    # fp16 arithmetic: every activation rounded to fp16 (~1e-2 here), 8 lanes per NEON instruction instead of 4
    assert acc16["numerics"]["max_abs_error"] > 10 * max(plain["numerics"]["max_abs_error"], 1e-6)
    assert acc16["emulated_instructions"] < plain["emulated_instructions"]


def test_reduce_range_only_for_x86_without_vnni():
    """7-bit ONNX weights cost 15 points of top-1 agreement on EfficientNet-Lite0 (real_weights.json); only
    ORT's non-VNNI x86 kernels (saturating VPMADDUBSW) need them."""
    from edgekd.quantize.onnx_quant import reduce_range_needed

    assert reduce_range_needed("x86_64", {"avx2", "fma"})[0] is True
    assert reduce_range_needed("x86_64", {"avx2", "avx512f", "avx512_vnni"})[0] is False
    assert reduce_range_needed("x86_64", {"avx2", "avx_vnni"})[0] is False
    assert reduce_range_needed("aarch64", {"asimd", "asimddp"})[0] is False


@pytest.mark.parametrize("reduce_range,qmax", [(False, 127), (True, 64)])
def test_onnx_int8_weights_use_the_full_int8_range_unless_reduce_range(float_files, data, tmp_path, reduce_range,
                                                                       qmax):
    """Per-channel symmetric weights: every output channel's largest weight is +-127 (8 bits), or within +-64
    with reduce_range; the choice is named in the report."""
    import onnx
    from onnx import numpy_helper

    out = tmp_path / "q.onnx"
    rep = quantize(float_files[0], out, mode="int8", calib=data.calibration(16), reduce_range=reduce_range)
    m = onnx.load(str(out))
    q = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    weights = [q[n.input[0]] for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in q]
    assert weights and max(int(np.abs(w).max()) for w in weights) == qmax
    assert any(n.startswith("ONNX int8 weights: " + ("7" if reduce_range else "8") + "-bit") for n in rep.notes)


def test_bias_correction_removes_the_mean_shift_of_rounded_weights(tmp_path):
    """On one input constant over space (no padding) each layer's output is W x + b with x = E[x], so after bias
    correction the graph with int8-grid weights gives the float outputs, where rounding alone shifts them."""
    import onnx
    import onnxruntime as ort

    from edgekd.export import export_onnx
    from edgekd.quantize.onnx_quant import correct_biases

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 6, 1, bias=False),
                      nn.Flatten(), nn.Linear(6 * 4 * 4, 5)).eval()
    with torch.no_grad():
        m[2].weight.mul_(torch.linspace(0.01, 3.0, 8).view(8, 1, 1, 1))  # depthwise channels of mixed scale
    x = np.tile((np.random.default_rng(0).normal(size=(1, 3, 1, 1)) + 2.0).astype(np.float32), (4, 1, 6, 6))
    src, fixed, rounded = tmp_path / "f.onnx", tmp_path / "bc.onnx", tmp_path / "r.onnx"
    export_onnx(m, x[:2], src)
    assert correct_biases(src, fixed, x) == 4  # 2 convs with bias, 1 given one, the Linear
    g = onnx.load(str(fixed))  # the same rounded weights with the original biases: rounding alone
    orig = {t.name: t for t in onnx.load(str(src)).graph.initializer}
    for t in g.graph.initializer:
        if t.name in orig and len(t.dims) == 1:
            t.CopyFrom(orig[t.name])
    for n in g.graph.node:
        while len(n.input) > 2 and n.input[2].endswith("_corrected_bias"):
            n.input.pop()
    onnx.save(g, str(rounded))
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {  # noqa: E731
        ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).get_inputs()[0].name: x})[0]
    ref, corrected, plain = run(src), run(fixed), run(rounded)
    err_c, err_p = np.abs(corrected - ref).mean(), np.abs(plain - ref).mean()
    assert err_c < 0.05 * err_p, (err_c, err_p)  # float32 round-off only, vs int8 rounding's shift


def test_bias_correction_leaves_fused_layers_kept_float_alone(float_files, data, tmp_path):
    """A layer the fallback keeps float is named 'Conv+Relu' (one layer to ORT): its weights must stay float,
    not be moved onto the int8 grid (which kept the per-tensor rounding loss in every "float" conv)."""
    import onnx
    from onnx import numpy_helper

    from edgekd.quantize.onnx_quant import correct_biases, layers

    src, dst = float_files[0], tmp_path / "bc.onnx"
    fused = [layer for layer in layers(src) if layer["op"] == "Conv+Relu"]
    assert len(fused) == 2 and "+" in fused[0]["name"]
    assert correct_biases(src, dst, data.calibration(16), per_channel=False, exclude=[fused[0]["name"]]) == 2

    def conv_weights(path):
        g = onnx.load(str(path)).graph
        init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        return [init[n.input[1]] for n in g.node if n.op_type == "Conv"]

    before, after = conv_weights(src), conv_weights(dst)
    assert np.array_equal(before[0], after[0])  # kept float: untouched
    assert not np.array_equal(before[1], after[1])  # quantized: on the per-tensor int8 grid
    assert len(np.unique(np.round(after[1] / (np.abs(after[1]).max() / 127), 3))) <= 255


def test_tflite_bias_correction_leaves_zero_biases_alone_and_writes_a_loadable_file(trained, data, tmp_path):
    """All-zero biases (untrained batch norm folded in) are byte patterns that can match the flatbuffer's own
    structure: editing them once corrupted the file. They are left as they are; the file loads and works."""
    import copy

    from edgekd.export import export_tflite
    from edgekd.runtime import load_runner

    m = copy.deepcopy(trained)
    with torch.no_grad():
        for layer in (m[0], m[2], m[6]):
            layer.bias.zero_()
    export_tflite(m, data.test.x[:16], tmp_path / "f.tflite", converters=("litert-torch",))
    rep = quantize(tmp_path / "f.tflite", tmp_path / "q.tflite", calib=data.calibration(32), eval_data=_held(data))
    assert rep.precision == "int8" and load_runner(tmp_path / "q.tflite").predict(data.val.x[:4]).shape == (4, 10)
    assert "bias correction: 0 layer(s)" in " ".join(rep.notes) or "bias correction not applied" in " ".join(rep.notes)
