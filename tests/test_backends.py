"""The target-backend registry: a new backend is one registered class, and a user's target file that
names its runtime is validated, profiled, placed on its NPU and described in reports through it."""

from pathlib import Path

import pytest

from edgekd.backends import Backend, backend_for, backend_of_result, get_backend, register_backend, unregister_backend
from edgekd.errors import EdgeKDError
from edgekd.gate.npu import npu_analysis
from edgekd.pipeline.report import result_summary
from edgekd.profile import make_result, profile
from edgekd.targets import load_target, targets_dir

FIX = Path(__file__).parent / "fixtures" / "profile"
REPO_TARGETS = Path(__file__).resolve().parent.parent / "targets"

TOY_TARGET = """
name = "toy-board"
description = "an NPU that exists only in this test"
kind = "npu"
[runtime]
name = "toy"
[connection]
kind = "offline"
compiler = "toyc"
[npu]
macs_per_cycle = 64
"""


@pytest.fixture
def toy_backend():
    @register_backend("toy-npu", runtime="toy")
    class Toy(Backend):
        default_format = "onnx"

        def validate(self, target, tables):
            tables.npu.positive("macs_per_cycle", int)
            tables.npu.done()

        def profile(self, request):
            size = request.model.stat().st_size
            return [make_result("estimated", f"toy estimate for {request.target.name}", "toy-npu", runs=request.runs,
                                p50_ms=size / request.target.npu["macs_per_cycle"] / 1000, toy_ops=3)]

        def npu_placement(self, path, target):
            return {"share": 1.0, "on_npu": 3, "off_npu": 0, "fallback_ops": {}, "cycles": 42, "tool": "toyc",
                    "kind": "estimated"}

        def where_short(self, result):
            return f"toy model of {result.get('target', 'target')}"

        def figures(self, result):
            return [f"{result['toy_ops']} toy ops"]

    yield get_backend("toy-npu")
    unregister_backend("toy-npu")


def test_a_registered_backend_profiles_a_user_target_file(toy_backend, tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(TOY_TARGET)
    target = load_target(path)
    assert backend_for(target) is toy_backend
    assert target.ships[0].format == "onnx"  # the backend's default when the file lists no [[ships]]

    rep = profile(FIX / "tiny_fp32.onnx", path, runs=3)
    (r,) = rep.results
    assert r["backend"] == "toy-npu" and r["kind"] == "estimated" and r["runs"] == 3
    assert r["p50_ms"] == pytest.approx((FIX / "tiny_fp32.onnx").stat().st_size / 64 / 1000)
    r["target"] = target.name  # the pipeline adds it before reporting
    assert backend_of_result(r) is toy_backend
    assert result_summary(r) == f"estimated, toy model of toy-board: p50 {r['p50_ms']:.3f} ms, 3 toy ops"
    assert npu_analysis(FIX / "tiny_fp32.onnx", target)["share"] == 1.0


def test_the_backend_validates_its_own_sub_table(toy_backend, tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(TOY_TARGET.replace("macs_per_cycle = 64", "macs_per_cycle = 0"))
    with pytest.raises(EdgeKDError, match=r"toy.toml: field npu.macs_per_cycle must be > 0"):
        load_target(path)
    path.write_text(TOY_TARGET.replace("macs_per_cycle = 64", "macs_per_cycle = 64\nmacs = 1"))
    with pytest.raises(EdgeKDError, match=r"field npu.macs is not a known field"):
        load_target(path)


def test_an_unregistered_runtime_is_refused(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(TOY_TARGET)
    with pytest.raises(EdgeKDError, match=r"field runtime.name must be one of onnxruntime, litert, qnn, vela, executorch, coreml, got 'toy'"):
        load_target(path)


def test_a_backend_cannot_take_a_runtime_or_connection_already_served():
    with pytest.raises(ValueError, match="clashes with registered backend 'vela'"):
        register_backend("vela-2", runtime="vela")(Backend)
    with pytest.raises(ValueError, match="clashes with registered backend 'ssh'"):
        register_backend("ssh-2", connections=("ssh",))(Backend)


def test_builtin_targets_are_served_by_their_backends():
    served = {name: backend_for(load_target(name)).name for name in
              ("host", "android", "raspberry-pi-5", "qualcomm-htp", "ethos-u55-128", "ethos-u65-256")}
    assert served == {"host": "host", "android": "adb", "raspberry-pi-5": "ssh", "qualcomm-htp": "qnn-htp",
                      "ethos-u55-128": "vela", "ethos-u65-256": "vela"}
    assert npu_analysis(FIX / "tiny_fp32.onnx", load_target("host"))["error"].endswith("no NPU placement analysis")


@pytest.mark.skipif(not REPO_TARGETS.is_dir(), reason="not a source checkout")
def test_the_loader_reads_the_repository_targets():
    """edgekd/_targets is a symlink to targets/: one copy, which the wheel ships as files."""
    builtin = {p.name: p.read_bytes() for p in targets_dir().glob("*.toml")}
    repo = {p.name: p.read_bytes() for p in REPO_TARGETS.glob("*.toml")}
    assert builtin == repo and len(repo) >= 6
