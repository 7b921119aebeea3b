"""ExecuTorch .pte and Core ML .mlpackage: tiny files built once per module (seconds), checked as users meet them:
parity in ExecuTorch's runtime, the delegation report, structural Core ML validation, targets, gate, bad input."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch")
if importlib.util.find_spec("coremltools") is None:  # not importorskip: importing it here would pull TensorFlow
    pytest.skip("coremltools is not installed", allow_module_level=True)


class _Cumsum(torch.nn.Module):
    """cumsum has no XNNPACK kernel: it must show up as a portable fall-back."""

    def forward(self, x):
        return torch.cumsum(x.flatten(1), dim=1)


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 5)).eval()


@pytest.fixture(scope="module")
def sample():
    from sklearn.datasets import load_digits

    x = load_digits().images[:48].astype(np.float32)[:, None] / 16.0  # real 8x8 digits
    return (x - x.mean()) / x.std()


@pytest.fixture(scope="module")
def files(tmp_path_factory, sample):
    from edgekd.export import export_coreml, export_pte

    d = tmp_path_factory.mktemp("formats")
    reps = {"fp32": export_pte(_tiny(), sample[:16], d / "m_fp32.pte"),
            "int8": export_pte(_tiny(), sample[:16], d / "m_int8.pte", precision="int8", calib=sample[16:48]),
            "fp16": export_coreml(_tiny(), sample[:16], d / "m_fp16.mlpackage"),
            "w8": export_coreml(_tiny(), sample[:16], d / "m_w8.mlpackage", precision="int8")}
    return d, reps


def test_pte_fp32_and_int8_pass_parity_in_executorch_and_run_in_xnnpack(files):
    d, reps = files
    for prec in ("fp32", "int8"):
        rep = reps[prec]
        assert rep.passed and rep.format == "pte" and rep.precision == prec and rep.converter == "executorch-xnnpack"
        assert rep.parity["samples"] == 16 and rep.parity["precision"] == prec
        # the whole tiny CNN is XNNPACK-capable: nothing falls back to portable kernels
        assert rep.delegation["share"] == 1.0 and rep.delegation["portable_ops"] == 0
        assert rep.delegation["delegates"] == {"XnnpackBackend": 1}
        assert any(k.startswith("xnnpack.") for k in rep.ops)
    assert reps["fp32"].parity["rel_err"] < 1e-4  # same fp32 math, reordered sums only


def test_pte_fallback_to_portable_kernels_is_reported(tmp_path, sample):
    from edgekd.export import export_pte

    rep = export_pte(_Cumsum(), sample[:4], tmp_path / "c.pte")
    assert rep.delegation["portable_ops"] >= 1 and rep.delegation["share"] < 1.0
    assert any("cumsum" in k for k in rep.delegation["fallback_ops"])
    assert any("portable kernels" in n for n in rep.notes)


def test_coreml_is_validated_structurally_and_says_numerics_were_not_checked(files):
    from edgekd.inspect import model_info

    d, reps = files
    for key, weights in (("fp16", "fp16"), ("w8", "int8")):
        rep = reps[key]
        assert rep.passed is None and rep.parity["checked"] == "structure"  # never claimed as numerically checked
        assert "not checked on an Apple device" in rep.parity["reason"]
        assert rep.validation["compute_precision"] == "fp16" and rep.validation["weights"] == weights
        assert rep.ops.get("conv") == 1 and rep.ops.get("linear") == 1
        info = model_info(rep.path)
        assert info["format"] == "coreml" and info["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert model_info(reps["w8"].path)["weight_ops"].get("constexpr_affine_dequantize") == 2


def test_inspect_and_gate_read_pte_delegation(files):
    from edgekd.gate.checks import Limits, deterministic_checks
    from edgekd.inspect import model_info

    d, _ = files
    info = model_info(d / "m_int8.pte")
    assert info["format"] == "pte" and info["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert info["delegation"]["share"] == 1.0 and info["size_bytes"] == (d / "m_int8.pte").stat().st_size
    worse = {**info, "delegation": {**info["delegation"], "share": 0.8, "fallback_ops": {"aten.cumsum.out": 1}}}
    checks = {c.name: c.status for c in deterministic_checks(info, worse, Limits())}
    assert checks["delegation.share"] == "fail" and checks["delegation.fallback_ops"] == "fail"
    same = {c.name: c.status for c in deterministic_checks(info, info, Limits())}
    assert same["delegation.share"] == "pass"


def test_targets_profile_pte_host_only_and_coreml_not_measurable(files, sample):
    from edgekd.profile import profile
    from edgekd.targets import load_target

    d, _ = files
    assert load_target("ios").ships[0].format == "coreml"
    assert load_target("android-executorch").runtime == "executorch"
    r = profile(d / "m_int8.pte", "android-executorch", sample=sample[:1], runs=5, warmup=1)
    res = r.results[0]
    assert res["kind"] == "measured" and res["runtime"] == "executorch" and res["p50_ms"] > 0
    assert res["backend"] == "host-fallback" and "NOT the device" in res["where"]
    r = profile(d / "m_fp16.mlpackage", "ios")
    assert r.results == [] and "not measurable here" in r.notes[0]  # never a latency for Core ML


def test_quantize_makes_pte_int8_from_the_model_with_accuracy(tmp_path, sample):
    from edgekd.quantize import quantize

    labels = np.arange(len(sample)) % 5
    rep = quantize(None, tmp_path / "q.pte", torch_model=_tiny(), calib=sample, eval_data=(sample, labels))
    assert rep.format == "pte" and rep.calib_samples == len(sample) and rep.accuracy is not None
    assert (tmp_path / "q.pte").is_file()


@pytest.mark.parametrize("name,data,needle", [
    ("cut.pte", None, "not a readable executorch program"),
    ("foreign.pte", b"\x00" * 64, "not an executorch program"),
    ("empty.mlpackage", "dir", "not a core ml package"),
])
def test_bad_pte_and_mlpackage_are_one_line_errors(files, tmp_path, capsys, name, data, needle):
    from edgekd.cli import main

    d, _ = files
    p = tmp_path / name
    if data is None:
        p.write_bytes((d / "m_fp32.pte").read_bytes()[:200])
    elif data == "dir":
        p.mkdir()
    else:
        p.write_bytes(data)
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(p)])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert exc.value.code not in (0, None) and lines[-1].startswith("error:") and "Traceback" not in err
    assert needle in lines[-1].lower() and name in lines[-1]


def test_export_refuses_a_precision_the_format_cannot_write(tmp_path, sample):
    from edgekd.errors import EdgeKDError
    from edgekd.export import export_pte

    with pytest.raises(EdgeKDError, match="ExecuTorch export writes fp32, int8"):
        export_pte(_tiny(), sample[:2], tmp_path / "x.pte", precision="fp16")
    assert not list(tmp_path.iterdir())  # nothing half-written
