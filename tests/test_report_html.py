"""The run's report as people see it: PNG figures beside report.md, a self-contained report.html, and that
page rendered in headless Chromium (Debian's `chromium`) with no console errors and every image decoded."""

import json
import re
import shutil
import subprocess

import pytest

from edgekd.core import Artifact, RunDir
from edgekd.pipeline.figures import pareto
from edgekd.pipeline.report import write_reports

pytest.importorskip("matplotlib", reason="the figures need matplotlib (edgekd[report])")


def _lat(kind, ms, **extra):
    return {"kind": kind, "p50_ms": ms, "p90_ms": ms * 1.1, "runtime": "onnxruntime", "threads": 1, "runs": 10,
            "where": "host x86_64", "target": "host", **extra}


@pytest.fixture
def run_dir(tmp_path):
    run = RunDir(tmp_path / "run")
    ops = [{"type": "QLinearConv", "count": 3, "avg_ms": 0.02, "percent": 60.0},
           {"type": "QGemm", "count": 1, "avg_ms": 0.01, "percent": 30.0}]
    arts = [
        Artifact("teacher", "tnet.py:build", "pytorch", "fp32", accuracy=91.0),
        Artifact("teacher onnx fp32", "teacher_fp32.onnx", "onnx", "fp32", 91.0, 80_000, latency=_lat("measured", 0.09)),
        Artifact("student onnx fp32", "student_fp32.onnx", "onnx", "fp32", 89.5, 27_000, latency=_lat("measured", 0.02)),
        Artifact("student onnx int8", "student_int8.onnx", "onnx", "int8", 89.4, 14_000,
                 latency=_lat("measured", 0.03, op_types=ops, op_profile="onnxruntime profiler, 3 runs")),
        Artifact("student tflite int8", "student_int8.tflite", "tflite", "int8", 89.6, 18_000,
                 latency=_lat("measured", 0.012, op_profile="not available: no op profiler"),
                 extra={"shipped": True, "other_latencies": [
                     _lat("estimated", 0.026, emulated_instructions=94_742),
                     _lat("estimated", 0.059, layers=[{"op": "CONV_2D", "target": "NPU", "cycles": 20_000},
                                                      {"op": "FULLY_CONNECTED", "target": "NPU", "cycles": 9_000}]),
                     _lat("simulated", 11.0, op_cycles=[{"name": "conv_0", "cycles": 5000.0}])]}),
    ]
    curve = [{"epoch": e, "train_loss": 1.0 / (e + 1), "parts": {"kd": 0.6 / (e + 1), "ce": 0.4 / (e + 1)},
              "val_acc": 0.80 + 0.03 * e, "val_loss": 0.9 / (e + 1)} for e in range(3)]
    report = {"tool": "edgekd", "kind": "classifier", "target": {"name": "android", "description": "", "source": ""},
              "distill": {"recipe": "hinton", "teacher_val_acc": 0.91, "curve": curve}, "notes": ["a note"]}
    out = write_reports(run, report, arts, header=["- data: digits", "- student: `cnn-xs`", "",
                                                   "| candidate | MACs |", "|---|---|", "| auto:0.5 | 1,000 |"])
    return run.root, out


def test_figures_are_pngs_beside_report_md_and_inline_in_report_html(run_dir):
    root, report = run_dir
    assert report["figures"] == ["figures/accuracy_latency.png", "figures/op_time.png", "figures/sizes.png",
                                 "figures/distill_curve.png"]
    md = (root / "report.md").read_text()
    for f in report["figures"]:
        assert (root / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({f})" in md
    page = (root / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing outside the file: no links, no scripts
    assert "<li>data: digits</li>" in page and "<code>cnn-xs</code>" in page
    assert "<th>candidate</th>" in page and "<td>auto:0.5</td>" in page and "|---" not in page  # md tables as tables
    assert json.loads((root / "report.json").read_text())["figures"] == report["figures"]
    # the captions say where the op times come from, and which kinds of latency are drawn
    # the shipped file's own op lists (Vela, QNN) rather than another file's ONNX Runtime profile
    assert "Where the time goes: student tflite int8" in page
    assert "Vela per-layer estimate" in page and "QNN HTP profiling" in page
    assert "emulated, estimated, measured, simulated" in page


def test_pareto_front_keeps_only_undominated_points():
    pts = [{"ms": 1.0, "acc": 80.0}, {"ms": 2.0, "acc": 85.0}, {"ms": 3.0, "acc": 84.0}, {"ms": 0.5, "acc": 70.0},
           {"ms": 4.0, "acc": 90.0}]
    assert [(p["ms"], p["acc"]) for p in pareto(pts)] == [(0.5, 70.0), (1.0, 80.0), (2.0, 85.0), (4.0, 90.0)]


# Runs first in <head>: records script errors, failed loads (capture phase) and console.error calls, then, once
# the page has loaded, whether each image decoded; the verdict is written into the DOM that --dump-dom prints.
_PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push((e.target && e.target.tagName ? 'load failed: ' +
  e.target.tagName : 'script error: ' + e.message)), true);
const __ce = console.error; console.error = (...a) => { window.__errors.push('console.error: ' + a.join(' ')); __ce(...a); };
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const decoded = imgs.map(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify({errors: window.__errors, images: imgs.length, decoded: decoded});
  document.body.appendChild(pre);
});
</script>"""


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
needs_chromium = pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (Debian package `chromium`)")


def _render(page: str, tmp_path):
    """(what the probe saw, Chromium's console lines) for one page."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + _PROBE, 1))
    proc = subprocess.run([_chromium(), *FLAGS, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                          timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"')), [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]


@needs_chromium
def test_the_chromium_probe_sees_a_broken_image_and_a_console_error(run_dir, tmp_path):
    """Negative control: the checks below can fail."""
    page = (run_dir[0] / "report.html").read_text()
    page = page.replace("base64,iVBOR", "base64,AAAA", 1).replace("</body>", "<script>console.error('x')</script></body>")
    verdict, console = _render(page, tmp_path)
    assert verdict["decoded"][0] is False and "load failed: IMG" in verdict["errors"]
    assert "console.error: x" in verdict["errors"] and console


@needs_chromium
def test_report_html_renders_in_headless_chromium(run_dir, tmp_path):
    root, _ = run_dir
    verdict, console = _render((root / "report.html").read_text(), tmp_path)
    assert verdict["errors"] == [] and console == [], (verdict, console)
    assert verdict["images"] == 4 and all(verdict["decoded"]), verdict
    flags = [_chromium(), *FLAGS]
    shot = tmp_path / "shot.png"  # the report itself, as a reader sees it
    subprocess.run(flags + ["--hide-scrollbars", "--window-size=1200,2400", f"--screenshot={shot}",
                            (root / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000  # not a blank page


def test_gate_html_draws_the_ab_ratio_distribution(tmp_path):
    from edgekd.gate import TimingSettings, gate
    from edgekd.gate.figures import write_gate_html

    try:  # helpers live beside the tests; works with or without tests/__init__.py
        from test_gate_models import onnx_matmul_chain
    except ImportError:
        from tests.test_gate_models import onnx_matmul_chain

    a = onnx_matmul_chain(tmp_path / "a.onnx", dim=64, layers=2)
    b = onnx_matmul_chain(tmp_path / "b.onnx", dim=64, layers=2, seed=5)
    report = gate(b, a, "host", timing=TimingSettings(warmup=5, min_pairs=30, max_pairs=200, budget_s=0.5))
    attempt = report.timing["attempts"][0]
    assert len(attempt["pair_ratios"]) == attempt["pairs"]  # every pair's ratio is kept for the figure
    figures = write_gate_html(report, tmp_path / "gate" / "report.html")
    assert [f.file for f in figures] == ["gate_ab_ratios.png"]
    page = (tmp_path / "gate" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and "latency.ab" in page and "CI" in page
    if _chromium():
        verdict, console = _render(page, tmp_path)
        assert verdict["errors"] == [] and console == [] and verdict["decoded"] == [True]
