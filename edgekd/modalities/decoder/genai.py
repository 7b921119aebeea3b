"""The decoder student as an onnxruntime-genai model folder (genai_config.json + model.onnx + tokenizer files), the
format onnxruntime-genai's phone runtimes load, made by the package's own model builder
(onnxruntime_genai.models.builder) from the saved HF student directory; generation through og.Generator.

Glue for this stack: onnxruntime-genai 0.18's builder is written against transformers 5 (it imports two Qwen3.5
classes and reads ``config.rope_parameters``); edgekd holds transformers < 4.58 for optimum-onnx 0.1. The two
missing class names are stood in for while the builder imports (no Qwen3.5 model is built through them) and the
4.57 config's ``rope_theta`` / ``rope_scaling`` are given to the builder in the transformers-5 form.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
from pathlib import Path

# HF text-decoder architectures the 0.18 builder dispatches (builder.create_model); others get a note, not a file.
SUPPORTED = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "PhiForCausalLM",
             "Phi3ForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM", "GraniteForCausalLM", "OlmoForCausalLM",
             "NemotronForCausalLM", "SmolLM3ForCausalLM", "InternLM2ForCausalLM", "Ernie4_5ForCausalLM")
_TF5_NAMES = ("Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration")
LOADER = "onnxruntime_genai: og.Model(dir), og.Tokenizer(model), og.Generator(model, og.GeneratorParams(model))"


def available() -> str | None:
    """None when onnxruntime-genai imports, else why not (one line)."""
    try:
        import onnxruntime_genai  # noqa: F401
    except Exception as exc:  # ImportError, or a shared-library load failure
        return f"onnxruntime-genai is not installed or does not load ({type(exc).__name__}: {exc}); pip install edgekd[decoder]"
    return None


def blocker(student_dir: str | Path) -> str | None:
    """Why no genai folder can be made for this student (one line), or None."""
    if why := available():
        return why
    cfg = json.loads((Path(student_dir) / "config.json").read_text())
    arch = (cfg.get("architectures") or ["?"])[0]
    if arch not in SUPPORTED:
        return (f"onnxruntime-genai's model builder has no {arch} (it builds "
                f"{', '.join(a.removesuffix('ForCausalLM') for a in SUPPORTED[:7])}, ...); no genai folder")
    heads = cfg.get("num_attention_heads") or 1
    head = cfg.get("head_dim") or cfg.get("hidden_size", 0) // heads
    if head % 16:
        return (f"head size {head} is not a multiple of 16, which onnxruntime's CPU GroupQueryAttention (the builder's "
                f"attention op) requires; no genai folder")
    return None


def _builder():
    """onnxruntime_genai.models.builder, imported beside transformers 4.57 (see the module docstring)."""
    from edgekd.hf.offline import hf_offline

    hf_offline()
    import transformers

    added = [n for n in _TF5_NAMES if not hasattr(transformers, n)]
    for n in added:
        setattr(transformers, n, type(n, (), {}))
    try:
        from onnxruntime_genai.models import builder
    finally:
        for n in added:
            delattr(transformers, n)
    return builder


def _tf5_rope(config) -> None:
    """transformers 5 keeps rope_theta and the scaling in config.rope_parameters; the 0.18 builder reads that."""
    if not isinstance(getattr(config, "rope_parameters", None), dict):
        scaling = dict(getattr(config, "rope_scaling", None) or {})
        scaling.setdefault("rope_type", scaling.pop("type", "default"))
        config.rope_parameters = {"rope_theta": getattr(config, "rope_theta", 10000.0), **scaling}
    config.rope_scaling = {}


def build_genai(student_dir: str | Path, out: str | Path, precision: str = "int4") -> Path:
    """The genai folder for the HF decoder directory (precision int4 | fp32, CPU); returns out. Written to a
    sibling temporary folder and renamed, so a failed build leaves nothing that looks finished."""
    from edgekd.errors import EdgeKDError

    if precision not in ("int4", "fp32"):
        raise EdgeKDError(f"genai precision must be int4 or fp32, not {precision!r}")
    if why := blocker(student_dir):
        raise EdgeKDError(why)
    b = _builder()
    src, out = str(Path(student_dir).resolve()), Path(out)
    tmp, cache = out.with_name(out.name + ".partial"), out.with_name(out.name + ".cache.partial")
    for d in (tmp, cache):
        shutil.rmtree(d, ignore_errors=True)
    log, quiet = io.StringIO(), logging.getLogger("onnxruntime.quantization")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the MatMulNBits quantizer logs every MatMul at INFO
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            opts = b.parse_extra_options(src, src, str(tmp), precision, "cpu", str(cache), [])
            _tf5_rope(opts["hf_details"]["hf_config"])
            b.create_model(src, src, str(tmp), precision, "cpu", str(cache), **opts)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = " ".join(log.getvalue().split()[-30:])
        raise EdgeKDError(f"onnxruntime-genai model builder failed on {student_dir}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''} [{tail[-300:]}]") from exc
    finally:
        quiet.setLevel(level)
        shutil.rmtree(cache, ignore_errors=True)
    if not (tmp / "genai_config.json").is_file():
        raise EdgeKDError(f"onnxruntime-genai model builder wrote no genai_config.json for {student_dir}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _model(path: str | Path, threads: int):
    import onnxruntime_genai as og

    cfg = og.Config(str(path))
    cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads,
                                                                        "inter_op_num_threads": 1}}}}))
    return og.Model(cfg)


class GenaiDecoder:
    """A genai folder through onnxruntime_genai: greedy token ids, and full-sequence logits (prefill) for scoring."""

    def __init__(self, path: str | Path, threads: int = 2):
        import onnxruntime_genai as og

        self.og, self.model = og, _model(path, threads)
        self.context = json.loads((Path(path) / "genai_config.json").read_text())["model"]["context_length"]

    def _gen(self, max_length: int, min_length: int = 0):
        p = self.og.GeneratorParams(self.model)
        # greedy; stops at EOS as transformers' generate does, unless min_length holds EOS back (timing)
        p.set_search_options(do_sample=False, max_length=max_length, min_length=min_length)
        return self.og.Generator(self.model, p)

    def greedy(self, ids, n: int) -> list[int]:
        """Up to n greedy tokens after the prompt (a 1 x L id array or list), through og.Generator; fewer when
        the model emits EOS (the EOS token is the last one)."""
        import numpy as np

        prompt = np.asarray(ids, np.int32).reshape(-1)
        g = self._gen(min(self.context, len(prompt) + n))
        g.append_tokens(prompt)
        out = []
        while len(out) < n and not g.is_done():
            g.generate_next_token()
            out.append(int(g.get_next_tokens()[0]))
        return out

    def logits(self, batch: dict):
        """Logits of every row (1 prefill each over its unpadded tokens); padded positions are zero."""
        import numpy as np

        ids, mask = batch["input_ids"], batch["attention_mask"]
        out = None
        for i, row in enumerate(ids):
            n = int(mask[i].sum())
            g = self._gen(min(self.context, n + 1))
            g.append_tokens(np.asarray(row[:n], np.int32))
            lg = g.get_output("logits")[0]
            if out is None:
                out = np.zeros((*ids.shape, lg.shape[-1]), np.float32)
            out[i, :n] = lg[:n]
        return out


def first_divergence(ref: list[int], got: list[int]) -> int | None:
    """Index of the first differing greedy token (None when the two agree over the shorter length and are equal)."""
    for i, (a, b) in enumerate(zip(ref, got)):
        if a != b:
            return i
    return None if len(ref) == len(got) else min(len(ref), len(got))


def describe_folder(path: str | Path) -> dict:
    """What the builder made: its files, and the MatMulNBits settings it chose (bits, block, accuracy level)."""
    import onnx

    path = Path(path)
    g = onnx.load(str(path / "model.onnx"), load_external_data=False).graph
    q = [n for n in g.node if n.op_type == "MatMulNBits"]
    out = {"files": sorted(f.name for f in path.iterdir()), "matmulnbits": len(q),
           "attention": sorted({n.op_type for n in g.node if "Attention" in n.op_type})}
    if q:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in q[0].attribute}
        out.update({k: attrs[k] for k in ("bits", "block_size", "accuracy_level") if k in attrs})
    return out


def builder_version() -> str:
    import onnxruntime_genai

    return f"onnxruntime-genai {onnxruntime_genai.__version__}"


def measure_genai(path: str | Path, prompt, *, new_tokens: int, threads: int, runs: int, max_seconds: float = 60) -> dict:
    """A Latency dict of the genai folder through og.Generator: p50 = ms per decoded token, prefill (append_tokens of
    the prompt) beside it; rounds of prefill + new_tokens greedy steps, one warm-up round."""
    import time

    import numpy as np
    import onnxruntime

    from edgekd.hf.runtime import where_host
    from edgekd.runtime import Latency
    from edgekd.runtime.stats import summarize

    dec = GenaiDecoder(path, threads=threads)
    ids = np.asarray(prompt, np.int32).reshape(-1)
    pre, per_tok, t_end = [], [], time.perf_counter() + max_seconds
    for r in range(runs + 1):
        total = min(dec.context, len(ids) + new_tokens)
        g = dec._gen(total, min_length=total)  # EOS held back: every round decodes new_tokens
        t0 = time.perf_counter()
        g.append_tokens(ids)
        t1 = time.perf_counter()
        n = 0
        while n < new_tokens and not g.is_done():  # the first step picks the prefill's token: n-1 forwards
            g.generate_next_token()
            n += 1
        t2 = time.perf_counter()
        if n < 2:
            from edgekd.errors import EdgeKDError

            raise EdgeKDError(f"{path}: og.Generator stopped after {n} token(s); nothing to time")
        if r:  # round 0 warms up
            pre.append((t1 - t0) * 1e3)
            per_tok.append((t2 - t1) * 1e3 / max(1, n - 1))
        if r >= 3 and time.perf_counter() > t_end:
            break
    import onnxruntime_genai

    rt = f"onnxruntime-genai {onnxruntime_genai.__version__} (onnxruntime {onnxruntime.__version__} CPU EP)"
    where = (where_host(rt, threads, len(ids)).replace(", seq ", ", prompt ") +
             f", {new_tokens} greedy tokens through og.Generator, timed after the other files (not interleaved); not a phone")
    p50_pre = summarize(pre)["p50_ms"]
    return Latency.from_ms(per_tok, warmup=1, threads=threads, runtime=rt, kind="measured", where=where, extra={
        "metric": "ms per decoded token", "prompt_len": len(ids), "new_tokens": new_tokens,
        "prefill_ms_p50": round(p50_pre, 3), "time_to_first_token_ms": round(p50_pre, 3),
        "decode_tokens_per_s": round(1000.0 / summarize(per_tok)["p50_ms"], 2)}).to_dict()
