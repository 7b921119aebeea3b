"""GGUF teachers (llama.cpp's format): `gguf:FILE`, or `hf:DIR` holding one .gguf file and no config.json.

transformers reads the file with the `gguf` package and dequantises every tensor to fp32, so a Q4 file gives
a real but slightly degraded teacher (its weights were 4-bit): reports say so through HFTeacher.gguf_file.
"""

from __future__ import annotations

from pathlib import Path

from edgekd.errors import EdgeKDError

MAGIC = b"GGUF"


def find_gguf(spec: str | Path) -> tuple[Path, str]:
    """A .gguf file, or a directory holding exactly one -> (directory, file name). The header is checked
    here so a truncated or foreign file is one line, not a parser traceback."""
    p = Path(spec).expanduser()
    if p.is_dir():
        found = sorted(p.glob("*.gguf"))
        if len(found) != 1:
            raise EdgeKDError(f"{p}: want exactly one .gguf file in the directory, found {len(found)}")
        p = found[0]
    if not p.is_file():
        raise EdgeKDError(f"GGUF teacher {p} does not exist")
    with open(p, "rb") as f:
        head = f.read(8)
    if head[:4] != MAGIC or len(head) < 8:
        raise EdgeKDError(f"{p} is not a GGUF file (no GGUF header): truncated, corrupt or another format")
    return p.parent, p.name


def load_gguf(directory: Path, name: str):
    """(model, tokenizer) from the GGUF file, dequantised to fp32 (needs transformers' gguf support)."""
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise EdgeKDError("GGUF teachers need the gguf package (pip install 'edgekd[decoder]')")
    import torch
    import transformers as tf

    try:
        tok = tf.AutoTokenizer.from_pretrained(directory, gguf_file=name, local_files_only=True)
        model = tf.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, local_files_only=True,
                                                        dtype=torch.float32, attn_implementation="eager")
    except Exception as exc:  # the gguf reader raises ValueError, KeyError, struct/numpy errors on a bad file
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise EdgeKDError(f"cannot load the GGUF teacher {directory / name}: {msg}") from None
    _forget_gguf_vocab(tok)
    _gguf_eos(tok, model)
    return model, tok


def _gguf_eos(tok, model) -> None:
    """transformers 4.57's GGUF Llama tokenizer converter takes eos_token from tokens[bos_token_id], so SmolLM2's
    tokenizer said eos = <|im_start|> (its BOS) while the file and the model config say <|im_end|>. Texts were packed
    with that BOS between them and padded with it; the model config's eos (read from the file) is put back."""
    eos = getattr(model.config, "eos_token_id", None)
    if isinstance(eos, int) and 0 <= eos < len(tok) and tok.eos_token_id != eos:
        tok.eos_token = tok.convert_ids_to_tokens(eos)


def _forget_gguf_vocab(tok) -> None:
    """transformers records the GGUF file as a tokenizer's `vocab_file`; sentencepiece-style fast tokenizers
    (Llama's, Phi-3's) then copy that file as `tokenizer.model` on every save_pretrained — the whole teacher's
    weights (~100 MB for SmolLM2) in student/, teacher-hf/, onnx*/ and genai/. The converted tokenizer.json is the
    tokenizer; without a vocab_file the slow copy is not written."""
    vf = getattr(tok, "vocab_file", None)
    if vf and _is_gguf(vf):
        tok.vocab_file = None
        tok.init_kwargs.pop("vocab_file", None)


def _is_gguf(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == MAGIC
    except OSError:
        return False


def gguf_note(name: str) -> str:
    return (f"The teacher was read from the GGUF file {name}: its weights are quantised (e.g. Q4: 4-bit) and were "
            "dequantised to fp32, so it is a real but slightly degraded teacher.")
