"""`edgekd distill` end to end through the real CLI entry point (in-process)."""

import json

import pytest
import torch

from edgekd.cli import main

torch.set_num_threads(1)


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_distill_json_and_resume(tmp_path, capsys):
    args = ["distill", "--teacher", "cnn-s", "--student", "cnn-xs", "--data", "digits", "--recipe", "hinton",
            "--epochs", "2", "--batch-size", "256", "--set", "kd.temperature=2", "--alpha", "0.5",
            "--output", str(tmp_path), "--threads", "1", "--json"]
    code, out, err = _run(args, capsys)
    assert code == 0, err
    m = json.loads(out)
    assert m["recipe_config"]["loss"][0]["temperature"] == 2 and m["recipe_config"]["loss"][0]["alpha"] == 0.5
    assert len(m["epochs"]) == 2 and (tmp_path / "best.pt").is_file() and (tmp_path / "metrics.json").is_file()
    code, out, err = _run(args + ["--resume"], capsys)
    assert code == 0 and json.loads(out)["resumed_from_step"] == m["steps"]


def test_cli_distill_errors_are_one_line(tmp_path, capsys):
    code, out, err = _run(["distill", "--teacher", "cnn-s", "--data", "digits", "--recipe", "nope",
                           "--output", str(tmp_path)], capsys)
    assert code == 1 and err.startswith("error: unknown recipe 'nope'") and "Traceback" not in err
    code, out, err = _run(["distill", "--teacher", "cnn-s", "--data", "digits", "--set", "oops",
                           "--output", str(tmp_path)], capsys)
    assert code == 2 and "--set expects KEY=VALUE" in err
    code, out, err = _run(["distill", "--teacher", "cnn-s", "--data", "digits", "--resume",
                           "--teacher-weights", str(tmp_path / "missing.pt"), "--output", str(tmp_path)], capsys)
    assert code == 1 and "does not exist" in err
