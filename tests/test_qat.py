"""Quantization-aware training (edgekd.quantize.qat) on real digits with a tiny MobileNetV3-style student:
PTQ -> float fallback -> QAT, the real int8 file it writes, its report figures, auto's trigger and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.quantize.qat import check_qat_inputs, finetune, quantize_qat  # noqa: E402

FAST = dict(epochs=1, samples=128, batch_size=32)  # QAT settings: a few seconds on one core


@pytest.fixture(scope="module")
def data():
    from edgekd.data import load_data

    torch.set_num_threads(1)
    return load_data("digits", seed=0)


@pytest.fixture(scope="module")
def student(data):
    """mobilenetv3-xs (depthwise, hard-swish, SE) trained for a few seconds on real digits."""
    from edgekd.models import create_model

    torch.manual_seed(0)
    m = create_model("mobilenetv3-xs", in_channels=1, num_classes=10)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    m.train()
    for _ in range(6):
        for i in range(0, len(x) - 1, 64):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()
    return m.eval()


def _opts(data, **kw):
    return dict(calib=data.calibration(32), eval_data=(data.val.x, data.val.y), eval_split="digits val", **kw)


@pytest.fixture(scope="module")
def tflite_run(student, data, tmp_path_factory):
    """One QAT run into a full-int8 TFLite file, shared by the tests that read it (the slowest step here: two
    litert-torch conversions, PTQ, QAT, PTQ again). The ONNX path runs end to end in test_cli_quantize_qat."""
    out = tmp_path_factory.mktemp("qat") / "q.tflite"
    before = {k: v.clone() for k, v in student.state_dict().items()}
    rep = quantize_qat(student, out, teacher=student, train_x=data.train.x, train_y=data.train.y, qat="on",
                       **FAST, **_opts(data, max_drop=5.0, allow_drop=True))
    return out, rep, before


def test_qat_on_writes_a_real_int8_file_with_its_figures(tflite_run, student, data):
    from edgekd.inspect import count_ops
    from edgekd.runtime import accuracy, load_runner

    out, rep, before = tflite_run
    assert out.is_file()
    ops = count_ops(out)
    assert ops.get("QUANTIZE", 0) >= 1 and any(k in ops for k in ("CONV_2D", "DEPTHWISE_CONV_2D"))
    q = rep.qat
    assert q["ran"] and q["mode"] == "on" and q["seconds"] > 0 and q["steps"] == FAST["samples"] // FAST["batch_size"]
    _check_figures(q, rep)
    if q["shipped"] == "qat":  # the file loads and runs in its own runtime (figures: 3 decimals)
        acc = accuracy(load_runner(out, threads=1), data.val.x, data.val.y)
        assert abs(acc - rep.accuracy) < 1e-2 and rep.accuracy_float == q["reference"]
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in before.items())  # the student is not modified
    json.dumps(rep.to_dict())


def _check_figures(q: dict, rep=None) -> None:
    for k in ("ptq_drop", "fallback_drop", "qat_drop", "qat_all_int8_drop", "qat_float_drop"):
        assert isinstance(q[k], float), k
    assert q["fallback_drop"] <= q["ptq_drop"]  # the fallback search never keeps a worse file
    assert q["shipped"] == ("qat" if q["qat_drop"] <= q["fallback_drop"] else "ptq+fallback")
    if rep is not None:
        assert rep.drop_points == min(q["qat_drop"], q["fallback_drop"])  # the file that loses less ships
    # QAT recovers, or at least does not get much worse: 1 epoch of 128 samples on 360 held-out digits (one is
    # 0.28 points), and ONNX Runtime / XNNPACK int8 kernels round slightly differently across CPUs: 3 points slack
    assert q["qat_drop"] <= q["ptq_drop"] + 3.0


def test_qat_auto_not_run_when_int8_meets_the_budget(student, data, tmp_path):
    out = tmp_path / "q.onnx"
    rep = quantize_qat(student, out, teacher=student, train_x=data.train.x, qat="auto",
                       **FAST, **_opts(data, max_drop=100.0))
    assert out.is_file() and rep.budget_met
    assert rep.qat["ran"] is False and "met the --max-drop 100.0 budget" in rep.qat["why"]
    assert "seconds" not in rep.qat and rep.qat["ptq_drop"] is not None


def test_finetune_leaves_student_and_maps_weights_back(student, data):
    tuned, info = finetune(student, student, data.train.x, None, fmt="tflite", epochs=1, samples=64, batch_size=32)
    assert tuned is not student and not tuned.training
    assert info["loss"].startswith("KD") and "no labels" in info["loss"] and info["steps"] == 2
    changed = [k for k, v in tuned.state_dict().items() if v.dtype.is_floating_point
               and not torch.equal(v, student.state_dict()[k])]
    assert changed  # trained weights and batch-norm statistics came back from the PT2E graph
    x = torch.from_numpy(data.val.x[:8])
    assert torch.isfinite(tuned(x)).all()


def test_finetune_with_frozen_batch_norm_keeps_the_models_statistics(student, data):
    """bn="frozen" (fine-tuning a pretrained model on few images): running means / variances stay the student's,
    weights still train; a bad value is a one-line error."""
    tuned, info = finetune(student, student, data.train.x, None, fmt="onnx", epochs=1, samples=64, batch_size=32,
                           bn="frozen")
    sd, orig = tuned.state_dict(), student.state_dict()
    stats = [k for k in sd if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(sd[k], orig[k]) for k in stats)
    assert any(not torch.equal(sd[k], orig[k]) for k in sd if k.endswith("weight"))
    assert "frozen" in info["batch_norm"]
    with pytest.raises(EdgeKDError, match="batch norm 'eval' is not one of train, frozen"):
        quantize_qat(student, "q.onnx", teacher=student, train_x=data.train.x, qat="on", bn="eval", **_opts(data))


@pytest.mark.parametrize("kw, msg", [
    (dict(qat="sometimes"), "is not one of off, auto, on"),
    (dict(teacher=None), "give --teacher"),
    (dict(train_x=None), "needs real training data"),
    (dict(max_drop=None), "--qat auto runs only when int8 misses"),
    (dict(mode="dynamic"), "static int8"),
    (dict(fmt="pte"), "writes .onnx or .tflite"),
])
def test_bad_qat_inputs_are_one_line_errors(kw, msg):
    args = dict(qat="auto", teacher=object(), train_x=np.zeros((4, 1, 8, 8), np.float32), max_drop=1.0,
                mode="int8", fmt="onnx") | kw
    with pytest.raises(EdgeKDError, match=msg) as e:
        check_qat_inputs(args.pop("qat"), **args)
    assert "\n" not in str(e.value)


def test_qat_refuses_a_float_file(data, tmp_path):
    f = tmp_path / "f.onnx"
    f.write_bytes(b"x")
    with pytest.raises(EdgeKDError, match="fine-tunes the PyTorch model"):
        quantize_qat(str(f), tmp_path / "q.onnx", teacher=object(), train_x=data.train.x, qat="on", **_opts(data))


def test_cli_quantize_qat(student, data, tmp_path, capsys):
    """The ONNX path end to end, from the command line: PTQ, QAT, the QDQ file that ships and its figures."""
    from edgekd.cli import main
    from edgekd.inspect import count_ops
    from edgekd.runtime import accuracy, load_runner

    w = tmp_path / "w.pt"
    torch.save(student.state_dict(), w)
    out = tmp_path / "q.onnx"
    base = ["quantize", "mobilenetv3-xs", "--weights", str(w), "--data", "digits", "-o", str(out), "--qat"]
    with pytest.raises(SystemExit) as e:
        main(base)
    err = capsys.readouterr().err
    assert e.value.code == 2 and "give --teacher" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    with pytest.raises(SystemExit) as e:
        main(base + ["--teacher", "self", "--qat-epochs", "1", "--qat-samples", "128", "--calib-samples", "32",
                     "--qat-bn", "frozen", "--json"])
    printed = capsys.readouterr().out
    assert e.value.code == 0, printed
    rep = json.loads(printed[printed.index("{\n"):])  # converters may print progress lines before the JSON
    q = rep["qat"]
    assert out.is_file() and q["ran"] and q["mode"] == "on" and q["seconds"] > 0  # no --max-drop: QAT always runs
    assert "frozen" in q["batch_norm"]  # --qat-bn reached the fine-tuning
    from edgekd.quantize.onnx_quant import reduce_range_needed

    # ONNX weights are 7-bit only on x86 without VNNI (where the int8 dot product can saturate), else 8-bit
    bound = 64 if reduce_range_needed()[0] else 127
    assert q["steps"] == 128 // 64 and q["scheme"].startswith(f"int8 per-channel symmetric weights [-{bound}, {bound}]")
    _check_figures(q)
    ops = count_ops(out)  # a real QDQ file whichever file shipped
    assert ops.get("QuantizeLinear", 0) > 0 and ops.get("DequantizeLinear", 0) > 0
    held, _ = data.held_out()  # the CLI scores the test split (360 digits, under --eval-samples 1000)
    assert abs(accuracy(load_runner(out, threads=1), held.x, held.y) - rep["accuracy"]) < 1e-2


def test_compress_qat_mode_per_file():
    """compress --qat: auto runs only under a budget; fp16 / .pte / dynamic files are never fine-tuned."""
    from types import SimpleNamespace

    from edgekd.modalities.classifier.stages import _qat_mode

    cfg = lambda qat, max_drop: SimpleNamespace(qat=qat, max_drop=max_drop)  # noqa: E731
    assert _qat_mode(cfg("auto", None), "tflite", "int8") == "off"  # no budget: nothing to miss
    assert _qat_mode(cfg("auto", 1.0), "tflite", "int8") == "auto"
    assert _qat_mode(cfg("on", None), "onnx", "int8") == "on"
    assert _qat_mode(cfg("on", 1.0), "tflite", "fp16") == "off" and _qat_mode(cfg("on", 1.0), "pte", "int8") == "off"
    assert _qat_mode(cfg("off", 1.0), "onnx", "int8") == "off"


def test_compress_rejects_a_bad_qat_value(capsys):
    from edgekd.cli import main

    with pytest.raises(SystemExit) as e:
        main(["compress", "--qat", "sometimes", "--output", "/nonexistent/never-written"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--qat 'sometimes' is not one of off, auto, on" in err
