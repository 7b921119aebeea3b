"""Table-driven bad-input test: every input kind a command reads × every way it can be broken.

Each case runs the real CLI entry (`edgekd.cli.main`, in process so the table stays fast) and asserts:
a non-zero exit, exactly one `error:` line that names the broken file, no traceback, no "internal error",
and no model file (or temporary file) left in the output directory.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "profile"
MODEL_SUFFIXES = {".onnx", ".tflite", ".pt", ".pt2", ".pte", ".partial"}

TEACHER_SRC = (
    "import torch\n"
    "def build():\n"
    "    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),\n"
    "        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))\n"
    "def other():\n"
    "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))\n"
)


# ---------------------------------------------------------------- the broken inputs, built once


class _Code:
    """Pickled as a class reference: torch.load(weights_only=True) refuses it."""


def _digits_npz(path: Path, **over) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    arrays = {"x": d.images[:200].astype(np.float32)[:, None] / 16.0, "y": d.target[:200].astype(np.int64)}
    arrays.update(over)
    np.savez(path, **arrays)
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


def _truncate(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import torch

    root = tmp_path_factory.mktemp("bad")
    (root / "tnet.py").write_text(TEACHER_SRC)
    import importlib.util

    spec = importlib.util.spec_from_file_location("tnet_fixture", root / "tnet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    good = mod.build()
    torch.save(good.state_dict(), root / "good.pt")

    f: dict[str, Path] = {"teacher": root / "tnet.py", "good_pt": root / "good.pt"}
    # checkpoints
    f["ckpt_missing"] = root / "nope.pt"
    f["ckpt_empty"] = _bytes(root / "empty.pt", b"")
    f["ckpt_truncated"] = _truncate(root / "good.pt", root / "trunc.pt")
    f["ckpt_text"] = _text(root / "text.pt", "not a checkpoint\n")
    torch.save({"w": _Code()}, f.setdefault("ckpt_code", root / "code.pt"))
    torch.save(mod.other().state_dict(), f.setdefault("ckpt_shape", root / "other.pt"))
    nan = {k: v.clone() for k, v in good.state_dict().items()}
    nan["0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(nan, f.setdefault("ckpt_nan", root / "nan.pt"))
    f["ckpt_dir"] = _dir(root / "dir.pt")
    # model files
    for suffix in (".onnx", ".tflite", ".pt2"):
        tag = suffix[1:]
        f[f"{tag}_missing"] = root / f"nope{suffix}"
        f[f"{tag}_empty"] = _bytes(root / f"empty{suffix}", b"")
        f[f"{tag}_text"] = _text(root / f"text{suffix}", "hello, I am not a model\n")
        f[f"{tag}_dir"] = _dir(root / f"dir{suffix}")
    f["onnx_truncated"] = _truncate(FIXTURES / "tiny_fp32.onnx", root / "trunc.onnx")
    f["tflite_truncated"] = _truncate(FIXTURES / "tiny_fp32.tflite", root / "trunc.tflite")
    shutil.copy(FIXTURES / "tiny_fp32.tflite", f.setdefault("onnx_swapped", root / "swapped.onnx"))
    shutil.copy(FIXTURES / "tiny_fp32.onnx", f.setdefault("tflite_swapped", root / "swapped.tflite"))
    with zipfile.ZipFile(f.setdefault("pt2_truncated", root / "trunc.pt2"), "w") as z:
        z.writestr("archive/version", "7")
    # data (.npz): the fixture teacher takes 1x8x8 digits with 10 classes
    f["npz_good"] = _digits_npz(root / "good.npz")
    f["npz_missing"] = root / "nope.npz"
    f["npz_empty"] = _bytes(root / "empty.npz", b"")
    f["npz_truncated"] = _truncate(f["npz_good"], root / "trunc.npz")
    f["npz_text"] = _text(root / "text.npz", "x,y\n1,2\n")
    f["npz_zero"] = _digits_npz(root / "zero.npz", x=np.zeros((0, 1, 8, 8), np.float32), y=np.zeros(0, np.int64))
    f["npz_shape"] = _digits_npz(root / "shape.npz", x=np.zeros(200, np.float32))
    f["npz_one_class"] = _digits_npz(root / "one.npz", y=np.zeros(200, np.int64))
    x = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    x[3, 0, 2, 2] = np.nan
    f["npz_nan"] = _digits_npz(root / "nan.npz", x=x)
    f["npz_inf"] = _digits_npz(root / "inf.npz", x=np.where(x != x, np.inf, x).astype(np.float32))
    f["npz_lengths"] = _digits_npz(root / "len.npz", y=np.zeros(150, np.int64))
    f["npz_classes"] = _digits_npz(root / "classes.npz", y=np.arange(200, dtype=np.int64) % 20)
    f["npz_keys"] = root / "keys.npz"
    np.savez(f["npz_keys"], images=np.zeros((4, 8, 8)))
    f["npz_channels"] = _digits_npz(root / "rgb.npz", x=np.zeros((200, 3, 8, 8), np.float32))
    f["npz_strings"] = _digits_npz(root / "strx.npz", x=np.full((200, 1, 8, 8), "a"))
    f["npz_object"] = _digits_npz(root / "objx.npz", x=np.array([{"a": 1}] * 200, dtype=object))
    f["npz_onehot"] = _digits_npz(root / "onehot.npz", y=np.eye(10, dtype=np.int64)[np.arange(200) % 10])
    # image folders
    f["img_empty"] = _dir(root / "img_empty")
    (root / "img_one" / "cat").mkdir(parents=True)
    from PIL import Image

    for i in range(4):
        Image.fromarray((np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)).save(root / "img_one" / "cat" / f"{i}.png")
    f["img_one"] = root / "img_one"
    for c in ("a", "b"):
        (root / "img_corrupt" / c).mkdir(parents=True)
        (root / "img_corrupt" / c / "x.png").write_bytes(b"\x89PNG broken")
    f["img_corrupt"] = root / "img_corrupt"
    # target files
    f["target_missing"] = root / "nope.toml"
    f["target_empty"] = _text(root / "empty.toml", "")
    f["target_syntax"] = _text(root / "syntax.toml", "name = 'x\n[runtime\n")
    f["target_types"] = _text(root / "types.toml", 'name = "t"\n[runtime]\nname = "onnxruntime"\nthreads = "many"\n')
    f["target_runtime"] = _text(root / "runtime.toml", 'name = "t"\n[runtime]\nname = "tensorflow-js"\n')
    f["target_dir"] = _dir(root / "dir.toml")
    # gate baselines (JSON of an earlier run)
    f["base_missing"] = root / "nope.json"
    f["base_empty"] = _text(root / "empty.json", "")
    f["base_syntax"] = _text(root / "syntax.json", "{not json")
    f["base_schema"] = _text(root / "schema.json", json.dumps({"hello": 1}))
    f["base_list"] = _text(root / "list.json", json.dumps([1, 2, 3]))
    # text data (Hugging Face path)
    f["text_missing"] = root / "nope.txt"
    f["text_empty"] = _text(root / "empty.txt", "")
    f["text_blank"] = _text(root / "blank.txt", "\n\n   \n")
    f["text_binary"] = _bytes(root / "binary.txt", bytes(range(256)) * 8)
    f["jsonl_broken"] = _text(root / "broken.jsonl", '{"text": "a"}\n{broken\n')
    f["csv_nocolumn"] = _text(root / "nocol.csv", "body,label\nhello,1\n")
    # Hugging Face model directories
    f["hf_missing"] = root / "no_model_dir"
    f["hf_empty"] = _dir(root / "hf_empty")
    (root / "hf_config").mkdir()
    (root / "hf_config" / "config.json").write_text("{broken")
    f["hf_config"] = root / "hf_config"
    (root / "hf_noweights").mkdir()
    (root / "hf_noweights" / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32,
                                                                   "num_hidden_layers": 2, "num_attention_heads": 2,
                                                                   "intermediate_size": 64, "vocab_size": 100}))
    f["hf_noweights"] = root / "hf_noweights"
    f["root"] = root
    return f


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Case:
    command: str  # which command, for the id
    argv: tuple[str, ...]  # {name} is replaced by the path of inputs[name]; {out} by the output path
    broken: str  # the key of the broken input; its file name must appear in the error line
    needle: str = ""  # an extra word the message must contain (what is wrong), lower case

    @property
    def id(self) -> str:
        return f"{self.command}-{self.broken}"


T = "{teacher}:build"
CKPT_PROBLEMS = {"ckpt_missing": "does not exist", "ckpt_empty": "empty", "ckpt_truncated": "", "ckpt_text": "",
                 "ckpt_code": "state_dict", "ckpt_shape": "does not match", "ckpt_nan": "nan",
                 "ckpt_dir": "not a file"}
ONNX_PROBLEMS = {"onnx_missing": "does not exist", "onnx_empty": "empty", "onnx_truncated": "onnx",
                 "onnx_text": "onnx", "onnx_swapped": "onnx", "onnx_dir": "not a file"}
TFLITE_PROBLEMS = {"tflite_missing": "does not exist", "tflite_empty": "empty", "tflite_truncated": "tflite",
                   "tflite_text": "tflite", "tflite_swapped": "tflite", "tflite_dir": "not a file"}
PT2_PROBLEMS = {"pt2_missing": "does not exist", "pt2_empty": "empty", "pt2_truncated": "", "pt2_text": "",
                "pt2_dir": "not a file"}
NPZ_PROBLEMS = {"npz_missing": "does not exist", "npz_empty": "empty", "npz_truncated": "", "npz_text": "",
                "npz_zero": "no samples", "npz_shape": "shape", "npz_one_class": "2 classes", "npz_nan": "nan",
                "npz_inf": "infinite", "npz_lengths": "samples", "npz_keys": "'x'", "npz_strings": "numbers",
                "npz_object": "pickled", "npz_onehot": "one class index"}
IMG_PROBLEMS = {"img_empty": "no class", "img_one": "2 classes", "img_corrupt": "no readable"}
TARGET_PROBLEMS = {"target_missing": "", "target_empty": "", "target_syntax": "toml", "target_types": "threads",
                   "target_runtime": "runtime", "target_dir": ""}
BASE_PROBLEMS = {"base_missing": "does not exist", "base_empty": "empty", "base_syntax": "json",
                 "base_schema": "", "base_list": ""}
TEXT_PROBLEMS = {"text_missing": "", "text_empty": "no text", "text_blank": "no text", "text_binary": "",
                 "jsonl_broken": ":2", "csv_nocolumn": "text"}
HF_PROBLEMS = {"hf_missing": "", "hf_empty": "", "hf_config": "config.json", "hf_noweights": "weights"}


def _cases() -> list[Case]:
    c: list[Case] = []
    add = lambda cmd, argv, probs: c.extend(Case(cmd, tuple(argv), k, v) for k, v in probs.items())  # noqa: E731
    # checkpoints, to every command that takes --*-weights
    add("compress", ["compress", "--teacher", T, "--teacher-weights", "{b}", "--student", "cnn-s", "--data",
                     "{npz_good}", "--target", "host", "--epochs", "1", "--output", "{out}"], CKPT_PROBLEMS)
    add("distill", ["distill", "--teacher", T, "--teacher-weights", "{b}", "--data", "{npz_good}",
                    "--epochs", "1", "--output", "{out}", "--no-progress"], CKPT_PROBLEMS)
    add("export", ["export", T, "--weights", "{b}", "--data", "{npz_good}", "--format", "onnx",
                   "--output", "{out}/m.onnx"], CKPT_PROBLEMS)
    add("quantize", ["quantize", T, "--weights", "{b}", "--data", "{npz_good}", "--output", "{out}/m.onnx"],
        CKPT_PROBLEMS)
    add("derive", ["derive", "--teacher", T, "--teacher-weights", "{b}", "--ratio", "0.5", "--data", "{npz_good}",
                   "--output", "{out}/s.pt"], CKPT_PROBLEMS)
    add("prune", ["prune", "--model", T, "--model-weights", "{b}", "--ratio", "0.3", "--data", "{npz_good}",
                  "--output", "{out}/p.pt"], CKPT_PROBLEMS)
    # model files
    for probs in (ONNX_PROBLEMS, TFLITE_PROBLEMS):
        add("quantize", ["quantize", "{b}", "--data", "{npz_good}", "--output", "{out}/q.onnx"], probs)
        add("profile", ["profile", "{b}", "--target", "host", "--runs", "2"], probs)
        add("inspect", ["inspect", "{b}"], probs)
        add("gate", ["gate", "{b}", "--baseline", str(FIXTURES / "tiny_fp32.onnx"), "--no-measure"], probs)
        add("gate-baseline", ["gate", str(FIXTURES / "tiny_fp32.onnx"), "--baseline", "{b}", "--no-measure"], probs)
        add("distill", ["distill", "--teacher", "{b}", "--data", "{npz_good}", "--epochs", "1",
                        "--output", "{out}", "--no-progress"], probs)
    add("export", ["export", "{b}", "--data", "{npz_good}", "--format", "onnx", "--output", "{out}/m.onnx"],
        PT2_PROBLEMS)
    add("compress", ["compress", "--teacher", "{b}", "--data", "{npz_good}", "--target", "host", "--epochs", "1",
                     "--output", "{out}"], PT2_PROBLEMS)
    # data
    for probs in (NPZ_PROBLEMS, IMG_PROBLEMS):
        add("compress", ["compress", "--teacher", T, "--teacher-weights", "{good_pt}", "--data", "{b}",
                         "--target", "host", "--epochs", "1", "--output", "{out}"], probs)
        add("distill", ["distill", "--teacher", T, "--teacher-weights", "{good_pt}", "--data", "{b}",
                        "--epochs", "1", "--output", "{out}", "--no-progress"], probs)
        add("quantize", ["quantize", str(FIXTURES / "tiny_fp32.onnx"), "--data", "{b}", "--output", "{out}/q.onnx"],
            probs)
        add("export", ["export", T, "--weights", "{good_pt}", "--data", "{b}", "--format", "onnx",
                       "--output", "{out}/m.onnx"], probs)
    add("derive", ["derive", "--teacher", T, "--teacher-weights", "{good_pt}", "--ratio", "0.5", "--data", "{b}",
                   "--output", "{out}/s.pt"], NPZ_PROBLEMS)
    unl = {k: v for k, v in NPZ_PROBLEMS.items() if k not in ("npz_one_class", "npz_lengths", "npz_keys", "npz_onehot")}
    add("distill-unlabeled", ["distill", "--teacher", T, "--teacher-weights", "{good_pt}", "--data", "{npz_good}",
                              "--unlabeled", "{b}", "--epochs", "1", "--output", "{out}", "--no-progress"], unl)
    # data that does not fit the teacher (class count, channels)
    for cmd, argv in (("compress", ["compress", "--target", "host", "--epochs", "1", "--output", "{out}"]),
                      ("distill", ["distill", "--epochs", "1", "--output", "{out}", "--no-progress"])):
        add(cmd, argv + ["--teacher", T, "--teacher-weights", "{good_pt}", "--data", "{b}"],
            {"npz_classes": "classes", "npz_channels": "channel"})
    # target files
    add("compress", ["compress", "--teacher", T, "--teacher-weights", "{good_pt}", "--data", "{npz_good}",
                     "--target", "{b}", "--epochs", "1", "--output", "{out}"], TARGET_PROBLEMS)
    add("profile", ["profile", str(FIXTURES / "tiny_fp32.onnx"), "--target", "{b}", "--runs", "2"], TARGET_PROBLEMS)
    add("gate", ["gate", str(FIXTURES / "tiny_fp32.onnx"), "--baseline", str(FIXTURES / "tiny_fp32.onnx"),
                 "--target", "{b}", "--no-measure"], TARGET_PROBLEMS)
    # gate baselines given as an earlier run's JSON
    add("gate-baseline", ["gate", str(FIXTURES / "tiny_fp32.onnx"), "--baseline", "{b}", "--no-measure"],
        BASE_PROBLEMS)
    return c


def _hf_cases() -> list[Case]:
    c = [Case("hf-compress", ("hf-compress", "--teacher", "hf:{b}", "--output", "{out}"), k, v)
         for k, v in HF_PROBLEMS.items()]
    c += [Case("compress-hf", ("compress", "--teacher", "hf:{b}", "--output", "{out}"), k, v)
          for k, v in HF_PROBLEMS.items()]
    return c


CASES = _cases()


def _run(argv: list[str], capsys) -> tuple[int, str]:
    from edgekd.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().err


def _check(case: Case, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    paths = {k: str(v) for k, v in inputs.items()}
    argv = [a.replace("{b}", paths[case.broken]).replace("{out}", str(out)).format(**paths)
            if "{" in a else a for a in case.argv]
    code, err = _run(argv, capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert code not in (0, None), f"{case.id}: exit 0\n{err}"
    assert len(errors) == 1 and lines[-1] == errors[0], f"{case.id}: want one error line last\n{err}"
    assert "Traceback" not in err and "internal error" not in err, f"{case.id}:\n{err}"
    line = errors[0].lower()
    assert Path(paths[case.broken]).name.lower() in line, f"{case.id}: the line does not name the file: {line}"
    assert case.needle.lower() in line, f"{case.id}: '{case.needle}' not in: {line}"
    left = [p for p in out.rglob("*") if p.suffix in MODEL_SUFFIXES or ".partial" in p.name] if out.exists() else []
    assert not left, f"{case.id}: model files left behind: {left}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input(case, inputs, tmp_path, capsys):
    _check(case, inputs, tmp_path, capsys)


@pytest.mark.parametrize("case", _hf_cases(), ids=[c.id for c in _hf_cases()])
def test_broken_hf_input(case, inputs, tmp_path, capsys):
    pytest.importorskip("transformers")
    _check(case, inputs, tmp_path, capsys)


TEXT_CASES = [Case("hf-compress", ("hf-compress", "--teacher", "hf:{hf_dir}", "--data", "{b}", "--output", "{out}"),
                   k, v) for k, v in TEXT_PROBLEMS.items()]


@pytest.fixture(scope="module")
def tiny_hf_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    from test_hf_helpers import make_tiny_bert  # the HF tests' own tiny model

    return make_tiny_bert(tmp_path_factory.mktemp("hf"), "embedding")


@pytest.mark.parametrize("case", TEXT_CASES, ids=[c.id for c in TEXT_CASES])
def test_broken_text_data(case, inputs, tiny_hf_dir, tmp_path, capsys):
    merged = dict(inputs, hf_dir=tiny_hf_dir)
    _check(case, merged, tmp_path, capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
@pytest.mark.parametrize("flag", ["--data", "--teacher-weights"])
def test_unreadable_file(flag, inputs, tmp_path, capsys):
    src = inputs["npz_good"] if flag == "--data" else inputs["good_pt"]
    locked = tmp_path / f"locked{src.suffix}"
    shutil.copy(src, locked)
    locked.chmod(0)
    argv = ["distill", "--teacher", f"{inputs['teacher']}:build", "--teacher-weights", str(inputs["good_pt"]),
            "--data", str(inputs["npz_good"]), "--epochs", "1", "--output", str(tmp_path / "out"), "--no-progress"]
    argv[argv.index(flag) + 1] = str(locked)
    code, err = _run(argv, capsys)
    assert code != 0 and err.strip().splitlines()[-1].startswith("error:") and locked.name in err


def test_table_size():
    """The closing note quotes this count; keep the table broad."""
    assert len(CASES) + 2 * len(HF_PROBLEMS) + len(TEXT_CASES) >= 150


# ---------------------------------------------------------------- usage errors (click's, not ours)

USAGE_CASES = [
    (["distill", "--epochs", "0"], "--epochs"),
    (["distill", "--time-budget", "-1"], "--time-budget"),
    (["compress", "--max-drop", "-5"], "--max-drop"),
    (["compress", "--prune", "1.5"], "--prune"),
    (["prune", "--steps", "0"], "--steps"),
    (["gate", "a.onnx", "--budget-s", "-1"], "--budget-s"),
    (["distill", "--no-such-flag"], "--no-such-flag"),
    (["profile"], "model"),
    (["no-such-command"], "no-such-command"),
]


@pytest.mark.parametrize("argv,needle", USAGE_CASES, ids=[" ".join(a) for a, _ in USAGE_CASES])
def test_usage_error_is_one_line(argv, needle, capsys):
    """A bad option value is one `error:` line naming the option (typer's own is a multi-line box)."""
    code, err = _run(argv, capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0] and "--help" in lines[0] and "╭" not in err


def test_help_and_success_still_exit_zero(capsys):
    code, _ = _run(["--help"], capsys)
    assert code == 0
    code, _ = _run(["models"], capsys)
    assert code == 0


# ---------------------------------------------------------------- output paths, inputs that are already outputs


def _one_error(argv, capsys) -> str:
    code, err = _run(argv, capsys)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code not in (0, None) and lines and lines[-1].startswith("error: "), err
    assert sum(ln.startswith("error:") for ln in lines) == 1 and "Traceback" not in err and "internal error" not in err, err
    return lines[-1]


ONNX = str(FIXTURES / "tiny_fp32.onnx")


@pytest.mark.parametrize("argv", [
    ["export", T, "--weights", "{good_pt}", "--data", "{npz_good}", "--format", "onnx", "--output", "{d}"],
    ["quantize", ONNX, "--data", "{npz_good}", "--output", "{d}"],
    ["gate", ONNX, "--baseline", ONNX, "--no-measure", "--output", "{d}"],
    ["gate", ONNX, "--baseline", ONNX, "--no-measure", "--html", "{d}"],
], ids=["export", "quantize", "gate-output", "gate-html"])
def test_output_is_an_existing_directory(argv, inputs, tmp_path, capsys):
    d = tmp_path / ("m.onnx" if argv[0] != "gate" else "report.json")
    d.mkdir()
    paths = {k: str(v) for k, v in inputs.items()} | {"d": str(d)}
    line = _one_error([a.format(**paths) if "{" in a else a for a in argv], capsys)
    assert "existing directory" in line and d.name in line
    assert d.is_dir() and not any(d.iterdir()) and not list(tmp_path.glob(".*partial*"))


def test_output_under_a_file(inputs, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    line = _one_error(["export", T.format(teacher=inputs["teacher"]), "--weights", str(inputs["good_pt"]), "--data",
                       str(inputs["npz_good"]), "--format", "onnx", "--output", str(tmp_path / "f" / "m.onnx")], capsys)
    assert "is a file" in line


def test_quantize_refuses_to_overwrite_its_input(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    shutil.copy(ONNX, src)
    before = src.read_bytes()
    line = _one_error(["quantize", str(src), "--data", "digits", "--output", str(src)], capsys)
    assert "input file" in line and src.read_bytes() == before


def test_prune_refuses_to_overwrite_its_weights(inputs, tmp_path, capsys):
    w = tmp_path / "w.pt"
    shutil.copy(inputs["good_pt"], w)
    before = w.read_bytes()
    line = _one_error(["prune", "--model", f"{inputs['teacher']}:build", "--model-weights", str(w), "--ratio", "0.3",
                       "--data", str(inputs["npz_good"]), "--output", str(w)], capsys)
    assert "input file" in line and w.read_bytes() == before


# ---------------------------------------------------------------- quantize: the source must be float and fit the data


def test_quantize_refuses_an_already_quantized_file(tmp_path, capsys):
    from onnxruntime.quantization import quantize_dynamic

    q = tmp_path / "q.onnx"
    quantize_dynamic(ONNX, q)
    for src, out in ((q, tmp_path / "o.onnx"), (FIXTURES / "tiny_int8.tflite", tmp_path / "o.tflite")):
        line = _one_error(["quantize", str(src), "--data", "digits", "--output", str(out)], capsys)
        assert "already quantized" in line and src.name in line and not out.exists()


def test_quantize_data_of_another_shape(inputs, tmp_path, capsys):
    npz = _digits_npz(tmp_path / "big.npz", x=np.zeros((200, 1, 16, 16), np.float32))
    for model in (ONNX, str(FIXTURES / "tiny_fp32.tflite")):
        out = tmp_path / f"q{Path(model).suffix}"
        line = _one_error(["quantize", model, "--data", str(npz), "--output", str(out)], capsys)
        assert "(1, 16, 16)" in line and Path(model).name in line and not out.exists()


# ---------------------------------------------------------------- gate: baseline JSON with wrong field types, limits


@pytest.mark.parametrize("field,value", [("size_bytes", "big"), ("size_bytes", -5), ("ops", [1, 2]),
                                         ("inputs", "x"), ("macs", True)])
def test_gate_baseline_json_with_a_bad_field(field, value, tmp_path, capsys):
    from edgekd.inspect import model_info

    info = model_info(ONNX) | {field: value}
    base = tmp_path / "base.json"
    base.write_text(json.dumps(info))
    line = _one_error(["gate", ONNX, "--baseline", str(base), "--no-measure"], capsys)
    assert "base.json" in line and f"'{field}'" in line


@pytest.mark.parametrize("flag", ["--max-size-growth", "--max-macs-growth"])
def test_gate_negative_growth_limit(flag, capsys):
    line = _one_error(["gate", ONNX, "--baseline", ONNX, "--no-measure", flag, "-1"], capsys)
    assert flag.lstrip("-").replace("-", "_") in line


# ---------------------------------------------------------------- recipe numbers that are not finite


@pytest.mark.parametrize("extra,key", [(["--lr", "nan"], "lr"), (["--set", "train.weight_decay=inf"], "weight_decay"),
                                       (["--recipe", "hinton", "--set", "kd.temperature=nan"], "temperature")])
def test_recipe_number_not_finite(extra, key, inputs, tmp_path, capsys):
    """NaN slipped past every `< lo` check: an internal error from the optimizer, or a run training on NaN."""
    line = _one_error(["distill", "--teacher", f"{inputs['teacher']}:build", "--teacher-weights", str(inputs["good_pt"]),
                       "--data", str(inputs["npz_good"]), "--epochs", "1", "--output", str(tmp_path / "o"),
                       "--no-progress", *extra], capsys)
    assert key in line and "finite" in line and not list((tmp_path / "o").glob("*.pt"))


@pytest.mark.parametrize("extra", [["--lr", "0"], ["--set", "train.lr=0"]])
def test_zero_learning_rate_is_refused(extra, inputs, tmp_path, capsys):
    """lr 0 passed the >= 0 check: the run trained nothing and reported a student as if it had."""
    line = _one_error(["distill", "--teacher", f"{inputs['teacher']}:build", "--teacher-weights", str(inputs["good_pt"]),
                       "--data", str(inputs["npz_good"]), "--epochs", "1", "--output", str(tmp_path / "o"),
                       "--no-progress", *extra], capsys)
    assert "train.lr" in line and "above 0" in line and not list((tmp_path / "o").glob("*.pt"))


@pytest.mark.parametrize("opset", ["3", "99"])
def test_export_opset_out_of_range(opset, inputs, tmp_path, capsys):
    """Was a 16-line onnxscript traceback, exit 0 and a file at opset 18 whatever was asked."""
    out = tmp_path / "m.onnx"
    code, err = _run(["export", f"{inputs['teacher']}:build", "--weights", str(inputs["good_pt"]), "--data",
                      str(inputs["npz_good"]), "--format", "onnx", "--opset", opset, "--output", str(out)], capsys)
    assert code != 0 and "Traceback" not in err and f"--opset {opset}" in err.strip().splitlines()[-1]
    assert not out.exists()


# ---------------------------------------------------------------- data too small, or with fewer classes than the teacher


def _distill_argv(inputs, data, out, *extra):
    return ["distill", "--teacher", f"{inputs['teacher']}:build", "--teacher-weights", str(inputs["good_pt"]),
            "--data", str(data), "--epochs", "1", "--student", "cnn-s", "--output", str(out), "--no-progress", *extra]


def test_distill_one_training_sample(inputs, tmp_path, capsys):
    """Was an internal error from batch norm ('Expected more than 1 value per channel')."""
    npz = _digits_npz(tmp_path / "three.npz", x=np.zeros((3, 1, 8, 8), np.float32), y=np.array([0, 1, 2]))
    line = _one_error(_distill_argv(inputs, npz, tmp_path / "o"), capsys)
    assert "three.npz" in line and "training sample" in line and not list((tmp_path / "o").glob("*.pt"))


def test_distill_last_batch_of_one_trains(inputs, tmp_path, capsys):
    """144 training samples with batch 143 left a batch of one at the end of the epoch: batch norm crashed."""
    code, err = _run(_distill_argv(inputs, inputs["npz_good"], tmp_path / "o", "--batch-size", "143"), capsys)
    assert code == 0, err
    assert (tmp_path / "o" / "best.pt").is_file()


def test_distill_data_with_fewer_classes_than_the_teacher(inputs, tmp_path, capsys):
    """The student takes the teacher's 10 classes (was: 'student predicts 3 classes but the teacher 10')."""
    import torch

    y = np.arange(200, dtype=np.int64) % 3
    npz = _digits_npz(tmp_path / "three_classes.npz", y=y)
    code, err = _run(_distill_argv(inputs, npz, tmp_path / "o"), capsys)
    assert code == 0, err
    state = torch.load(tmp_path / "o" / "best.pt", weights_only=True)
    state = state.get("student", state.get("state_dict", state)) if isinstance(state, dict) else state
    heads = [v for k, v in state.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 2]
    assert heads and heads[-1].shape[0] == 10


def test_profile_absurd_thread_count(capsys):
    """Was a 160 s hang (ONNX Runtime starting 100000 threads) ending in 'timed out'."""
    line = _one_error(["profile", ONNX, "--target", "host", "--runs", "2", "--threads", "100000"], capsys)
    assert "threads 100000" in line


def test_quantize_few_calibration_samples_warns(tmp_path, capsys):
    code, err = _run(["quantize", ONNX, "--data", "digits", "--calib-samples", "2", "--output",
                      str(tmp_path / "q.onnx")], capsys)
    assert code == 0 and "calibrated on only 2 sample(s)" in err and "Traceback" not in err


@pytest.mark.parametrize("drop", ["500", "nan"])
def test_quantize_max_drop_out_of_range(drop, tmp_path, capsys):
    line = _one_error(["quantize", ONNX, "--data", "digits", "--max-drop", drop, "--output", str(tmp_path / "q.onnx")],
                      capsys)
    assert "--max-drop" in line and not (tmp_path / "q.onnx").exists()


def test_quantize_dynamic_prints_no_library_log(tmp_path):
    """A subprocess: pytest's own log handler would swallow the root-logger line the user saw."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgekd.cli", "quantize", ONNX, "--data", "digits", "--mode", "dynamic",
                           "--output", str(tmp_path / "q.onnx")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "WARNING:root" not in proc.stderr, proc.stderr


def test_unreadable_images_are_said_outside_compress(inputs, tmp_path, capsys):
    """An image folder's unreadable file was skipped silently by distill/quantize/export (compress said so)."""
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp_path / "imgs" / c / f"{i}.png")
    (tmp_path / "imgs" / "a" / "fake.png").write_text("not a png")
    (tmp_path / "imgs" / "a" / "notes.txt").write_text("not an image, not counted")
    code, err = _run(["quantize", ONNX, "--data", str(tmp_path / "imgs"), "--output", str(tmp_path / "q.onnx")], capsys)
    assert code == 0 and "1 unreadable file(s)" in err and "fake.png" in err, err


def test_gate_baseline_of_another_format_warns(capsys):
    """An ONNX candidate against a TFLite baseline passed with no word about the formats."""
    code, out = _run_out(["gate", ONNX, "--baseline", str(FIXTURES / "tiny_fp32.tflite"), "--no-measure", "--json"],
                         capsys)
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0 and checks["format"]["status"] == "warn" and "tflite" in checks["format"]["message"]


def _run_out(argv, capsys) -> tuple[int, str]:
    from edgekd.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr().out
