"""edgekd.hf: teacher loading, student derivation, text data, distillation losses and training."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from test_hf_helpers import SENTENCES, make_tiny_bert, random_texts  # noqa: E402

from edgekd.errors import EdgeKDError  # noqa: E402
from edgekd.hf import (  # noqa: E402
    TrainConfig, derive_hf_student, distill_hf, layer_targets, load_hf_teacher, load_texts, parse_hf_spec, parse_layers,
    read_texts,
)
from edgekd.hf import text_data  # noqa: E402
from edgekd.hf import evaluate as ev  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def emb_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-emb"), "embedding")


# ---- teacher spec / loading

def test_transformers_5_is_refused_in_one_line():
    from edgekd.hf.teacher import check_transformers_version
    check_transformers_version("4.57.6")
    with pytest.raises(EdgeKDError, match=r"transformers 5\.1\.0 is not supported.*edgekd\[hf\]"):
        check_transformers_version("5.1.0")


def test_hf_spec_errors(tmp_path):
    with pytest.raises(EdgeKDError, match="does not exist"):
        parse_hf_spec(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(EdgeKDError, match="no config.json"):
        parse_hf_spec(f"hf:{tmp_path}")
    with pytest.raises(EdgeKDError, match="empty"):
        parse_hf_spec("hf:")


def test_broken_config_is_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(EdgeKDError, match="cannot read the model config"):
        load_hf_teacher(f"hf:{tmp_path}")


def test_model_without_tokenizer_is_one_line_error(tmp_path):
    import shutil

    from test_hf_helpers import make_tiny_encoder

    src = make_tiny_encoder(tmp_path / "full", "roberta")
    (tmp_path / "bare").mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, tmp_path / "bare" / name)
    with pytest.raises(EdgeKDError, match="cannot load a tokenizer from .*the student keeps the teacher's tokenizer"):
        load_hf_teacher(f"hf:{tmp_path / 'bare'}")


def test_teacher_kinds_and_sentence_transformers_settings(emb_dir, tmp_path):
    t = load_hf_teacher(f"hf:{emb_dir}")
    assert t.kind == "embedding" and t.pooling == "mean" and t.normalize and t.max_length == 64
    assert "1_Pooling/config.json" in t.st_files
    assert load_hf_teacher(make_tiny_bert(tmp_path / "m", "mlm")).kind == "mlm"
    assert load_hf_teacher(make_tiny_bert(tmp_path / "c", "classification")).kind == "classification"


# ---- layer selection / student

def test_parse_layers():
    # default: half the layers, first and last kept (the top layer's output space is the embedding's)
    assert parse_layers(None, 6) == [0, 2, 5] and parse_layers(None, 12) == [0, 2, 4, 6, 8, 11]
    assert parse_layers("every-other", 6) == [0, 2, 4]  # DistilBERT's exact rule, still available
    assert parse_layers(3, 6) == [0, 2, 5]
    assert parse_layers("2", 6) == [0, 5]
    assert parse_layers(1, 6) == [0] and parse_layers(6, 6) == list(range(6))
    assert parse_layers("5,0", 6) == [0, 5]
    for bad in ("0,0", "7", "0,9", "a,b", 0):
        with pytest.raises(EdgeKDError):
            parse_layers(bad, 6)


def test_layer_selected_student_is_teacher_initialised(emb_dir):
    t = load_hf_teacher(emb_dir)
    s, info = derive_hf_student(t, layers="1,3")
    assert info["layers"] == [1, 3] and s.config.num_hidden_layers == 2 and info["init"] == "teacher"
    ts, ss = t.model.state_dict(), s.state_dict()
    for k, v in ss.items():
        src = k.replace("encoder.layer.0.", "encoder.layer.1.").replace("encoder.layer.1.", "encoder.layer.3.", 1) \
            if k.startswith("encoder.layer.1.") else k.replace("encoder.layer.0.", "encoder.layer.1.")
        assert torch.equal(v, ts[src]), k
    # keeping every layer reproduces the teacher exactly
    full, _ = derive_hf_student(t, layers=4)
    b = t.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(full(**b).last_hidden_state, t.model(**b).last_hidden_state, atol=1e-6)
        assert not torch.allclose(s(**b).last_hidden_state, t.model(**b).last_hidden_state, atol=1e-3)


def test_smaller_hidden_student(emb_dir):
    t = load_hf_teacher(emb_dir)
    s, info = derive_hf_student(t, layers=2, hidden_size=16)
    assert info["hidden_size"] == 16 and s.config.num_attention_heads == 2 and info["params"] < info["teacher_params"]
    # leading-slice init: the student's word embeddings are the teacher's first 16 columns
    assert torch.equal(s.embeddings.word_embeddings.weight, t.model.embeddings.word_embeddings.weight[:, :16])
    with pytest.raises(EdgeKDError, match="multiple of the head size"):
        derive_hf_student(t, hidden_size=12)


# ---- text data

def test_read_text_formats(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\n  second   line \n")
    assert read_texts(tmp_path / "a.txt") == (["first line", "second line"], None)
    (tmp_path / "a.jsonl").write_text('{"body": "x y", "y": "pos"}\n{"body": "z", "y": "neg"}\n')
    assert read_texts(tmp_path / "a.jsonl", column="body", label_column="y") == (["x y", "z"], ["pos", "neg"])
    (tmp_path / "a.csv").write_text('id,sentence\n1,"hello, world"\n2,bye\n')
    assert read_texts(tmp_path / "a.csv", column="sentence")[0] == ["hello, world", "bye"]
    with pytest.raises(EdgeKDError, match="no column 'text'"):
        read_texts(tmp_path / "a.csv")
    with pytest.raises(EdgeKDError, match="no field 'text'"):
        read_texts(tmp_path / "a.jsonl")
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(EdgeKDError, match="bad.jsonl:1"):
        read_texts(tmp_path / "bad.jsonl")
    (tmp_path / "a.parquet").write_text("x")
    with pytest.raises(EdgeKDError, match="unsupported"):
        read_texts(tmp_path / "a.parquet")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(EdgeKDError, match="no text examples"):
        read_texts(tmp_path / "empty.txt")
    with pytest.raises(EdgeKDError, match="does not exist"):
        read_texts(tmp_path / "missing.txt")


def test_load_texts_split_and_labels(tmp_path):
    rows = [{"text": t, "label": ["neg", "pos"][i % 2]} for i, t in enumerate(random_texts(50))]
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    d = load_texts(p, label_column="label", seed=1)
    assert (len(d.train), len(d.val), len(d.test)) == (40, 5, 5)
    assert d.label_names == ["neg", "pos"] and set(d.train.labels) == {0, 1}
    by_text = {r["text"]: r["label"] for r in rows}
    assert all(d.label_names[y] == by_text[x] for x, y in zip(d.train.texts, d.train.labels))
    assert load_texts(p, label_column="label", seed=1).test.texts == d.test.texts  # seeded
    with pytest.raises(EdgeKDError, match="not among the model's labels"):
        load_texts(p, label_column="label", label_names=["a", "b"])


@pytest.mark.skipif(not __import__("pathlib").Path("/usr/share/games/fortunes").is_dir(), reason="fortunes not installed")
def test_fortunes_corpus():
    texts, labels = read_texts("fortunes")
    assert len(texts) > 1000 and labels is None and all("\n%\n" not in t and t for t in texts[:100])


# ---- losses and training

def test_similarity_matrix_loss():
    from edgekd.hf.train import similarity_matrix_loss

    e = torch.randn(6, 8)
    assert float(similarity_matrix_loss(e * 3.0, e)) < 1e-10  # scale-free: cosine similarities
    assert float(similarity_matrix_loss(torch.randn(6, 8), e)) > 0.01
    assert float(similarity_matrix_loss(e[:1], e[:1])) == 0.0


def test_embedding_distillation_raises_agreement(emb_dir):
    t = load_hf_teacher(emb_dir)
    s, _ = derive_hf_student(t, layers=2, seed=1)
    s.apply(s._init_weights)  # a tiny random teacher's own layers already agree with it: start far away instead
    texts = random_texts(96, seed=3)
    held = random_texts(24, seed=4)
    b = ev.eval_batches(t, held, max_length=32)
    t_out = ev.collect(ev.torch_encoder(t.model, "embedding"), b, "embedding")
    before = ev.agreement("embedding", ev.collect(ev.torch_encoder(s, "embedding"), b, "embedding"), t_out)
    modes = []

    def held_out() -> dict:  # the evaluate callback: runs with the student in eval mode
        modes.append(s.training)
        return {"spearman": ev.agreement("embedding", ev.collect(ev.torch_encoder(s, "embedding"), b, "embedding"),
                                         t_out)["agreement"]}

    hist = distill_hf(t, s, texts, cfg=TrainConfig(epochs=6, batch_size=16, lr=1e-3, max_length=32, eval_every=4),
                      evaluate=held_out)
    after = ev.agreement("embedding", ev.collect(ev.torch_encoder(s, "embedding"), b, "embedding"), t_out)
    assert hist["steps"] == 36 and hist["teacher_cached"]
    # every 4 steps, plus the ends of epochs that do not fall on a multiple of 4 (6, 18, 30)
    assert [e["step"] for e in hist["evals"]] == sorted(set(range(4, 37, 4)) | {6, 18, 30})
    assert modes and not any(modes)
    assert hist["evals"][-1]["spearman"] == pytest.approx(after["agreement"])
    assert hist["history"][-1]["loss"] < hist["history"][0]["loss"]
    assert after["agreement"] > before["agreement"] + 0.05, (before, after)
    assert after["mean_cosine_to_teacher"] > before["mean_cosine_to_teacher"] + 0.1
    assert not s.training  # left in eval mode


def test_time_budget_shortens_the_run(emb_dir):
    t = load_hf_teacher(emb_dir)
    s, _ = derive_hf_student(t, layers=1)
    hist = distill_hf(t, s, random_texts(400), cfg=TrainConfig(epochs=5, batch_size=4, max_length=32, time_budget_s=1e-3))
    assert hist["stopped"] == "time budget" and hist["steps"] == 11 < hist["planned_steps"]
    # the schedule is refitted to the shortened plan: it ends annealed, not still warming up
    assert 0 < hist["lr_last"] <= 0.1 * TrainConfig().lr + 1e-12
    # a CPU-time budget (the benchmark's: the same work on a busy or idle machine)
    hist = distill_hf(t, s, random_texts(400), cfg=TrainConfig(epochs=5, batch_size=4, max_length=32, time_budget_s=1e-3,
                                                                budget_clock="cpu"))
    assert hist["stopped"] == "time budget" and hist["steps"] == 11 and hist["budget_clock"] == "cpu"
    with pytest.raises(EdgeKDError, match="budget_clock"):
        distill_hf(t, s, random_texts(8), cfg=TrainConfig(budget_clock="gpu"))


def test_mlm_and_classification_distillation(tmp_path):
    texts = random_texts(32)
    mlm = load_hf_teacher(make_tiny_bert(tmp_path / "m", "mlm"))
    s, _ = derive_hf_student(mlm, layers=2)
    h = distill_hf(mlm, s, texts, cfg=TrainConfig(epochs=1, batch_size=8, max_length=32))
    assert h["steps"] == 4 and np.isfinite(h["history"][0]["loss"]) and h["weights"]["soft"] == 5.0
    clf = load_hf_teacher(make_tiny_bert(tmp_path / "c", "classification"))
    s, _ = derive_hf_student(clf, layers=2)
    h = distill_hf(clf, s, texts, labels=[i % 3 for i in range(32)], cfg=TrainConfig(epochs=1, batch_size=8, max_length=32))
    assert h["steps"] == 4 and np.isfinite(h["history"][0]["loss"])
    with pytest.raises(EdgeKDError, match="labels for"):
        distill_hf(clf, s, texts, labels=[0], cfg=TrainConfig(epochs=1))
    # mlm agreement: masked positions are scored, identical model agrees fully
    b = ev.eval_batches(mlm, texts[:8], max_length=32)
    out = ev.collect(ev.torch_encoder(mlm.model, "mlm"), b, "mlm")
    assert ev.agreement("mlm", out, out)["agreement"] == 1.0


def test_freeze_embeddings_keeps_the_teacher_rows(emb_dir):
    t = load_hf_teacher(emb_dir)
    s, _ = derive_hf_student(t, layers=1)
    before = s.get_input_embeddings().weight.detach().clone()
    layer = next(p for n, p in s.named_parameters() if "encoder" in n and p.dim() == 2).detach().clone()
    hist = distill_hf(t, s, random_texts(32), cfg=TrainConfig(epochs=1, batch_size=8, max_length=32, freeze_embeddings=True))
    assert hist["freeze_embeddings"] and hist["steps"] == 4
    assert torch.equal(s.get_input_embeddings().weight, before)
    assert not torch.equal(next(p for n, p in s.named_parameters() if "encoder" in n and p.dim() == 2), layer)


def test_layer_targets_map_each_kept_layer_to_the_teacher_state_it_replaces():
    assert layer_targets([0, 2, 5], 6) == [2, 5]  # student layer 0 stands for teacher 0-1, layer 1 for 2-4
    assert layer_targets([0, 2, 4], 6) == [2, 4] and layer_targets([0, 1, 2], 3) == [1, 2]
    assert layer_targets([3], 6) == []


def test_layer_alignment_trains_and_caches_intermediate_states(tmp_path):
    t = load_hf_teacher(make_tiny_bert(tmp_path / "deep", "embedding", layers=4))
    s, info = derive_hf_student(t, layers=2)
    targets = layer_targets(info["layers"], t.num_layers)
    assert targets == [3]
    hist = distill_hf(t, s, random_texts(32), cfg=TrainConfig(epochs=3, batch_size=8, max_length=32,
                                                                layer_targets=targets))
    assert hist["layer_targets"] == [3] and hist["cached_texts"] == 32 and hist["steps"] == 12
    assert all(np.isfinite(h["loss"]) for h in hist["history"])
    # no room for the cache: the teacher runs live every step, same number of steps
    hist = distill_hf(t, s, random_texts(32), cfg=TrainConfig(epochs=2, batch_size=8, max_length=32, cache_gb=0,
                                                                layer_targets=targets))
    assert hist["cached_texts"] == 0 and hist["steps"] == 8
    with pytest.raises(EdgeKDError, match="layer targets"):
        distill_hf(t, s, random_texts(8), cfg=TrainConfig(layer_targets=[1, 2]))


def test_unlabeled_extra_texts_mix_with_labeled_ones(tmp_path):
    clf = load_hf_teacher(make_tiny_bert(tmp_path / "c", "classification"))
    s, _ = derive_hf_student(clf, layers=2)
    labels = [0, 1, 2, None] * 4 + [None] * 8  # the all-None batch uses the soft term only
    h = distill_hf(clf, s, random_texts(24), labels=labels, cfg=TrainConfig(epochs=1, batch_size=8, max_length=32))
    assert h["steps"] == 3 and np.isfinite(h["history"][0]["loss"])


def test_debian_corpora_readers(tmp_path, monkeypatch):
    wn = tmp_path / "wordnet"
    wn.mkdir()
    for pos in ("noun", "verb", "adj", "adv"):
        (wn / f"data.{pos}").write_text(
            "  1 This software and database is being provided\n"
            f"00001740 03 n 01 {pos} 0 000 | a thing that exists on its own; \"the {pos} was on the table\"\n",
            encoding="latin-1")
    got = text_data.read_wordnet(wn)
    assert got[:2] == ["a thing that exists on its own", "the noun was on the table"] and len(got) == 8
    with pytest.raises(EdgeKDError, match="wordnet-base"):
        text_data.read_wordnet(tmp_path / "none")
    docs = tmp_path / "python3.11" / "html"
    (docs / "library").mkdir(parents=True)
    (docs / "library" / "os.html").write_text(
        "<html><body><h1>os</h1><p>This module provides a portable way of using <code>operating system</code> "
        "dependent functionality.</p><pre>x = 1</pre><p>Too short.</p></body></html>")
    assert text_data.read_python_docs(str(tmp_path / "python3*" / "html")) == [
        "This module provides a portable way of using operating system dependent functionality."]
    with pytest.raises(EdgeKDError, match="python3-doc"):
        text_data.read_python_docs(str(tmp_path / "nope*"))
    # sources join with `+`, in order; a corpus has no labels
    monkeypatch.setitem(text_data.CORPORA, "wordnet", lambda: ["w1 w2 w3"])
    monkeypatch.setitem(text_data.CORPORA, "fortunes", lambda: ["f1", "f2"])
    assert read_texts("fortunes+wordnet") == (["f1", "f2", "w1 w2 w3"], None)
    with pytest.raises(EdgeKDError, match="no labels"):
        read_texts("wordnet", label_column="y")


def test_crop_augmentation_makes_new_inputs_the_teacher_labels_live(emb_dir):
    from edgekd.hf.train import _crop

    rng = np.random.default_rng(0)
    enc = [[101] + list(range(1000, 1000 + n)) + [102] for n in (3, 30)] + [[101] + list(range(2000, 2040)) + [102]]
    for _ in range(50):
        out = _crop(enc, 2, 1, rng)
        assert out[0] == 101 and out[-1] == 102 and 12 <= len(out) <= 42  # never longer than the text itself
        assert out[1] in range(2000, 2040)  # a span of the text itself comes first
    assert {x for _ in range(20) for x in _crop(enc, 2, 1, rng)} & set(range(1000, 1030))  # sometimes joined
    assert _crop(enc, 0, 1, rng) == enc[0]  # too short to cut: kept whole
    t = load_hf_teacher(emb_dir)
    s, _ = derive_hf_student(t, layers=1)
    hist = distill_hf(t, s, random_texts(32), cfg=TrainConfig(epochs=2, batch_size=8, max_length=32, augment=1.0))
    assert hist["augment"] == 1.0 and hist["steps"] == 8 and hist["cached_texts"] == 0
    assert all(np.isfinite(h["loss"]) for h in hist["history"])


@pytest.mark.parametrize("arch", ["distilbert", "roberta", "electra", "deberta-v2", "mpnet"])
def test_other_encoder_families_derive_and_distil(tmp_path, arch):
    from test_hf_helpers import make_tiny_encoder

    t = load_hf_teacher(f"hf:{make_tiny_encoder(tmp_path / arch, arch)}")
    s, info = derive_hf_student(t, layers=2)
    assert info["layers"] == [0, 3] and s.config.model_type == t.model.config.model_type
    hist = distill_hf(t, s, random_texts(24), cfg=TrainConfig(epochs=1, batch_size=8, max_length=32,
                                                              layer_targets=layer_targets(info["layers"], 4)))
    assert hist["steps"] == 3 and np.isfinite(hist["history"][-1]["loss"])


def test_albert_is_a_clear_error(tmp_path):
    from test_hf_helpers import make_tiny_encoder

    t = load_hf_teacher(f"hf:{make_tiny_encoder(tmp_path / 'albert', 'albert')}")
    with pytest.raises(EdgeKDError, match="ALBERT shares one set of layer weights"):
        derive_hf_student(t, layers=2)
