"""`edgekd compress --teacher hf:DIR` with a tiny random GPT-2: the decoder adapter on the one pipeline, the same
report writer; resume; a decoder directory without a tokenizer is a one-line CLI error."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("transformers")
pytest.importorskip("optimum.exporters.onnx")

from decoder_helpers import make_tiny_decoder  # noqa: E402
from test_hf_helpers import random_texts  # noqa: E402


def _cli(*args) -> int:
    from edgekd.cli import main

    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dec")
    teacher = make_tiny_decoder(root / "teacher", "gpt2")
    data = root / "texts.txt"
    data.write_text("\n".join(random_texts(96)))  # a few training blocks: the CLI's route and report are under test
    code = _cli("compress", "--teacher", f"hf:{teacher}", "--data", str(data), "--target", "host", "--output",
                str(root / "out"), "--runs", "3", "--threads", "1", "--eval-samples", "8", "--json")
    assert code == 0
    return {"root": root, "teacher": teacher, "data": data, "report": json.loads((root / "out" / "report.json").read_text())}


@pytest.mark.slow
def test_compress_ships_decoder_with_one_report(run):
    r, out = run["report"], run["root"] / "out"
    assert r["kind"] == "decoder" and (out / "report.md").read_text().startswith("# edgekd compress (decoder LM)")
    arts = {a["name"]: a for a in r["artifacts"]}
    assert {"teacher", "student", "student-onnx", "student-onnx-int8", "student-onnx-int4", "teacher-onnx"} <= set(arts)
    # host declares int8 ONNX (the weight-only file; the report says so) with fp32 as a precision candidate: on a
    # model this tiny, fp32 can be faster on the host's measured figure, and then it ships with the rule's note
    assert any("weight-only" in n for n in r["notes"])
    if r["shipped"] != [arts["student-onnx-int8"]["path"]]:
        assert r["shipped"] == [arts["student-onnx"]["path"]]
        assert any("fp32 ships instead of int8" in n for n in r["notes"]), r["notes"]
    assert arts["student-onnx"]["extra"]["parity_vs_student"]["max_abs_logit_diff"] < 1e-3
    assert arts["student-onnx"]["extra"]["parity_vs_student"]["same_greedy_tokens"] == 1.0
    assert r["greedy"]["optimum_generate_same_tokens"] == 1.0 and len(r["greedy"]["prompts"]) >= 1
    for name in ("student-onnx", "student-onnx-int8", "student-onnx-int4", "teacher-onnx"):
        lat = arts[name]["latency"]
        assert lat["kind"] == "measured" and lat["decode_tokens_per_s"] > 0 and lat["prefill_ms_p50"] > 0
        assert 0 <= arts[name]["accuracy"] <= 100 and arts[name]["extra"]["perplexity"] > 1
    assert r["student"]["layers"] == [0, 3] and set(r["perplexity"]) >= {"teacher", "student", "student-onnx-int4"}
    assert r["size_ratio_vs_student_onnx"]["student-onnx-int4"] < 1 and "student-onnx" in r["decode_speedup_vs_teacher_onnx"]
    assert any("fixed-window" in n for n in r["notes"])  # TFLite without KV cache, and why
    # int4 is GPTQ by default; this tiny decoder's 32-wide rows are one block, which ORT's GPTQ packing cannot take,
    # so the file rounds to nearest and both the scheme and a note say why
    scheme = arts["student-onnx-int4"]["extra"]["scheme"]
    assert "GPTQ on" in scheme or ("GPTQ failed" in scheme and any("GPTQ failed" in n for n in r["notes"])), scheme
    if importlib.util.find_spec("onnxruntime_genai"):  # GPT-2: the genai model builder has none, one line says so
        assert any("No onnxruntime-genai folder" in n and "GPT2LMHeadModel" in n for n in r["notes"]), r["notes"]
    tfl = arts["student-tflite"]
    assert tfl["extra"]["parity_vs_student"]["max_abs_logit_diff"] < 1e-3 and tfl["latency"]["kind"] == "measured"
    assert not list(out.glob(".*partial*"))


@pytest.mark.slow
def test_rerun_skips_every_stage(run, capsys):
    capsys.readouterr()
    code = _cli("compress", "--teacher", f"hf:{run['teacher']}", "--data", str(run["data"]), "--target", "host",
                "--output", str(run["root"] / "out"), "--runs", "3", "--threads", "1", "--eval-samples", "8", "--json")
    assert code == 0 and "skipped 8 unchanged" in capsys.readouterr().err


def _one_line_error(capsys, code: int, what: str) -> None:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(lines) == 1 and what in lines[0] and "Traceback" not in err


def test_cli_decoder_without_tokenizer_is_one_line(tmp_path, capsys):
    d = make_tiny_decoder(tmp_path / "t", "llama", tokenizer=False)
    _one_line_error(capsys, _cli("compress", "--teacher", f"hf:{d}", "--output", str(tmp_path / "o")),
                    "cannot load a tokenizer")


def test_cli_corrupt_gguf_is_one_line(tmp_path, capsys):
    p = tmp_path / "bad.gguf"
    p.write_bytes(b"\x00" * 64)
    _one_line_error(capsys, _cli("compress", "--teacher", f"gguf:{p}", "--output", str(tmp_path / "o")),
                    "not a GGUF file")


def test_int4_head_shared_reruns_only_the_int4_file_and_shares_one_table(run, capsys):
    """hf-compress --int4-head shared on the same run directory: the int4 stage reruns (its key has the head), the
    embedding Gather reads the LM head's int4 weight, and the file is smaller than with the default int8 head."""
    import onnx

    def int4(report):
        return next(a for a in report["artifacts"] if a["name"] == "student-onnx-int4")

    out = run["root"] / "out"
    before = int4(run["report"])["size_bytes"]
    code = _cli("hf-compress", "--teacher", f"hf:{run['teacher']}", "--data", str(run["data"]), "--target", "host",
                "--output", str(out), "--runs", "3", "--threads", "1", "--eval-samples", "8", "--int4-head", "shared",
                "--json")
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    art = int4(rep)
    assert art["size_bytes"] < before and "sharing the table's int4 weight" in art["extra"]["scheme"]
    g = onnx.load(out / art["path"] if not str(art["path"]).startswith("/") else art["path"]).graph
    gbq = next(n for n in g.node if n.op_type == "GatherBlockQuantized")
    assert any(n.op_type == "Reshape" and n.output[0] == gbq.input[0] for n in g.node)


def test_cli_bad_int4_head_is_one_line(tmp_path, capsys):
    d = make_tiny_decoder(tmp_path / "t", "gpt2")
    _one_line_error(capsys, _cli("hf-compress", "--teacher", f"hf:{d}", "--int4-head", "fp16", "--output",
                                 str(tmp_path / "o")), "int4 head 'fp16'")


def test_cli_bad_int4_algo_is_one_line(tmp_path, capsys):
    d = make_tiny_decoder(tmp_path / "t", "gpt2")
    _one_line_error(capsys, _cli("hf-compress", "--teacher", f"hf:{d}", "--int4-algo", "awq", "--output",
                                 str(tmp_path / "o")), "int4 algorithm 'awq'")


def test_intermediate_size_reaches_the_decoder_config(tmp_path, monkeypatch):
    """--intermediate-size is the decoder adapter's setting (the pipeline itself is not run here)."""
    import importlib

    pc = importlib.import_module("edgekd.pipeline.compress")  # the module: the package exports its function
    seen = {}
    monkeypatch.setattr(pc, "run_pipeline", lambda modality, **kw: seen.setdefault("cfg", modality.cfg) and {})
    d = make_tiny_decoder(tmp_path / "t", "gpt2")
    pc.compress_hf(f"hf:{d}", output=tmp_path / "o", intermediate_size=48)
    assert seen["cfg"].intermediate_size == 48


def test_cli_intermediate_size_on_an_encoder_is_one_line(tmp_path, capsys):
    from test_hf_helpers import make_tiny_bert

    d = make_tiny_bert(tmp_path / "bert")
    _one_line_error(capsys, _cli("hf-compress", "--teacher", f"hf:{d}", "--intermediate-size", "16", "--output",
                                 str(tmp_path / "o")), "--intermediate-size narrows a decoder")
