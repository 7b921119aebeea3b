"""Android over adb: benchmark_model command lines, parsing its recorded output, and the whole flow
against an `adb` stand-in (tests/fixtures/profile/fake_adb) that runs the device commands locally."""

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from edgekd.errors import EdgeKDError
from edgekd.profile import benchmark_model as bm
from edgekd.profile import profile
from edgekd.targets import targets_dir

FIX = Path(__file__).parent / "fixtures" / "profile"
RECORDED = FIX / "benchmark_model_xnnpack.txt"
MODEL = FIX / "tiny_int8.tflite"


def test_command_has_threads_delegate_runs_and_profiling():
    argv = bm.command("/d/bm", "/d/m.tflite", threads=4, runs=50, warmup=10, max_seconds=60, delegate="xnnpack")
    assert argv[:2] == ["/d/bm", "--graph=/d/m.tflite"]
    for flag in ("--num_threads=4", "--use_xnnpack=true", "--num_runs=50", "--warmup_runs=10", "--max_secs=60",
                 "--enable_op_profiling=true", "--report_peak_memory_footprint=true"):
        assert flag in argv
    gpu = bm.command("bm", "m", threads=1, runs=5, warmup=1, max_seconds=5, delegate="gpu")
    assert "--use_gpu=true" in gpu and "--use_xnnpack=false" in gpu
    with pytest.raises(ValueError):
        bm.command("bm", "m", threads=1, runs=1, warmup=0, max_seconds=1, delegate="tpu")


def test_parse_recorded_output():
    r = bm.parse(RECORDED.read_text())
    assert r["runs"] == 50
    assert r["mean_ms"] == pytest.approx(0.12344) and r["p50_ms"] == pytest.approx(0.120)
    assert r["min_ms"] == pytest.approx(0.113) and r["max_ms"] == pytest.approx(0.187) and r["p95_ms"] == pytest.approx(0.151)
    assert r["init_ms"] == pytest.approx(6.183) and r["first_run_ms"] == pytest.approx(0.412)
    assert r["peak_rss_mb"] == pytest.approx(7.92578) and r["model_rss_mb"] == pytest.approx(1.69141)
    assert len(r["ops"]) == 6 and r["ops"][1]["name"] == "Delegate/Convolution (NHWC, QC8) IGEMM:1"
    assert r["ops"][1]["avg_ms"] == pytest.approx(0.041)
    types = {t["type"]: t for t in r["op_types"]}
    assert types["Convolution (NHWC, QC8) IGEMM"]["count"] == 2
    assert types["Convolution (NHWC, QC8) IGEMM"]["percent"] == pytest.approx(59.829)


def test_parse_older_output_without_prefix_or_percentiles():
    text = RECORDED.read_text().replace("INFO: ", "")
    text = re.sub(r" p5=\d+ median=\d+ p95=\d+", "", text)
    r = bm.parse(text)
    assert r["mean_ms"] == pytest.approx(0.12344) and r["runs"] == 50 and "p50_ms" not in r
    with pytest.raises(ValueError):
        bm.parse("ERROR: Benchmarking failed.\n")


def install(src: Path, dest: Path) -> Path:
    """Copy a stand-in script with this interpreter as its shebang (a pyenv shim costs ~1 s a call)."""
    body = src.read_text().split("\n", 1)[1]
    dest.write_text(f"#!{sys.executable}\n{body}")
    dest.chmod(0o755)
    return dest


@pytest.fixture
def device(tmp_path, monkeypatch):
    """A PATH whose `adb` is the stand-in, with the fake device's filesystem under tmp_path/root."""
    bindir, root = tmp_path / "bin", tmp_path / "root"
    bindir.mkdir()
    (root / "data" / "local" / "tmp").mkdir(parents=True)
    install(FIX / "fake_adb", bindir / "adb")
    install(FIX / "fake_benchmark_model", tmp_path / "benchmark_model")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("FAKE_BM_OUTPUT", str(RECORDED))
    monkeypatch.setenv("FAKE_BM_LOG", str(tmp_path / "bm.log"))
    return tmp_path


def android_target(tmp_path, **conn):
    text = (targets_dir() / "android.toml").read_text()
    for k, v in conn.items():
        text = re.sub(rf'^{k} = .*$', f'{k} = "{v}"', text, flags=re.M)
    p = tmp_path / "phone.toml"
    p.write_text(text)
    return p


def test_adb_flow_pushes_runs_pinned_and_reports_each_delegate(device):
    target = android_target(device, serial="R5CT00FAKE", benchmark_model=str(device / "benchmark_model"))
    rep = profile(MODEL, target, runs=50, warmup=10)
    by = {r["backend"]: r for r in rep.results}
    assert set(by) == {"adb-xnnpack", "adb-gpu", "adb-nnapi"}
    x = by["adb-xnnpack"]
    assert x["kind"] == "measured" and x["available"] is True
    assert x["p50_ms"] == pytest.approx(0.120) and x["runs"] == 50 and x["threads"] == 4
    assert "android samsung SM-S921B (SM8650) serial R5CT00FAKE" in x["where"] and "xnnpack" in x["where"]
    assert x["op_types"] and x["file_size_bytes"] == MODEL.stat().st_size
    # optional GPU delegate missing on the device: reported, not fatal
    assert by["adb-gpu"]["available"] is False and "GPU delegate" in by["adb-gpu"]["error"]
    assert by["adb-nnapi"]["available"] is True

    # what ran on the "device": taskset to a core mask, the target's threads and the benchmark flags
    runs = [json.loads(ln) for ln in (device / "bm.log").read_text().splitlines()]
    assert len(runs) == 3 and "--num_threads=4" in runs[0] and "--use_xnnpack=true" in runs[0]
    log = [json.loads(ln) for ln in (device / "root" / "adb.log").read_text().splitlines()]
    shells = [a[3] for a in log if a[:3] == ["-s", "R5CT00FAKE", "shell"]]
    bench = next(s for s in shells if "--graph=" in s)
    assert bench.startswith("taskset ") and x["cpu_mask"] and f"taskset {x['cpu_mask']} " in bench
    assert any(a[2] == "push" and a[3].endswith("tiny_int8.tflite") for a in log if len(a) > 3)
    assert shells[-1].startswith("rm -rf /data/local/tmp/edgekd/edgekd-")  # cleaned up
    assert not list((device / "root" / "data" / "local" / "tmp" / "edgekd").iterdir())


def test_benchmark_model_already_on_device(device):
    dest = device / "root" / "data" / "local" / "tmp" / "benchmark_model"
    shutil.copy(device / "benchmark_model", dest)
    rep = profile(MODEL, android_target(device), runs=50)
    assert rep.results[0]["backend"] == "adb-xnnpack" and rep.results[0]["available"]
    assert "/data/local/tmp/benchmark_model" in rep.results[0]["command"][2]


def test_android_serial_env_picks_the_device(device, monkeypatch):
    monkeypatch.setenv("ANDROID_SERIAL", "R5CT00FAKE")
    shutil.copy(device / "benchmark_model", device / "root" / "data" / "local" / "tmp" / "benchmark_model")
    r = profile(MODEL, android_target(device), runs=50).results[0]
    assert r["backend"] == "adb-xnnpack" and "serial R5CT00FAKE" in r["where"]
    log = [json.loads(ln) for ln in (device / "root" / "adb.log").read_text().splitlines()]
    assert all(a[:2] == ["-s", "R5CT00FAKE"] for a in log if a[0] != "devices")


def test_no_benchmark_model_anywhere_says_how_to_fix(device):
    with pytest.raises(EdgeKDError, match="no benchmark_model on the device.*connection.benchmark_model"):
        profile(MODEL, android_target(device), runs=5)


def test_wrong_serial_and_wrong_format(device):
    target = android_target(device, serial="OTHER123")
    rep = profile(MODEL, target, runs=3, warmup=1)  # unreachable device: labelled host measurement
    assert rep.primary["backend"] == "host-fallback" and "OTHER123" in rep.primary["fallback_reason"]
    with pytest.raises(EdgeKDError, match="not a .tflite"):
        profile(FIX / "tiny_fp32.onnx", android_target(device, serial="R5CT00FAKE"), runs=3)
