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
