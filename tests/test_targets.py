"""Target files: the six built-ins load, and bad files fail with one line naming file and field."""

from pathlib import Path

import pytest

from edgekd.errors import EdgeKDError
from edgekd.targets import Target, list_targets, load_target, targets_dir

BUILTINS = {"host", "android", "qualcomm-htp", "raspberry-pi-5", "ethos-u55-128", "ethos-u65-256"}

GOOD = """
name = "my-board"
description = "a test board"
[[ships]]
format = "tflite"
precision = "int8"
[runtime]
name = "litert"
delegates = ["xnnpack"]
threads = 2
[connection]
kind = "ssh"
host = "board.local"
user = "me"
port = 2222
[budgets]
latency_ms = 5
size_bytes = 1000000
"""


def write(tmp_path: Path, text: str, name: str = "t.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_all_builtins_load_and_declare_what_they_ship():
    targets = {t.name: t for t in list_targets()}
    assert BUILTINS <= set(targets)
    for t in targets.values():
        assert t.ships and all(s.format in ("onnx", "tflite", "pte", "coreml") for s in t.ships)
        assert t.threads >= 1 and t.description
    assert targets["android"].connection.kind == "adb" and targets["android"].ships[0].precision == "int8"
    assert "xnnpack" in targets["android"].delegates and "gpu" in targets["android"].optional_delegates
    assert targets["raspberry-pi-5"].connection.kind == "ssh" and targets["raspberry-pi-5"].emulation.qemu_cpu == "cortex-a76"
    assert targets["qualcomm-htp"].npu == {"soc_model": 57, "htp_arch": 75}
    assert targets["ethos-u55-128"].npu["accelerator_config"] == "ethos-u55-128"
    assert targets["ethos-u65-256"].npu["accelerator_config"] == "ethos-u65-256"
    assert targets["ios"].runtime == "coreml" and {s.format for s in targets["ios"].ships} == {"coreml"}
    assert targets["android-executorch"].ships[0].format == "pte" and targets["android-executorch"].arch == "aarch64"
    assert targets["host"].connection.kind == "local"


def test_builtin_names_match_file_names():
    for p in targets_dir().glob("*.toml"):
        assert load_target(p.stem).name == p.stem


def test_user_file_by_path(tmp_path):
    t = load_target(write(tmp_path, GOOD))
    assert isinstance(t, Target) and t.name == "my-board"
    assert t.connection.port == 2222 and t.connection.remote_dir == "/tmp/edgekd"
    assert t.budgets.latency_ms == 5.0 and t.budgets.size_bytes == 1_000_000 and t.budgets.peak_memory_mb is None
    assert t.to_dict()["ships"] == [{"format": "tflite", "precision": "int8", "candidates": []}]


def test_minimal_user_file_gets_sensible_defaults(tmp_path):
    """name + runtime is enough: int8 in the runtime's format, measured on this machine."""
    t = load_target(write(tmp_path, 'name = "my-cpu"\n[runtime]\nname = "litert"\n'))
    assert t.kind == "cpu" and t.connection.kind == "local" and t.runtime == "litert"
    assert t.to_dict()["ships"] == [{"format": "tflite", "precision": "int8", "candidates": []}]
    t = load_target(write(tmp_path, 'name = "my-ort"\n[runtime]\nname = "onnxruntime"\n'))
    assert t.ships[0].format == "onnx"


def test_unknown_name_lists_valid_ones():
    with pytest.raises(EdgeKDError, match=r"unknown target 'pixel'.*android.*raspberry-pi-5"):
        load_target("pixel")


def test_missing_file():
    with pytest.raises(EdgeKDError, match="does not exist"):
        load_target("/nope/board.toml")


@pytest.mark.parametrize("old,new,field", [
    ('threads = 2', 'threads = "two"', "runtime.threads"),
    ('threads = 2', 'threads = 0', "runtime.threads"),
    ('precision = "int8"', 'precision = "int4"', "ships[0].precision"),
    ('kind = "ssh"', 'kind = "telnet"', "connection.kind"),
    ('host = "board.local"', '', "connection.host"),
    ('latency_ms = 5', 'latency_ms = -1', "budgets.latency_ms"),
    ('port = 2222', 'port = true', "connection.port"),
    ('delegates = ["xnnpack"]', 'delegates = ["xnnpack"]\ndelegatez = []', "runtime.delegatez"),
    ('name = "my-board"', 'name = "my board!"', "name"),
])
def test_bad_field_names_file_and_field(tmp_path, old, new, field):
    p = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(EdgeKDError) as ei:
        load_target(p)
    msg = str(ei.value)
    assert str(p) in msg and f"field {field} " in msg and "\n" not in msg


def test_not_toml(tmp_path):
    with pytest.raises(EdgeKDError, match="not valid TOML"):
        load_target(write(tmp_path, "name = [unclosed"))


def test_npu_targets_need_their_compiler_settings(tmp_path):
    text = open(targets_dir() / "qualcomm-htp.toml").read().replace("soc_model = 57", "")
    with pytest.raises(EdgeKDError, match="npu.soc_model is missing"):
        load_target(write(tmp_path, text))


def test_arm_cpu_calibration_is_quoted_not_the_old_guess():
    for name in ("android", "raspberry-pi-5"):
        e = load_target(name).emulation
        assert e.instructions_per_cycle < 2.0 and "XNNPACK README" in e.source and "120.46 M" in e.source
        # MobileNetV2 1.0 fp32: 120.46 M emulated instructions -> a single-thread estimate near the public 55 ms
        assert 25 < 120.46e6 / (e.clock_ghz * 1e6 * e.instructions_per_cycle) < 55


def test_executorch_target_over_ssh_is_refused_with_the_field_named(tmp_path):
    p = write(tmp_path, 'name = "et"\n[runtime]\nname = "executorch"\n[connection]\nkind = "ssh"\nhost = "b"\n')
    with pytest.raises(EdgeKDError, match=r"connection\.kind must be \"local\" for runtime executorch"):
        load_target(p)
    assert load_target(write(tmp_path, 'name = "et"\n[runtime]\nname = "executorch"\n', "ok.toml")).ships[0].format == "pte"
