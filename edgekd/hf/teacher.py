"""Load a Hugging Face teacher from a local model directory (`hf:PATH`), fully offline.

The teacher's kind decides the losses and the export task:
- "mlm": a *ForMaskedLM head (token distributions -> soft CE at T + MLM hard loss),
- "classification": a *ForSequenceClassification head (soft CE + hard CE when labels exist),
- "embedding": a bare encoder used as a sentence embedder (sentence-transformers layout honoured:
  pooling mode from 1_Pooling/config.json, L2 normalisation when modules.json lists Normalize),
- "causal-lm": a decoder language model (*ForCausalLM, GPT2LMHeadModel ...): token-level KD over the
  vocabulary + next-token CE; the directory may hold a GGUF file instead of HF weights (edgekd.hf.gguf).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError
from edgekd.hf.offline import hf_offline

KINDS = ("embedding", "mlm", "classification", "causal-lm")
EXPORT_TASK = {"embedding": "feature-extraction", "mlm": "fill-mask", "classification": "text-classification",
               "causal-lm": "text-generation-with-past"}  # decoders: ONNX with KV-cache inputs/outputs


@dataclass
class HFTeacher:
    path: Path
    model: Any  # transformers.PreTrainedModel, eval mode
    tokenizer: Any
    kind: str
    pooling: str = "mean"  # mean | cls (embedding kind)
    normalize: bool = True
    max_length: int = 128
    st_files: list[str] = field(default_factory=list)  # sentence-transformers files to copy beside the student
    gguf_file: str | None = None  # the weights came from this GGUF file in `path` (dequantised to fp32)

    @property
    def config(self):
        return self.model.config

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def export_task(self) -> str:
        return EXPORT_TASK[self.kind]


def parse_hf_spec(spec: str | Path) -> Path:
    """`hf:PATH`, `gguf:FILE` or a plain path -> the model directory (must hold config.json, or one .gguf file)."""
    from edgekd.hf.gguf import find_gguf

    s = str(spec)
    if s.startswith("gguf:"):
        return find_gguf(s[5:])[0]
    if s.startswith("hf:"):
        s = s[3:]
    if not s:
        raise EdgeKDError("empty Hugging Face teacher spec: want hf:PATH to a local model directory")
    p = Path(s).expanduser()
    if not p.is_dir():
        raise EdgeKDError(f"Hugging Face teacher directory {p} does not exist (want hf:PATH, offline; nothing is downloaded)")
    if not (p / "config.json").is_file() and not list(p.glob("*.gguf")):
        raise EdgeKDError(f"{p} is not a Hugging Face model directory: no config.json (nor a .gguf file)")
    return p


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeKDError(f"cannot read {p}: {exc}") from None


def detect_kind(config) -> str:
    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal-lm"
    if any(a.endswith("ForMaskedLM") for a in archs):
        return "mlm"
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "classification"
    return "embedding"


def _st_settings(path: Path) -> tuple[str, bool, int | None, list[str]]:
    """Pooling / normalisation / max length from a sentence-transformers layout, if present."""
    pooling, normalize, max_len, files = "mean", True, None, []
    modules = path / "modules.json"
    if modules.is_file():
        files.append("modules.json")
        mods = _read_json(modules)
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in mods)
        for m in mods:
            if str(m.get("type", "")).endswith("Pooling"):
                cfg = path / m.get("path", "1_Pooling") / "config.json"
                if cfg.is_file():
                    files.append(str(cfg.relative_to(path)))
                    pc = _read_json(cfg)
                    if pc.get("pooling_mode_cls_token"):
                        pooling = "cls"
                    elif not pc.get("pooling_mode_mean_tokens", True):
                        raise EdgeKDError(f"{cfg}: only mean or CLS pooling is supported")
    for name in ("sentence_bert_config.json", "config_sentence_transformers.json"):
        if (path / name).is_file():
            files.append(name)
            if name == "sentence_bert_config.json":
                max_len = _read_json(path / name).get("max_seq_length")
    return pooling, normalize, max_len, files


def check_transformers_version(version: str) -> None:
    """transformers 5 (which litert-torch pulls in when the hf extra is not installed) loads these models differently:
    tokenizer-less models load, MLM outputs turn NaN (make test-compat saw both), so refuse it in one line."""
    if int(version.split(".")[0]) >= 5:
        raise EdgeKDError(f"transformers {version} is not supported: edgekd's Hugging Face support is tested with 4.57 "
                          "(optimum-onnx 0.1 needs <4.58): pip install 'edgekd[hf]'")


def _auto_class(kind: str):
    import transformers as tf

    return {"embedding": tf.AutoModel, "mlm": tf.AutoModelForMaskedLM, "causal-lm": tf.AutoModelForCausalLM,
            "classification": tf.AutoModelForSequenceClassification}[kind]


def _load_tokenizer(path: Path, **kw):
    import transformers as tf

    try:
        return tf.AutoTokenizer.from_pretrained(path, local_files_only=True, **kw)
    except Exception as exc:  # a missing vocabulary surfaces as OSError, ValueError or even TypeError
        raise EdgeKDError(f"cannot load a tokenizer from {path} (tokenizer.json or the vocabulary files; the student "
                          f"keeps the teacher's tokenizer): {type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from None


def _load_hf_dir(path: Path, kind: str | None):
    """(model, tokenizer, kind) from a directory with config.json and HF weights."""
    import transformers as tf

    check_transformers_version(tf.__version__)
    try:
        config = tf.AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EdgeKDError(f"cannot read the model config in {path}: {str(exc).splitlines()[0]}") from None
    kind = kind or detect_kind(config)
    if kind not in KINDS:
        raise EdgeKDError(f"unknown Hugging Face model kind {kind!r}: want one of {', '.join(KINDS)}")
    tokenizer = _load_tokenizer(path)  # before the weights: a directory without one fails fast
    try:
        # eager attention: exports to ONNX/TFLite without SDPA-specific graph pieces
        model = _auto_class(kind).from_pretrained(path, local_files_only=True, attn_implementation="eager")
    except (OSError, ValueError, KeyError) as exc:
        raise EdgeKDError(f"cannot load the Hugging Face model in {path}: {str(exc).splitlines()[0]}") from None
    return model, tokenizer, kind


def _decoder_tokenizer(tokenizer):
    """Decoders often have no pad token (GPT-2): pad with EOS (padding is masked out of every loss and score);
    right padding for training and scoring, and only the inputs the model takes."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise EdgeKDError("the decoder's tokenizer has neither a pad nor an EOS token to pad batches with")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    return tokenizer


def spec_kind(spec: str | Path) -> str:
    """The teacher's kind from its spec without loading weights (picks the modality): GGUF files are decoders."""
    s = str(spec)
    if s.startswith("gguf:"):
        return "causal-lm"
    path = parse_hf_spec(s)
    if not (path / "config.json").is_file():
        return "causal-lm"  # a directory holding a .gguf file
    from types import SimpleNamespace

    return detect_kind(SimpleNamespace(**_read_json(path / "config.json")))


def load_hf_teacher(spec: str | Path, *, kind: str | None = None, max_length: int | None = None) -> HFTeacher:
    """Load model + tokenizer from a local directory (or a GGUF file); `kind` overrides the detected one."""
    from edgekd.hf.gguf import find_gguf, load_gguf

    hf_offline()
    if str(spec).startswith("gguf:"):
        path, gguf = find_gguf(str(spec)[5:])
    else:
        path = parse_hf_spec(spec)
        gguf = None if (path / "config.json").is_file() else find_gguf(path)[1]
    if gguf:
        model, tokenizer = load_gguf(path, gguf)
        kind = "causal-lm"
    else:
        model, tokenizer, kind = _load_hf_dir(path, kind)
    model.eval()
    if getattr(model.config, "is_encoder_decoder", False) or not hasattr(model.config, "num_hidden_layers"):
        raise EdgeKDError(f"{path}: only encoder or decoder-only models are supported, got {model.config.model_type}")
    if kind == "causal-lm":
        tokenizer = _decoder_tokenizer(tokenizer)
    pooling, normalize, st_max, files = _st_settings(path)
    if kind != "embedding":
        normalize = False
    limit = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
    max_len = int(max_length or st_max or 128)
    return HFTeacher(path=path, model=model, tokenizer=tokenizer, kind=kind, pooling=pooling,
                     normalize=normalize, max_length=min(max_len, limit), st_files=files, gguf_file=gguf)
