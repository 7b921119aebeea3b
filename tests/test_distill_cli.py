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


def test_cli_recipe_file_max_steps_and_manifest(tmp_path, capsys):
    recipe = tmp_path / "mine.toml"
    recipe.write_text('name = "mine"\n[train]\nlr = 0.01\n[[loss]]\ntype = "kd"\ntemperature = 3.0\n'
                      '[[loss]]\ntype = "at"\npairs = [["features.1", "features.1"]]\nweight = 100.0\n')
    out = tmp_path / "run"
    args = ["distill", "--teacher", "cnn-s", "--student", "cnn-xs", "--data", "digits", "--recipe", str(recipe),
            "--epochs", "3", "--max-steps", "4", "--batch-size", "64", "--set", "at.weight=50", "--lr", "0.02",
            "--checkpoint-every", "2", "--output", str(out), "--threads", "1", "--json"]
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    m = json.loads(stdout)
    assert m["steps"] == m["total_steps"] == 4 and len(m["epochs"]) == 1  # stopped inside the first epoch
    rc = m["recipe_config"]
    assert rc["name"] == "mine" and rc["train"]["lr"] == 0.02 and rc["loss"][1]["weight"] == 50
    assert set(m["epochs"][0]["parts"]) == {"kd", "at"}
    manifest = json.loads((out / "manifest.json").read_text())
    stage = manifest["stages"]["distill"]
    assert stage["status"] == "done" and stage["settings"]["recipe"] == str(recipe) and stage["settings"]["max_steps"] == 4
    assert stage["metrics"]["best_val_acc"] == m["best_val_acc"] and stage["artifacts"][0]["path"] == "best.pt"
    assert stage["artifacts"][0]["sha256"]
    # resuming with other settings is refused in one line
    code, _, err = _run(args[:-1] + ["--max-steps", "5"], capsys)
    assert code == 0  # a fresh run (no --resume) just overwrites
    code, _, err = _run(args[:-1] + ["--max-steps", "6", "--resume"], capsys)
    assert code == 1 and "other settings" in err and "Traceback" not in err


def test_cli_unlabeled_raw_images_are_preprocessed_like_the_data(tmp_path, capsys):
    """--unlabeled takes images as users save them (uint8, NHWC); they are scaled, laid out and normalised like --data."""
    import numpy as np
    from sklearn.datasets import load_digits

    raw = (load_digits().images[:200] * 255 / 16).astype(np.uint8)[..., None]  # (200, 8, 8, 1) bytes
    np.savez(tmp_path / "extra.npz", x=raw)
    code, out, err = _run(["distill", "--teacher", "cnn-s", "--student", "cnn-xs", "--data", "digits", "--recipe", "hinton",
                           "--epochs", "1", "--unlabeled", str(tmp_path / "extra.npz"), "--output", str(tmp_path / "o"),
                           "--threads", "1", "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)["pseudo_labels"]["unlabeled"]
    assert info["offered"] == 200 and info["kept"] == 200, info


def test_cli_distill_time_budget_stops_the_run_and_says_so(tmp_path, capsys):
    """--time-budget reaches the engine: a 1000-epoch plan ends near the budget, and the metrics say why."""
    code, out, err = _run(["distill", "--teacher", "cnn-s", "--student", "cnn-xs", "--data", "digits", "--recipe",
                           "hinton", "--epochs", "1000", "--time-budget", "4", "--output", str(tmp_path),
                           "--threads", "1", "--json", "--no-progress"], capsys)
    assert code == 0, err
    m = json.loads(out)
    assert m["time_budget_s"] == 4 and m["steps"] < 1000 * 6  # far fewer steps than 1000 epochs hold
    assert m["stopped"]
