"""DistilBERT-style distillation of an HF student from its teacher on raw text.

Losses (edgekd.distill modules where they exist):
- mlm:            TokenKDLoss (soft CE at T on masked-token distributions) + MLM hard loss + cosine
                  alignment of the last hidden states (DistilBERT's 5 : 2 : 1 weighting),
- classification: KDLoss (soft CE at T, + hard CE when labels exist) + cosine hidden alignment,
- embedding:      cosine alignment of the last hidden states and of the sentence embeddings +
                  relational loss on the batch's pairwise cosine-similarity matrix.
- causal-lm:      TokenKDLoss over the vocabulary at every real (unpadded) position + next-token CE on the
                  same tokens (+ cosine alignment of the last hidden states when its weight is set); weights
                  {"soft": 0} train the same student on next-token CE only (the baseline KD is judged against).
- any kind, with `layer_targets`: cosine alignment of each intermediate student layer's output with
                  the teacher hidden state after the teacher layers it replaces (TinyBERT's layer mapping).
For the embedding kind the teacher's outputs are computed once and cached up to `cache_gb` (its inputs
never change), so later epochs cost only the student's forward and backward passes.

The training loop is edgekd.distill.trainer's (epoch loop, step plan, time budget, LR schedule, eval mode);
this file supplies the text batches, the teacher outputs and the loss of one step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from edgekd.errors import EdgeKDError

DEFAULT_WEIGHTS = {
    "mlm": {"soft": 5.0, "hard": 2.0, "cos": 1.0},
    "classification": {"soft": 1.0, "hard": 1.0, "cos": 1.0},
    "embedding": {"cos": 1.0, "emb": 1.0, "rel": 10.0},
    "causal-lm": {"soft": 1.0, "hard": 1.0, "cos": 0.0},
}


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-4  # DistilBERT's; beat 2e-4 and 1e-3 in MiniLM pilots (docs/requests/hf.md)
    warmup: float = 0.06  # fraction of steps
    temperature: float = 2.0
    mlm_probability: float = 0.15
    max_length: int = 128
    seed: int = 0
    time_budget_s: float | None = None  # stop (and shorten the LR schedule) to fit this
    budget_clock: str = "wall"  # "wall", or "cpu" (process CPU time: the same budget on a busy or idle machine)
    weights: dict[str, float] = field(default_factory=dict)
    freeze_embeddings: bool = False  # keep the teacher's word embeddings: most of a small student's parameters
    eval_every: int = 0  # steps between calls of distill_hf's `evaluate` callback (0: only at the end of each epoch)
    layer_targets: list[int] | None = None  # teacher hidden_states index per intermediate student layer (student.layer_targets)
    augment: float = 0.0  # fraction of batches made of new texts cut from the corpus (crops / joined crops)
    cache_gb: float = 4.0  # memory for cached teacher outputs (embedding kind); texts beyond it run the teacher live
    max_steps: int | None = None  # stop after this many steps (e.g. a baseline on exactly the tokens another run saw)
    pack: bool = False  # decoders: concatenate the tokenised texts (EOS between) into blocks of max_length tokens


def similarity_matrix_loss(student_emb, teacher_emb):
    """Relational loss: MSE between the batch's pairwise cosine-similarity matrices (off-diagonal)."""
    import torch
    import torch.nn.functional as F

    s = F.normalize(student_emb, dim=-1)
    t = F.normalize(teacher_emb.detach().to(s.dtype), dim=-1)
    n = s.shape[0]
    if n < 2:
        return s.new_zeros(())
    off = ~torch.eye(n, dtype=torch.bool, device=s.device)
    return F.mse_loss((s @ s.t())[off], (t @ t.t())[off])


def _batches(lengths: list[int], batch_size: int, rng) -> list[list[int]]:
    """Length-bucketed batches: shuffle, sort within chunks of 50 batches, shuffle the batches.
    Cuts padding (and so time) several-fold on text with mixed lengths."""
    order = rng.permutation(len(lengths)).tolist()
    chunk = batch_size * 50
    batches = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i:i + chunk], key=lambda j: lengths[j])
        batches += [part[k:k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(ids: list[list[int]], pad_id: int, type_ids: bool) -> dict:
    import torch

    n = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), n), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    out = {"input_ids": input_ids, "attention_mask": mask}
    if type_ids:
        out["token_type_ids"] = torch.zeros_like(input_ids)
    return out


def distill_hf(teacher, student, texts: list[str], *, labels: list[int] | None = None, cfg: TrainConfig | None = None,
               log: Callable[[str], None] | None = None,
               evaluate: Callable[[], dict[str, float]] | None = None) -> dict[str, Any]:
    """Train `student` in place; returns the training history (losses, steps, seconds, stop reason).

    `evaluate` (optional) scores the student on held-out data; it is called every `cfg.eval_every` steps and
    at each epoch's end, its results land in history["evals"], and its time is not charged to the budget."""
    import numpy as np
    import torch

    from edgekd.distill.trainer.loop import Clock, StepPlan, Stepper, TimeBudget
    from edgekd.distill.trainer.schedule import planned_schedule

    cfg = cfg or TrainConfig()
    if labels is not None and len(labels) != len(texts):  # None entries: unlabeled extra text (soft terms only)
        raise EdgeKDError(f"{len(labels)} labels for {len(texts)} texts")
    if not texts:
        raise EdgeKDError("no training texts")
    log = log or (lambda m: None)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    step = _TextStep(teacher, student, _TextBatches(teacher.tokenizer, texts, cfg, rng), labels, cfg)
    if cfg.freeze_embeddings:
        # a small corpus updates only the rows of the tokens it contains, pulling them away from the
        # teacher-initialised rows every unseen word still uses
        student.get_input_embeddings().weight.requires_grad_(False)
    params = [p for m in (student, *step.losses.modules()) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    planned = math.ceil(len(step.batches.enc) / cfg.batch_size) * cfg.epochs  # packed blocks or texts
    planned = min(planned, cfg.max_steps or planned)
    plan = StepPlan(planned, total=max(1, planned))
    stepper = Stepper(opt, planned_schedule(opt, lambda: plan.total, cfg.warmup), params, clip=1.0)
    clock = Clock(cfg.budget_clock)
    t_wall = time.perf_counter()
    budget = TimeBudget(cfg.time_budget_s, clock) if cfg.time_budget_s else None
    evals: list[dict] = []
    run_eval = _evaluator(evaluate, student, clock, plan, evals, log)
    history = _train_epochs(step, stepper, plan, cfg, clock, budget, run_eval, log)
    student.eval()
    return {"history": history, "evals": evals, "steps": plan.step, "planned_steps": planned,
            "seconds": round(clock.elapsed(), 1), "wall_seconds": round(time.perf_counter() - t_wall, 1),
            "budget_clock": cfg.budget_clock, "stopped": plan.stop_reason if plan.done else "epochs done",
            "weights": step.losses.w, "teacher_cached": teacher.kind == "embedding", "batch_size": cfg.batch_size,
            "lr": cfg.lr, "lr_last": stepper.last_lr, "temperature": cfg.temperature, "max_length": cfg.max_length,
            "freeze_embeddings": cfg.freeze_embeddings, "train_examples": len(texts),
            "train_sequences": len(step.batches.enc), "train_tokens": int(sum(step.batches.lengths)),
            "layer_targets": cfg.layer_targets, "cached_texts": len(step.cache), "augment": cfg.augment}


def _train_epochs(step, stepper, plan, cfg: TrainConfig, clock, budget, run_eval, log) -> list[dict]:
    """The epochs through the shared epoch loop; per epoch its mean loss and step count."""
    from edgekd.distill.trainer.loop import run_epoch

    history = []
    step.student.train()
    step.teacher.model.eval()
    for epoch in range(1, cfg.epochs + 1):
        if budget is not None:
            budget.start_epoch()

        def on_step(loss: float, stats, _epoch=epoch) -> None:
            if cfg.eval_every and plan.step % cfg.eval_every == 0:
                run_eval(_epoch)
            if plan.step % 50 == 0:
                log(f"epoch {_epoch} step {plan.step}/{plan.total} loss {stats.loss_sum / stats.batches:.4f} "
                    f"({clock.elapsed():.0f} s)")

        stats = run_epoch(step.batches.epoch(), step, stepper, plan, budget=budget, on_step=on_step)
        history.append({"epoch": epoch, "loss": stats.loss_sum / max(1, stats.batches), "steps": stats.batches})
        if not (cfg.eval_every and plan.step % cfg.eval_every == 0):
            run_eval(epoch)
        if plan.done:
            break
    return history


def _evaluator(evaluate, student, clock, plan, evals: list, log) -> Callable[[int], None]:
    """Runs the caller's held-out scoring in eval mode, its time kept out of the budget."""
    from edgekd.distill.trainer.evaluation import eval_mode

    def run_eval(epoch: int) -> None:
        if evaluate is None:
            return
        with clock.paused(), eval_mode(student):
            evals.append({"step": plan.step, "epoch": epoch, **evaluate()})
        log(f"eval at step {plan.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in evals[-1].items()
                                                       if isinstance(v, float)))
    return run_eval


class _TextBatches:
    """The tokenised corpus, its length-bucketed batches per epoch, and a batch's padded (masked) tensors."""

    def __init__(self, tok, texts: list[str], cfg: TrainConfig, rng):
        self.tok, self.cfg, self.rng = tok, cfg, rng
        self.type_ids = "token_type_ids" in tok.model_input_names
        if cfg.pack:
            self.enc = pack_tokens(tok, texts, cfg.max_length)
        else:
            self.enc = tok(texts, truncation=True, max_length=cfg.max_length, add_special_tokens=True)["input_ids"]
        self.lengths = [len(x) for x in self.enc]

    def epoch(self) -> list[list[int]]:
        return _batches(self.lengths, self.cfg.batch_size, self.rng)

    def tensors(self, idx: list[int], kind: str) -> tuple[dict, bool, Any]:
        """(model inputs, whether they are new crops, token labels (MLM / next-token) or None) for the texts `idx`."""
        fresh = kind == "embedding" and self.rng.random() < self.cfg.augment
        # crops join texts of the same length bucket (their neighbours in the batch)
        rows = [_crop(self.enc, i, idx[(r + 1) % len(idx)], self.rng) for r, i in enumerate(idx)] if fresh \
            else [self.enc[i] for i in idx]
        batch = _pad(rows, self.tok.pad_token_id or 0, self.type_ids)
        token_labels = None
        if kind == "mlm":
            batch, token_labels = _mask_tokens(batch, self.tok, self.cfg.mlm_probability, self.rng)
        elif kind == "causal-lm":  # next-token targets: the inputs themselves, padding ignored
            token_labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return batch, fresh, token_labels


class _TextLosses:
    """The loss modules of a teacher kind and their weights; `__call__` is one batch's total loss."""

    def __init__(self, teacher, student, cfg: TrainConfig):
        import torch

        from edgekd.distill import CosineAlignmentLoss, KDLoss, TokenKDLoss

        self.kind = kind = teacher.kind
        self.w = w = {**DEFAULT_WEIGHTS[kind], **cfg.weights}
        hs, ht = student.config.hidden_size, teacher.hidden_size
        self.cos, self.emb_cos = CosineAlignmentLoss(hs, ht), CosineAlignmentLoss(hs, ht)
        self.kd_tok = TokenKDLoss(cfg.temperature)
        self.n_layers = n_layers = len(cfg.layer_targets or [])
        if n_layers and n_layers >= student.config.num_hidden_layers:
            raise EdgeKDError(f"{n_layers} layer targets for a {student.config.num_hidden_layers}-layer student "
                              "(want one per student layer but the last)")
        w.setdefault("layers", 1.0)
        self.layer_cos = torch.nn.ModuleList(CosineAlignmentLoss(hs, ht) for _ in range(n_layers))
        self.kd_cls = KDLoss(cfg.temperature, alpha=w["soft"] / (w["soft"] + w["hard"])) \
            if kind == "classification" else None

    @property
    def needs_teacher(self) -> bool:
        """Next-token CE alone (the baseline) never runs the teacher."""
        w = self.w
        return self.kind != "causal-lm" or bool(w["soft"] or w["cos"] or self.n_layers)

    def modules(self) -> tuple:
        """The modules with trained parameters (projectors where the widths differ)."""
        return self.cos, self.emb_cos, self.layer_cos

    def __call__(self, s_out: dict, t_out: dict, mask, mlm_labels, y):
        import torch

        w, n_layers = self.w, self.n_layers
        loss = w["cos"] * self.cos(s_out["hidden"], t_out["hidden"].float(), mask) if w["cos"] else 0.0
        for k, layer_cos in enumerate(self.layer_cos):
            loss = loss + w["layers"] / n_layers * layer_cos(s_out["layers"][k], t_out["layers"][k].float(), mask)
        if self.kind == "embedding":
            return loss + w["emb"] * self.emb_cos(s_out["emb"], t_out["emb"]) \
                + w["rel"] * similarity_matrix_loss(s_out["emb"], t_out["emb"])
        if self.kind == "causal-lm":
            soft = self.kd_tok(s_out["logits"], t_out["logits"], mask) if w["soft"] else 0.0
            return loss + w["soft"] * soft + w["hard"] * next_token_ce(s_out["logits"], mlm_labels)
        if self.kind == "mlm":
            sel = mlm_labels != -100
            loss = loss + w["soft"] * self.kd_tok(s_out["logits"], t_out["logits"], sel)
            if sel.any():
                loss = loss + w["hard"] * torch.nn.functional.cross_entropy(s_out["logits"][sel], mlm_labels[sel])
            return loss
        return loss + (w["soft"] + w["hard"]) * self.kd_cls(s_out["logits"], t_out["logits"], y)


class _TextStep:
    """One batch of text indices -> (loss, {}, 1) for the shared epoch loop (edgekd.distill.trainer.loop)."""

    def __init__(self, teacher, student, batches: _TextBatches, labels, cfg: TrainConfig):
        self.teacher, self.student, self.batches, self.labels, self.cfg = teacher, student, batches, labels, cfg
        self.losses = _TextLosses(teacher, student, cfg)
        self.cache = _TextCache(cfg.cache_gb * 1e9, self.losses.n_layers)

    def __call__(self, idx: list[int]):
        import torch

        from edgekd.hf.forward import run_model

        kind, t = self.teacher.kind, self.teacher
        batch, fresh, mlm_labels = self.batches.tensors(idx, kind)
        mask = batch["attention_mask"]
        with torch.no_grad():
            t_out = self.cache.get(idx, mask.shape[1]) if kind == "embedding" and not fresh else None
            if t_out is None and self.losses.needs_teacher:
                t_out = run_model(t.model, batch, kind, pooling=t.pooling, normalize=t.normalize,
                                  layers=self.cfg.layer_targets)
                if kind == "embedding" and not fresh:
                    self.cache.put(idx, mask, t_out)
        s_out = run_model(self.student, batch, kind, pooling=t.pooling, normalize=t.normalize,
                          layers=list(range(1, self.losses.n_layers + 1)))
        y = None
        if kind == "classification" and self.labels is not None and any(self.labels[i] is not None for i in idx):
            y = torch.tensor([-100 if self.labels[i] is None else self.labels[i] for i in idx])  # -100: ignored by CE
        return self.losses(s_out, t_out, mask, mlm_labels, y), {}, 1


class _TextCache:
    """The teacher's outputs per text (embedding kind: its inputs never change), fp16 and real tokens only,
    while `max_bytes` last. Not edgekd.distill.cache.TeacherCache: that one preallocates a fixed shape per
    sample, and texts are ragged (padding each to max_length would cost several times the memory)."""

    def __init__(self, max_bytes: float, n_layers: int):
        self.room, self.n_layers = max_bytes, n_layers
        self.store: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.store)

    def get(self, idx: list[int], length: int) -> dict | None:
        """The batch's outputs padded to `length`, or None unless every text of it is cached."""
        import torch

        if not all(i in self.store for i in idx):
            return None
        rows = [self.store[i] for i in idx]
        return {"hidden": _stack_hidden([r[0] for r in rows], length), "emb": torch.stack([r[1] for r in rows]),
                "layers": [_stack_hidden([r[2][k] for r in rows], length) for k in range(self.n_layers)]}

    def put(self, idx: list[int], mask, t_out: dict) -> None:
        for r, i in enumerate(idx):
            n_tok = int(mask[r].sum())
            cost = 2 * n_tok * t_out["hidden"].shape[-1] * (1 + self.n_layers)
            if cost > self.room:
                return
            self.room -= cost
            self.store[i] = (t_out["hidden"][r, :n_tok].half(), t_out["emb"][r].clone(),
                             [t_out["layers"][k][r, :n_tok].half() for k in range(self.n_layers)])


def _stack_hidden(rows, length: int):
    import torch

    out = torch.zeros(len(rows), length, rows[0].shape[-1])
    for i, r in enumerate(rows):
        out[i, :r.shape[0]] = r.float()
    return out


def next_token_ce(logits, labels):
    """Mean CE of predicting token t+1 from position t; positions whose target is padding (-100) are ignored."""
    import torch.nn.functional as F

    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


def pack_tokens(tok, texts: list[str], block: int) -> list[list[int]]:
    """The texts tokenised, joined with EOS and cut into blocks of `block` tokens (no padding; the last, shorter
    block is kept when it holds at least 8 tokens). How decoder LMs are trained on a corpus."""
    ids = tok(texts, add_special_tokens=True)["input_ids"]
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    flat = [t for x in ids for t in (*x, *eos)]
    return [flat[i:i + block] for i in range(0, len(flat), block) if len(flat[i:i + block]) >= 8]


def _crop(enc: list[list[int]], i: int, j: int, rng) -> list[int]:
    """A new input cut from the corpus (augmentation for function matching: the teacher labels it live):
    a random span of text i, or half the time a shorter span of i followed by a span of text j; no longer
    than text i, so a length-bucketed batch stays as cheap as the original. Keeps the special tokens."""
    def span(body: list[int], n: int) -> list[int]:
        s = int(rng.integers(0, len(body) - n + 1))
        return body[s:s + n]

    ids = enc[i]
    body, other = ids[1:-1], enc[j][1:-1]
    if len(body) < 8:
        return list(ids)
    if rng.random() < 0.5 or len(other) < 4:
        new = span(body, int(rng.integers(len(body) // 4, len(body) + 1)))
    else:
        a = int(rng.integers(len(body) // 4, 3 * len(body) // 4 + 1))
        new = span(body, a) + span(other, min(len(other), len(body) - a))
    return [ids[0]] + new + [ids[-1]]


def _mask_tokens(batch: dict, tok, prob: float, rng):
    """BERT masking (80 % [MASK], 10 % random, 10 % kept) on real, non-special tokens."""
    import torch

    ids = batch["input_ids"].clone()
    labels = ids.clone()
    special = torch.tensor([[t in tok.all_special_ids for t in row] for row in ids.tolist()])
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    pick = (torch.rand(ids.shape, generator=gen) < prob) & ~special & batch["attention_mask"].bool()
    labels[~pick] = -100
    r = torch.rand(ids.shape, generator=gen)
    ids[pick & (r < 0.8)] = tok.mask_token_id
    rand_pos = pick & (r >= 0.8) & (r < 0.9)
    ids[rand_pos] = torch.randint(len(tok), ids.shape, generator=gen)[rand_pos]
    return {**batch, "input_ids": ids}, labels
