"""edgekd.emulate: aarch64 kernels under qemu-user with instruction counts (issue 9).

The tests that really emulate need `make arm-env` (CI runs it first); they skip, saying so, without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekd.emulate import arm_env_available, emulate_profile, instruction_count
from edgekd.emulate.cpus import cpuinfo_text
from edgekd.emulate.qemu import read_marks
from edgekd.errors import EdgeKDError

try:  # helpers live beside the tests; works with or without tests/__init__.py
    from tolerance_helpers import near_ties
except ImportError:
    from tests.tolerance_helpers import near_ties

ARM_VS_HOST_MAX_ABS = 1e-4  # fp32 on two CPUs' kernels: reordered sums and FMA, nothing more

needs_arm = pytest.mark.skipif(not arm_env_available(),
                               reason="ARM emulation environment absent: run `make arm-env` to enable these tests")


# --- no emulator needed ---------------------------------------------------------------------

def test_cpuinfo_matches_the_core():
    a76 = cpuinfo_text("cortex-a76", 2)
    assert a76.count("processor\t:") == 2
    assert "CPU part\t: 0xd0b" in a76 and "asimddp" in a76  # dot-product NEON, as on phones
    a53 = cpuinfo_text("cortex-a53", 1)
    assert "CPU part\t: 0xd03" in a53 and "asimddp" not in a53
    with pytest.raises(EdgeKDError, match="qemu_cpu 'max'"):
        cpuinfo_text("max", 1)  # has SME: XNNPACK would take kernels no phone runs


def test_cpu_view_has_arm_cpuinfo_and_no_loops(tmp_path):
    from edgekd.emulate.env import ArmEnv

    root = tmp_path / "root"
    for d in ("usr/lib", "etc", "tmp", "root", "proc"):
        (root / d).mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")  # merged /usr, as in bookworm
    view = ArmEnv(tmp_path, {}).cpu_root("cortex-a53")
    assert "0xd03" in (view / "proc" / "cpuinfo").read_text()
    assert (view / "usr").resolve() == (root / "usr").resolve()
    assert str((view / "lib").readlink()) == "usr/lib"
    # /tmp and /root must stay the host's: linking them back made ORT's path canonicalisation loop
    assert not (view / "tmp").exists() and not (view / "root").exists()
    assert ArmEnv(tmp_path, {}).cpu_root("cortex-a53") == view  # reused, not rebuilt


def test_read_marks_pairs_and_missing(tmp_path):
    f = tmp_path / "marks.txt"
    f.write_text("mark 0 100\nmark 1 350\nmark 2 400\nmark 3 650\ntotal 900\n")
    assert read_marks(f, 2) == [250, 250]
    with pytest.raises(EdgeKDError, match="ended before"):
        read_marks(f, 3)


def _real_tflite(tmp_path):
    import shutil

    return Path(shutil.copy(Path(__file__).parent / "fixtures" / "profile" / "tiny_fp32.tflite", tmp_path / "m.tflite"))


def test_missing_environment_says_how_to_enable(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKD_ARM_HOME", str(tmp_path / "nowhere"))
    model = _real_tflite(tmp_path)  # a real file: edgekd checks the file before the environment
    with pytest.raises(EdgeKDError, match="make arm-env"):
        emulate_profile(model, "android")
    with pytest.raises(EdgeKDError, match="make arm-env"):
        instruction_count(model, "raspberry-pi-5")


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(EdgeKDError, match="does not exist"):
        emulate_profile(tmp_path / "absent.tflite", "android")
    bad = tmp_path / "m.pt"
    bad.write_bytes(b"x")
    with pytest.raises(EdgeKDError, match="not '.pt'"):
        instruction_count(bad, "android")
    ok = _real_tflite(tmp_path)
    with pytest.raises(EdgeKDError, match="no \\[emulation\\] table"):
        emulate_profile(ok, "host")
    with pytest.raises(EdgeKDError, match="runs >= 1"):
        instruction_count(ok, "android", runs=0)


def test_cli_reports_missing_environment(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.emulate import emulate_cmd

    monkeypatch.setenv("EDGEKD_ARM_HOME", str(tmp_path / "nowhere"))
    model = _real_tflite(tmp_path)
    app = typer.Typer()
    app.command()(emulate_cmd)
    res = CliRunner().invoke(app, [str(model), "--target", "android"])
    assert isinstance(res.exception, EdgeKDError) and "make arm-env" in str(res.exception)


# --- under emulation --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory) -> Path:
    """A 2-conv CNN on 8x8 digits, converted with litert-torch (fp32 TFLite, NCHW input)."""
    import torch
    import litert_torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10),
    ).eval()
    path = tmp_path_factory.mktemp("emu") / "tiny.tflite"
    litert_torch.convert(m, (torch.randn(1, 1, 8, 8),)).export(str(path))
    return path


def _digits6() -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:6, None].astype(np.float32) / 16.0 - 0.5) / 0.5  # real digit images, NCHW


@pytest.fixture(scope="module")
def profiled(tiny_tflite):
    return emulate_profile(tiny_tflite, "android", sample=_digits6(), runs=3, warmup=1)


@needs_arm
@pytest.mark.slow
def test_tiny_model_on_cortex_a76_matches_host(profiled, tiny_tflite):
    assert len(profiled) == 1
    r = profiled[0]
    assert r["kind"] == "estimated" and r["qemu_cpu"] == "cortex-a76" and r["threads"] == 1
    assert "aarch64" in r["runtime"] and "litert" in r["runtime"]
    num = r["numerics"]
    assert num["samples"] == 6 and num["inputs"].startswith("real")
    # XNNPACK's NEON kernels under qemu vs its x86 kernels here: fp32 outputs agree to ARM_VS_HOST_MAX_ABS, not
    # bitwise, so only a sample whose two top host logits are within 2 x that may change its top-1 class
    assert num["max_abs_error"] < ARM_VS_HOST_MAX_ABS
    from edgekd.runtime import load_runner

    host = load_runner(tiny_tflite, threads=1).predict(_digits6())
    assert num["top1_agreement"] >= 1.0 - float(near_ties(host, ARM_VS_HOST_MAX_ABS).mean())
    # a tiny CNN is tens of thousands of instructions plus the runtime's fixed cost per invoke
    assert 10_000 < r["emulated_instructions"] < 5_000_000
    assert r["p50_ms"] == pytest.approx(r["emulated_instructions"] / r["instructions_per_ms"], rel=0.01)
    assert r["instructions_spread"] <= 0.01


@needs_arm
@pytest.mark.slow
def test_instruction_count_repeats_across_runs(tiny_tflite, profiled):
    # a second emulator process, other inputs (random), another cortex-a76 target: the same count
    b = instruction_count(tiny_tflite, "raspberry-pi-5", runs=3, warmup=1)
    a = profiled[0]
    assert b["kind"] == "emulated instructions" and b["qemu_cpu"] == "cortex-a76"
    assert abs(a["emulated_instructions"] - b["emulated_instructions"]) <= 1e-3 * a["emulated_instructions"]
    assert b["instructions_spread"] <= 1e-3
