"""The CI gate: deterministic checks, the interleaved A/B, stored-JSON baselines, outputs, usage errors."""

import json
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from edgekd.errors import UsageError
from edgekd.gate import Limits, TimingSettings, gate
from edgekd.runtime.stats import median_ratio_ci

try:  # helpers live beside the tests; works with or without tests/__init__.py
    from test_gate_models import onnx_convnet, onnx_matmul_chain
except ImportError:
    from tests.test_gate_models import onnx_convnet, onnx_matmul_chain

FAST = TimingSettings(warmup=5, min_pairs=30, max_pairs=300, budget_s=0.6)


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    d = tmp_path_factory.mktemp("chains")
    return {
        "a": onnx_matmul_chain(d / "a.onnx", dim=128, layers=4),
        "a2": onnx_matmul_chain(d / "a2.onnx", dim=128, layers=4, seed=7),  # same graph, other weights
        "slow": onnx_matmul_chain(d / "slow.onnx", dim=128, layers=12),  # 3x the work
    }


def test_bootstrap_ci_brackets_the_true_ratio():
    rng = np.random.default_rng(1)
    base = 1.0 + rng.exponential(0.05, 400)  # right-skewed like real timings
    cand = base * 1.10 * (1 + rng.normal(0, 0.01, 400))
    ratio, lo, hi = median_ratio_ci(base, cand)
    assert lo < 1.10 < hi and lo > 1.05
    with pytest.raises(ValueError):
        median_ratio_ci(base[:3], cand[:2])


def test_same_model_passes(chains):
    r = gate(chains["a2"], chains["a"], "host", timing=FAST)
    assert r.passed and r.exit_code == 0
    ab = r.check("latency.ab")
    assert ab.status in ("pass", "warn")  # warn only if this shared machine made the interval wide
    assert ab.details["ci"][0] <= 1.05
    assert {c.name for c in r.checks} >= {"size_bytes", "macs", "ops.transpose", "ops.custom", "io", "latency.ab"}
    lat = r.candidate["latency"]
    assert lat["kind"] == "measured" and lat["threads"] == 1 and lat["p50_ms"] > 0 and "onnxruntime" in lat["runtime"]


def test_real_slowdown_fails_after_remeasure(chains):
    # MAC growth allowed so the timing verdict is what is tested.
    r = gate(chains["slow"], chains["a"], "host", timing=FAST, limits=Limits(max_macs_growth=5.0, max_size_growth=5.0))
    ab = r.check("latency.ab")
    assert ab.status == "fail", ab.message
    assert ab.details["attempts"] == 2 and "confirmed on re-measure" in ab.message
    # How much slower 3x the MatMuls runs depends on how the CPU splits per-run overhead and MatMul work (2.2x on
    # this project's AVX-512 EPYC, more where the MatMuls cost more): what holds everywhere is a measured ratio above
    # the allowed regression, with the confidence interval's lower bound above it too (the fail rule).
    limit = 1 + Limits().max_regression
    assert ab.details["ci"][0] > limit and ab.candidate > limit
    assert not r.passed and r.exit_code == 1
    assert [c.name for c in r.failures] == ["latency.ab"]


def test_deterministic_checks_hard_fail_without_timing(tmp_path):
    base = onnx_convnet(tmp_path / "base.onnx", channels=8)
    cand = onnx_convnet(tmp_path / "cand.onnx", channels=8, extra=True)  # adds a custom-domain op
    r = gate(cand, base, "host", measure=False)
    assert r.check("ops.custom").status == "fail" and "com.example:MyOp" in r.check("ops.custom").message
    assert r.check("latency").status == "skip"
    wider = onnx_convnet(tmp_path / "wide.onnx", channels=16)
    r = gate(wider, base, "host", measure=False)
    assert r.check("macs").status == "fail" and r.check("macs").details["relative_change"] == pytest.approx(1.0)
    assert r.check("size_bytes").status == "pass"  # +288 bytes: under the 4 KiB slack
    big = onnx_convnet(tmp_path / "big.onnx", channels=512)
    assert gate(big, base, "host", measure=False).check("size_bytes").status == "fail"


def test_transpose_count(tmp_path):
    from edgekd.gate.checks import deterministic_checks

    base = {"transpose_ops": 1}
    assert next(c for c in deterministic_checks(base, {"transpose_ops": 2}, Limits()) if c.name == "ops.transpose").status == "fail"
    ok = deterministic_checks(base, {"transpose_ops": 2}, Limits(max_new_transposes=1))
    assert next(c for c in ok if c.name == "ops.transpose").status == "pass"


def test_arm_instruction_hook_is_a_hard_check(chains):
    counts = {"a.onnx": 1_000_000, "slow.onnx": 1_200_000}

    def fake_emulator(path, target):  # stands in for edgekd.emulate's per-inference count
        return {"per_inference": counts[path.name], "how": "test counter"}

    r = gate(chains["slow"], chains["a"], "host", measure=False, arm_instructions=fake_emulator,
             limits=Limits(max_macs_growth=5.0, max_size_growth=5.0))
    arm = r.check("instructions.arm")
    assert arm.status == "fail" and arm.kind == "simulated" and arm.details["relative_change"] == pytest.approx(0.2)


def test_json_baseline_is_weaker_absolute_comparison(chains, tmp_path):
    first = gate(chains["a"], None, "host", timing=FAST)
    assert first.passed and first.baseline["source"] == "none"
    stored = tmp_path / "baseline.json"
    stored.write_text(first.to_json())
    r = gate(chains["a2"], stored, "host", timing=FAST)
    assert r.baseline["source"] == "json"
    absolute = r.check("latency.absolute")
    assert absolute is not None and "weaker than an A/B" in absolute.message
    assert absolute.status in ("pass", "warn")  # never fails unless strict_absolute
    assert r.check("macs").status == "pass"
    # An `edgekd inspect --json` file works too: deterministic checks only.
    from edgekd.inspect import model_info

    info_file = tmp_path / "info.json"
    info_file.write_text(json.dumps(model_info(chains["a"])))
    r2 = gate(chains["slow"], info_file, "host", measure=False)
    assert r2.check("macs").status == "fail"


def test_budget_from_target_file(chains, tmp_path):
    t = tmp_path / "tiny.toml"
    t.write_text('name = "tiny"\n[[ships]]\nformat = "onnx"\nprecision = "fp32"\n[runtime]\nname = "onnxruntime"\n'
                 '[connection]\nkind = "local"\n[budgets]\nsize_bytes = 1000\nlatency_ms = 10000.0\n')
    r = gate(chains["a"], chains["a"], t, timing=FAST)
    assert r.check("budget.size_bytes").status == "fail"
    assert r.check("budget.latency_ms").status == "pass"


def test_outputs_junit_github_markdown(tmp_path):
    base = onnx_convnet(tmp_path / "base.onnx")
    cand = onnx_convnet(tmp_path / "c,1.onnx", extra=True)
    r = gate(cand, base, "host", measure=False)
    root = ET.fromstring(r.to_junit())
    suite = root.find("testsuite")
    assert int(suite.get("failures")) == len(r.failures) >= 1
    failed = [tc.get("name") for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert "ops.custom" in failed
    lines = r.github_annotations()
    err = [line for line in lines if line.startswith("::error ") and "ops.custom" in line]
    assert err and "c%2C1.onnx" in err[0] and "title=edgekd gate%3A ops.custom::" in err[0]
    assert lines[-1].startswith("::notice ")
    d = json.loads(r.to_json())
    assert d["passed"] is False and d["format"] == "edgekd-gate/1"
    assert "| ❌ | ops.custom |" in r.markdown()


@pytest.mark.parametrize("kwargs,msg", [
    ({"max_regression": 0}, "max_regression"),
    ({"max_regression": 1.5}, "max_regression"),
    ({"target": "no-such-target"}, "unknown target"),
])
def test_usage_errors(chains, kwargs, msg):
    kw = {"target": "host", **kwargs}
    with pytest.raises(UsageError, match=msg) as e:
        gate(chains["a"], chains["a"], kw.pop("target"), measure=False, **kw)
    assert e.value.exit_code == 2


def test_usage_errors_files(chains, tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        gate(tmp_path / "missing.onnx", chains["a"], "host")
    with pytest.raises(UsageError, match="expected a .onnx, .tflite or .pte"):
        gate(chains["a"], tmp_path / "b.pt", "host")
    bad = tmp_path / "b.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        gate(chains["a"], bad, "host")
    other = onnx_matmul_chain(tmp_path / "o.onnx", dim=64, layers=1)
    with pytest.raises(UsageError, match="not comparable"):
        gate(other, chains["a"], "host", measure=False)


def test_cli_exit_codes_and_outputs(chains, tmp_path):
    import typer
    from typer.testing import CliRunner

    from edgekd.commands.gate import gate_cmd, inspect_cmd

    app = typer.Typer()
    app.command("gate")(gate_cmd)
    app.command("inspect")(inspect_cmd)
    cli = CliRunner()
    junit = tmp_path / "g.xml"
    res = cli.invoke(app, ["gate", str(chains["a2"]), "--baseline", str(chains["a"]), "--budget-s", "0.5",
                           "--json", "--junit", str(junit)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["passed"] is True and junit.is_file()
    res = cli.invoke(app, ["gate", str(chains["slow"]), "-b", str(chains["a"]), "--no-measure", "--github"])
    assert res.exit_code == 1 and "::error " in res.stdout and "macs" in res.stdout
    res = cli.invoke(app, ["inspect", str(chains["a"]), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["ops"] == {"MatMul": 4, "Relu": 4}


def test_ci_examples(chains, monkeypatch, tmp_path):
    """The pytest snippet in examples/ci runs the gate; the workflow calls the CLI with the documented flags."""
    import importlib.util
    from pathlib import Path

    ci = Path(__file__).resolve().parents[1] / "examples" / "ci"
    monkeypatch.setenv("EDGEKD_CANDIDATE", str(chains["a2"]))
    monkeypatch.setenv("EDGEKD_BASELINE", str(chains["a"]))
    spec = importlib.util.spec_from_file_location("ci_snippet", ci / "test_latency_gate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.test_model_does_not_regress(tmp_path)
    assert json.loads((tmp_path / "gate.json").read_text())["passed"] is True
    mod.CANDIDATE = chains["slow"]  # a regression fails the snippet with the gate's own lines
    with pytest.raises(pytest.fail.Exception, match="macs 65.5k -> 197k"):
        mod.test_model_does_not_regress(tmp_path)
    wf = (ci / "edgekd-gate.yml").read_text()
    assert "edgekd gate" in wf and "--baseline" in wf and "--junit" in wf and "--github" in wf


@pytest.mark.slow
def test_callgrind_instruction_count_gates(chains):
    """Two valgrind runs side by side (~1 min on an idle machine, up to 10 min at load 11)."""
    import shutil

    if shutil.which("valgrind") is None:
        pytest.skip("valgrind not installed")
    r = gate(chains["slow"], chains["a"], "host", measure=False, instructions=True, instructions_runs=5,
             limits=Limits(max_macs_growth=5.0, max_size_growth=5.0))
    chk = r.check("instructions.host")
    # 3x the MatMuls, but per-invoke runtime overhead is a large share of so small a model: ~+100 % on this
    # project's AVX-512 EPYC. Host instruction counts follow the MLAS kernels picked for the CPU (AVX2 needs about
    # twice AVX-512's instructions per MatMul), so the change lies between overhead-only (+0 %) and MatMul-only
    # (+200 %); an Intel Xeon VM measured +46 % (stop 31), so the lower bound only says "well above noise".
    assert chk.status == "fail" and 0.25 < chk.details["relative_change"] < 3.5
    assert chk.candidate > chk.baseline > 10_000
    assert "callgrind" in chk.details["how"]


def test_pinning_restores_affinity_and_abba_order():
    import os

    from edgekd.runtime.machine import pick_cpus, pinned
    from edgekd.runtime.timing import measure_ab

    before = os.sched_getaffinity(0)
    cpus = pick_cpus(1)
    with pinned(cpus) as got:
        assert got == cpus and os.sched_getaffinity(0) == set(cpus)
    assert os.sched_getaffinity(0) == before
    calls = []
    res = measure_ab(lambda: calls.append("A"), lambda: calls.append("B"),
                     TimingSettings(warmup=0, min_pairs=4, max_pairs=4, budget_s=0), inner=1)
    assert res["pairs"] == 4
    assert "".join(calls[-8:]) == "ABBAABBA"  # order flips every pair


def test_edgekd_cli_exit_codes(chains, tmp_path, monkeypatch, capsys):
    """Through edgekd.cli.main: 1 for a regression, 2 for a usage error (one `error:` line)."""
    from edgekd import cli

    if not any(m == "gate" for m, _ in cli._STAGE_COMMANDS):  # until the lead registers it
        monkeypatch.setattr(cli, "_STAGE_COMMANDS", cli._STAGE_COMMANDS + [("gate", [("gate", "gate_cmd")])])
    with pytest.raises(SystemExit) as e:
        cli.main(["gate", str(chains["slow"]), "--baseline", str(chains["a"]), "--no-measure", "--json"])
    assert e.value.code == 1
    assert json.loads(capsys.readouterr().out)["passed"] is False
    with pytest.raises(SystemExit) as e:
        cli.main(["gate", str(chains["a"]), "--baseline", str(tmp_path / "missing.onnx")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: baseline model file") and err.count("\n") == 1
