"""Load a Hugging Face teacher from a local model directory (`hf:PATH`), fully offline.

The teacher's kind decides the losses and the export task:
- "mlm": a *ForMaskedLM head (token distributions -> soft CE at T + MLM hard loss),
- "classification": a *ForSequenceClassification head (soft CE + hard CE when labels exist),
- "embedding": a bare encoder used as a sentence embedder (sentence-transformers layout honoured:
  pooling mode from 1_Pooling/config.json, L2 normalisation when modules.json lists Normalize).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import EdgeKDError
from edgekd.hf.offline import hf_offline

KINDS = ("embedding", "mlm", "classification")
EXPORT_TASK = {"embedding": "feature-extraction", "mlm": "fill-mask", "classification": "text-classification"}


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
    """`hf:PATH` or a plain path -> the model directory (must hold config.json)."""
    s = str(spec)
    if s.startswith("hf:"):
        s = s[3:]
    if not s:
        raise EdgeKDError("empty Hugging Face teacher spec: want hf:PATH to a local model directory")
    p = Path(s).expanduser()
    if not p.is_dir():
        raise EdgeKDError(f"Hugging Face teacher directory {p} does not exist (want hf:PATH, offline; nothing is downloaded)")
    if not (p / "config.json").is_file():
        raise EdgeKDError(f"{p} is not a Hugging Face model directory: no config.json")
    return p


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeKDError(f"cannot read {p}: {exc}") from None


def detect_kind(config) -> str:
    archs = list(getattr(config, "architectures", None) or [])
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


def load_hf_teacher(spec: str | Path, *, kind: str | None = None, max_length: int | None = None) -> HFTeacher:
    """Load model + tokenizer from a local directory; `kind` overrides the detected one."""
    path = parse_hf_spec(spec)
    hf_offline()
    import transformers as tf

    check_transformers_version(tf.__version__)
    try:
        config = tf.AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EdgeKDError(f"cannot read the model config in {path}: {str(exc).splitlines()[0]}") from None
    kind = kind or detect_kind(config)
    if kind not in KINDS:
        raise EdgeKDError(f"unknown Hugging Face model kind {kind!r}: want one of {', '.join(KINDS)}")
    auto = {"embedding": tf.AutoModel, "mlm": tf.AutoModelForMaskedLM,
            "classification": tf.AutoModelForSequenceClassification}[kind]
    try:
        # eager attention: exports to ONNX/TFLite without SDPA-specific graph pieces
        model = auto.from_pretrained(path, local_files_only=True, attn_implementation="eager")
    except (OSError, ValueError, KeyError) as exc:
        raise EdgeKDError(f"cannot load the Hugging Face model in {path}: {str(exc).splitlines()[0]}") from None
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # a missing vocabulary surfaces as OSError, ValueError or even TypeError
        raise EdgeKDError(f"cannot load a tokenizer from {path} (tokenizer.json or the vocabulary files; the student "
                          f"keeps the teacher's tokenizer): {type(exc).__name__}: {str(exc).splitlines()[0][:160]}") from None
    model.eval()
    if getattr(model.config, "is_encoder_decoder", False) or not hasattr(model.config, "num_hidden_layers"):
        raise EdgeKDError(f"{path}: only encoder models (BERT-like) are supported, got {model.config.model_type}")
    pooling, normalize, st_max, files = _st_settings(path)
    if kind != "embedding":
        normalize = False
    limit = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 512)
    max_len = int(max_length or st_max or 128)
    return HFTeacher(path=path, model=model, tokenizer=tokenizer, kind=kind, pooling=pooling,
                     normalize=normalize, max_length=min(max_len, limit), st_files=files)
