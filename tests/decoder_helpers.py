"""Tiny random decoder LMs (GPT-2 and Llama configs) with a word-level tokenizer, built on the fly for tests."""

from __future__ import annotations

from pathlib import Path

from test_hf_helpers import WORDS


def write_tokenizer(d: Path):
    """A word-level fast tokenizer over the test vocabulary (offline; no merges to train)."""
    from edgekd.hf.offline import hf_offline

    hf_offline()  # before transformers is imported: no TensorFlow import (~10-60 s on a busy machine)
    import transformers as tf
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<pad>": 0, "<unk>": 1, "<eos>": 2}
    for w in sorted(set(WORDS)):
        vocab.setdefault(w, len(vocab))
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = tf.PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", eos_token="<eos>", bos_token="<eos>",
                                     model_input_names=["input_ids", "attention_mask"])  # GPT-2 style: no pad token
    tok.save_pretrained(d)
    return tok


def make_tiny_decoder(d: Path, arch: str = "gpt2", layers: int = 4, hidden: int = 32, seed: int = 0,
                      tokenizer: bool = True) -> Path:
    import torch

    from edgekd.hf.offline import hf_offline

    hf_offline()
    import transformers as tf

    d.mkdir(parents=True, exist_ok=True)
    vocab = len(set(WORDS)) + 3
    if tokenizer:
        write_tokenizer(d)
    torch.manual_seed(seed)
    if arch == "gpt2":
        cfg = tf.GPT2Config(vocab_size=vocab, n_positions=128, n_embd=hidden, n_layer=layers, n_head=2,
                            bos_token_id=2, eos_token_id=2)
        model = tf.GPT2LMHeadModel(cfg)
    else:
        cfg = tf.LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                             tie_word_embeddings=True, bos_token_id=2, eos_token_id=2)
        model = tf.LlamaForCausalLM(cfg)
    model.save_pretrained(d)
    return d


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable character table (byte-level BPE tokens are written in it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def make_tiny_gguf(path: Path, layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """A tiny random Llama decoder as a GGUF file (F32 tensors, llama.cpp's names and q/k permutation) with a
    byte-level BPE tokenizer in the file (tokenizer.ggml.model "gpt2", merges building the test words), the layout
    of SmolLM2's GGUF. Returns the file; transformers reads it back with gguf_file=."""
    import gguf
    import numpy as np
    import torch

    from edgekd.hf.offline import hf_offline

    hf_offline()
    import transformers as tf

    specials = ["<unk>", "<bos>", "<eos>"]
    tokens, merges = specials + _byte_chars(), []
    for w in sorted(set(WORDS)):
        piece = "Ġ" + w
        for i in range(2, len(piece) + 1):
            if piece[:i] not in tokens:
                tokens.append(piece[:i])
                merges.append(f"{piece[:i - 1]} {piece[i - 1]}")
    heads, kv = 4, 2
    torch.manual_seed(seed)
    cfg = tf.LlamaConfig(vocab_size=len(tokens), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                         max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    model = tf.LlamaForCausalLM(cfg).eval()
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)

    def permute(w, n):  # llama.cpp's rotary layout for q/k rows; transformers undoes it on load
        return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(layers)
    w.add_context_length(128)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(hidden * 2)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in specials else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":  # tied: the file has only token_embd
            continue
        a = t.detach().numpy().astype(np.float32)
        if name.endswith("q_proj.weight"):
            a = permute(a, heads)
        elif name.endswith("k_proj.weight"):
            a = permute(a, kv)
        w.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
