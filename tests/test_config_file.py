"""One configuration file: `edgekd init`, `compress --config` (file < flags, resolved copy, --set), `gate --config`."""

import json
import subprocess
import sys
import tomllib

import pytest

EDGEKD = [sys.executable, "-m", "edgekd.cli"]

try:  # helpers live beside the tests; works with or without tests/__init__.py
    from test_gate_models import onnx_matmul_chain
except ImportError:
    from tests.test_gate_models import onnx_matmul_chain


def run(args, cwd):
    return subprocess.run(EDGEKD + args, capture_output=True, text=True, cwd=cwd, timeout=600)


def last_error(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    return lines[-1] if lines else ""


def test_init_writes_a_commented_file_every_command_accepts(tmp_path):
    proc = run(["init"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "edgekd.toml").read_text()
    raw = tomllib.loads(text)
    # every stage's options are there, with the option's help as a comment
    assert raw["student"] == "cnn-s" and raw["target"] == "android"
    assert raw["distill"]["recipe"] == "auto" and raw["quantize"]["calib_samples"] == 256
    assert raw["gate"]["max_regression"] == 0.05 and "# max_drop =" in text and "# Accuracy budget" in text
    for section in ("preprocess", "distill", "quantize", "profile", "gate"):
        assert f"[{section}]" in text
    again = run(["init"], tmp_path)
    assert again.returncode == 2 and "exists" in last_error(again)
    # the starter file is accepted as it is (an unknown key would stop here with a usage error)
    bad = run(["compress", "--config", "edgekd.toml", "--target", "no-such-target", "--output", "out"], tmp_path)
    assert "no-such-target" in last_error(bad)
    assert not (tmp_path / "out").exists()  # a run that fails its checks leaves no directory, nor config.toml


@pytest.mark.parametrize("body, needle", [
    ("[distill]\nepoch = 2\n", "unknown key 'distill.epoch'; did you mean 'distill.epochs'?"),
    ("epochs = 2\n", "unknown key 'epochs'; did you mean 'distill.epochs'?"),
    ("[distil]\nepochs = 2\n", "unknown section [distil]; did you mean [distill]?"),
    ("[quantize]\nmax_dorp = 1.0\n", "did you mean 'quantize.max_drop'?"),
    ("[distill]\nepochs = \"three\"\n", "'distill.epochs'"),
    ("[distill]\nepochs = 0\n", "'distill.epochs'"),
    ("target = [1, 2]\n", "'target' must be a single value"),
    ("target = \n", "is not valid TOML"),
])
def test_bad_config_is_a_usage_error_naming_the_key(tmp_path, body, needle):
    (tmp_path / "c.toml").write_text(body)
    proc = run(["compress", "--config", "c.toml", "--output", "out"], tmp_path)
    assert proc.returncode == 2
    err = last_error(proc)
    assert err.startswith("error: c.toml") or err.startswith("error: config file c.toml"), err
    assert needle in err, err
    assert not (tmp_path / "out").exists()  # nothing written before the file is known to be valid


def test_flags_override_the_file_and_the_resolved_copy_is_written(tmp_path):
    (tmp_path / "c.toml").write_text('teacher = "nosuch.py:build"\nstudent = "cnn-xs"\ntarget = "host"\n'
                                     '[distill]\nepochs = 4\nrecipe = "hinton"\n'
                                     'set = { kd = { temperature = 2 } }\n[profile]\nruns = 5\n[gate]\nmax_pairs = 50\n')
    proc = run(["compress", "--config", "c.toml", "--epochs", "2", "--output", "out"], tmp_path)
    assert "nosuch.py" in last_error(proc)  # the file's teacher was used; the run stopped loading it
    resolved = (tmp_path / "out" / "config.toml").read_text()
    raw = tomllib.loads(resolved)
    assert raw["distill"]["epochs"] == 2 and "from the command line" in resolved  # the flag won
    assert raw["student"] == "cnn-xs" and raw["profile"]["runs"] == 5 and raw["output"] == "out"
    assert raw["target"] == "host" and raw["distill"]["recipe"] == "hinton"
    assert raw["distill"]["set"] == ["kd.temperature=2"]
    assert raw["gate"] == {"max_pairs": 50}  # the gate's section travels with the run's file


def test_set_reaches_recipe_fields_and_bad_fields_fail_before_any_work(tmp_path):
    proc = run(["compress", "--target", "host", "--recipe", "hinton", "--set", "kd.temperatur=2",
                "--output", "out"], tmp_path)
    assert proc.returncode != 0 and "temperatur" in last_error(proc)
    proc = run(["compress", "--target", "host", "--set", "train.no_such=1", "--output", "out2"], tmp_path)
    assert proc.returncode != 0 and "no_such" in last_error(proc)  # auto: checked on the recipe it probes from
    proc = run(["compress", "--target", "host", "--set", "kd.temperature=2", "--output", "out4"], tmp_path)
    assert proc.returncode == 2 and "only train.* fields" in last_error(proc)  # auto chooses the losses itself
    proc = run(["compress", "--set", "kd.temperature", "--output", "out3"], tmp_path)
    assert proc.returncode == 2 and "KEY=VALUE" in last_error(proc)


def test_gate_reads_its_section(tmp_path):
    base = onnx_matmul_chain(tmp_path / "a.onnx", dim=64, layers=2)
    cand = onnx_matmul_chain(tmp_path / "b.onnx", dim=64, layers=6)  # 3x the weights and MACs
    (tmp_path / "c.toml").write_text("[gate]\nmax_size_growth = 5.0\nmax_macs_growth = 5.0\nmeasure = false\n")
    args = ["gate", str(cand), "--baseline", str(base), "--json"]
    strict = run(args + ["--no-measure"], tmp_path)
    assert strict.returncode == 1, strict.stderr  # default limits: the growth fails
    loose = run(args + ["--config", "c.toml"], tmp_path)
    assert loose.returncode == 0, loose.stdout[-1500:] + loose.stderr[-1500:]
    checks = {c["name"]: c for c in json.loads(loose.stdout)["checks"]}
    assert checks["size_bytes"]["status"] == "pass" and "latency.ab" not in checks
    flag = run(args + ["--config", "c.toml", "--max-size-growth", "0.1"], tmp_path)
    assert flag.returncode == 1  # the flag beats the file


@pytest.mark.slow
def test_compress_from_a_file_and_rerun_from_the_run_directory(tmp_path):
    (tmp_path / "tnet.py").write_text(
        "import torch\n"
        "def build():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),\n"
        "        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))\n")
    (tmp_path / "edgekd.toml").write_text(
        'teacher = "tnet.py:build"\nstudent = "cnn-xs"\ndata = "digits"\ntarget = "host"\noutput = "run"\n'
        'eval_samples = 200\n[distill]\nrecipe = "hinton"\nepochs = 1\nset = { "kd.temperature" = 2 }\n'
        '[profile]\nruns = 3\n')
    first = run(["compress", "--config", "edgekd.toml", "--json"], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    kd = manifest["stages"]["distill"]["settings"]["recipe_config"]["loss"][0]
    assert kd["temperature"] == 2  # --set in the file reached the recipe
    again = run(["compress", "--config", "run/config.toml", "--json"], tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resumed: skipped" in again.stderr and "distilling" not in again.stderr  # the same run, nothing redone
