"""Tiny Hugging Face models built on the fly (random weights, a 100-word vocabulary) for edgekd.hf tests."""

from __future__ import annotations

from pathlib import Path

WORDS = ("the a an of to in is it that was for on are with as his they be at one have this from or had by hot "
         "word but what some we can out other were all there when up use your how said each she which do their "
         "time if will way about many then them write would like so these her long make thing see him two has "
         "look more day could go come did number sound no most people my over know water than call first who "
         "may down side been now find any new work part take get place made live where after back little only "
         "round man year came show every good me give our under name very through just form sentence great think").split()

SENTENCES = [
    "the man said that the water was hot",
    "we can find a new way to work",
    "they came back after a long day",
    "she will write a good sentence",
    "how many people live there now",
    "the first year was very good",
    "give me the water and the sound",
    "what did the man find in the water",
]


def write_vocab(d: Path) -> Path:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS))
    p = d / "vocab.txt"
    p.write_text("\n".join(vocab) + "\n")
    return p


def make_tiny_bert(d: Path, kind: str = "embedding", layers: int = 4, hidden: int = 32, num_labels: int = 3,
                   sentence_transformers: bool = True, seed: int = 0) -> Path:
    """Save a tiny BERT (embedding / mlm / classification head) with its tokenizer into `d`."""
    import json
    import os

    os.environ["USE_TF"] = "0"
    import torch
    import transformers as tf

    d.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(d)
    tok = tf.BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    cfg = tf.BertConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=hidden * 2, max_position_embeddings=160, num_labels=num_labels)
    torch.manual_seed(seed)
    cls = {"embedding": tf.BertModel, "mlm": tf.BertForMaskedLM, "classification": tf.BertForSequenceClassification}[kind]
    model = cls(cfg).eval()
    if kind == "classification":
        model.config.id2label = {i: f"c{i}" for i in range(num_labels)}
        model.config.label2id = {f"c{i}": i for i in range(num_labels)}
    model.save_pretrained(d)
    tok.save_pretrained(d)
    if sentence_transformers and kind == "embedding":
        (d / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
        (d / "1_Pooling").mkdir(exist_ok=True)
        (d / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden,
                                                                 "pooling_mode_mean_tokens": True}))
        (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    return d


def random_texts(n: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) for _ in range(n)]


def make_tiny_encoder(d: Path, arch: str, layers: int = 4, hidden: int = 32, seed: int = 0) -> Path:
    """A tiny non-BERT encoder (distilbert | roberta | electra | deberta-v2 | mpnet | albert) with a BERT tokenizer, which
    emits token_type_ids whether or not the model takes them (DistilBERT does not)."""
    import os

    os.environ["USE_TF"] = "0"
    import torch
    import transformers as tf

    d.mkdir(parents=True, exist_ok=True)
    tok = tf.BertTokenizerFast(vocab_file=str(write_vocab(d)), do_lower_case=True)
    common = dict(vocab_size=len(tok), num_hidden_layers=layers, num_attention_heads=4, intermediate_size=hidden * 2,
                  max_position_embeddings=160, hidden_size=hidden)
    cfg = {"distilbert": lambda: tf.DistilBertConfig(vocab_size=len(tok), n_layers=layers, n_heads=4, dim=hidden,
                                                     hidden_dim=hidden * 2, max_position_embeddings=160),
           "roberta": lambda: tf.RobertaConfig(pad_token_id=0, **common),
           "electra": lambda: tf.ElectraConfig(embedding_size=hidden // 2, **common),
           "deberta-v2": lambda: tf.DebertaV2Config(**common),
           "mpnet": lambda: tf.MPNetConfig(**common),
           "albert": lambda: tf.AlbertConfig(embedding_size=hidden // 2, **common)}[arch]()
    torch.manual_seed(seed)
    tf.AutoModel.from_config(cfg).eval().save_pretrained(d)
    tok.save_pretrained(d)
    return d
