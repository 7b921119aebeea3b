"""DistilBERT-style distillation of an HF student from its teacher on raw text.

Losses (edgekd.distill modules where they exist):
- mlm:            TokenKDLoss (soft CE at T on masked-token distributions) + MLM hard loss + cosine
                  alignment of the last hidden states (DistilBERT's 5 : 2 : 1 weighting),
- classification: KDLoss (soft CE at T, + hard CE when labels exist) + cosine hidden alignment,
- embedding:      cosine alignment of the last hidden states and of the sentence embeddings +
                  relational loss on the batch's pairwise cosine-similarity matrix.
- any kind, with `layer_targets`: cosine alignment of each intermediate student layer's output with
                  the teacher hidden state after the teacher layers it replaces (TinyBERT's layer mapping).
For the embedding kind the teacher's outputs are computed once and cached up to `cache_gb` (its inputs
never change), so later epochs cost only the student's forward and backward passes.
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


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warmup over `warmup` of the `total` steps, then linear decay to 0 at `total`."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


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

    from edgekd.distill import CosineAlignmentLoss, KDLoss, TokenKDLoss
    from edgekd.hf.forward import run_model

    cfg = cfg or TrainConfig()
    kind = teacher.kind
    w = {**DEFAULT_WEIGHTS[kind], **cfg.weights}
    if labels is not None and len(labels) != len(texts):  # None entries: unlabeled extra text (soft terms only)
        raise EdgeKDError(f"{len(labels)} labels for {len(texts)} texts")
    if not texts:
        raise EdgeKDError("no training texts")
    log = log or (lambda m: None)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tok = teacher.tokenizer
    type_ids = "token_type_ids" in tok.model_input_names
    enc = tok(texts, truncation=True, max_length=cfg.max_length, add_special_tokens=True)["input_ids"]
    lengths = [len(x) for x in enc]

    cos = CosineAlignmentLoss(student.config.hidden_size, teacher.hidden_size)
    emb_cos = CosineAlignmentLoss(student.config.hidden_size, teacher.hidden_size)
    kd_tok = TokenKDLoss(cfg.temperature)
    n_layers = len(cfg.layer_targets or [])
    if n_layers and n_layers >= student.config.num_hidden_layers:
        raise EdgeKDError(f"{n_layers} layer targets for a {student.config.num_hidden_layers}-layer student "
                          "(want one per student layer but the last)")
    w.setdefault("layers", 1.0)
    layer_cos = torch.nn.ModuleList(CosineAlignmentLoss(student.config.hidden_size, teacher.hidden_size)
                                    for _ in range(n_layers))
    kd_cls = KDLoss(cfg.temperature, alpha=w["soft"] / (w["soft"] + w["hard"])) if kind == "classification" else None
    if cfg.freeze_embeddings:
        # a small corpus updates only the rows of the tokens it contains, pulling them away from the
        # teacher-initialised rows every unseen word still uses
        student.get_input_embeddings().weight.requires_grad_(False)
    params = [p for m in (student, cos, emb_cos, layer_cos) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)

    steps_per_epoch = math.ceil(len(texts) / cfg.batch_size)
    plan = {"total": max(1, steps_per_epoch * cfg.epochs)}
    # read plan["total"] at each step: a time budget refits it, and warmup is a fraction of the refitted plan
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, plan["total"], cfg.warmup))
    cache: dict[int, tuple] = {}
    cache_room = [cfg.cache_gb * 1e9]  # bytes left for cached teacher outputs
    if cfg.budget_clock not in ("wall", "cpu"):
        raise EdgeKDError(f"budget_clock {cfg.budget_clock!r}: want 'wall' or 'cpu'")
    clock = time.process_time if cfg.budget_clock == "cpu" else time.perf_counter
    t0 = clock()
    t_wall = time.perf_counter()
    step, history, evals, stop, last_lr = 0, [], [], "epochs done", 0.0

    def run_eval(epoch: int) -> None:
        nonlocal t0
        if evaluate is None:
            return
        t_eval = clock()
        student.eval()
        with torch.no_grad():
            evals.append({"step": step, "epoch": epoch, **evaluate()})
        student.train()
        t0 += clock() - t_eval  # held-out scoring is not training: keep it out of the time budget
        log(f"eval at step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in evals[-1].items()
                                                  if isinstance(v, float)))
    student.train()
    teacher.model.eval()
    for epoch in range(cfg.epochs):
        running, n_b = 0.0, 0
        epoch_t0 = clock() - t0
        for idx in _batches(lengths, cfg.batch_size, rng):
            fresh = kind == "embedding" and rng.random() < cfg.augment
            # crops join texts of the same length bucket (their neighbours in the batch)
            rows = [_crop(enc, i, idx[(r + 1) % len(idx)], rng) for r, i in enumerate(idx)] if fresh \
                else [enc[i] for i in idx]
            batch = _pad(rows, tok.pad_token_id or 0, type_ids)
            mask = batch["attention_mask"]
            if kind == "mlm":
                batch, mlm_labels = _mask_tokens(batch, tok, cfg.mlm_probability, rng)
            with torch.no_grad():
                if kind == "embedding" and not fresh and all(i in cache for i in idx):
                    t_out = {"hidden": _stack_hidden([cache[i][0] for i in idx], mask.shape[1]),
                             "emb": torch.stack([cache[i][1] for i in idx]),
                             "layers": [_stack_hidden([cache[i][2][k] for i in idx], mask.shape[1])
                                        for k in range(n_layers)]}
                else:
                    t_out = run_model(teacher.model, batch, kind, pooling=teacher.pooling, normalize=teacher.normalize,
                                      layers=cfg.layer_targets)
                    if kind == "embedding" and not fresh:
                        _cache_put(cache, cache_room, idx, mask, t_out, n_layers)
            s_out = run_model(student, batch, kind, pooling=teacher.pooling, normalize=teacher.normalize,
                              layers=list(range(1, n_layers + 1)))
            loss = w["cos"] * cos(s_out["hidden"], t_out["hidden"].float(), mask)
            for k in range(n_layers):
                loss = loss + w["layers"] / n_layers * layer_cos[k](s_out["layers"][k], t_out["layers"][k].float(), mask)
            if kind == "embedding":
                loss = loss + w["emb"] * emb_cos(s_out["emb"], t_out["emb"]) \
                    + w["rel"] * similarity_matrix_loss(s_out["emb"], t_out["emb"])
            elif kind == "mlm":
                sel = mlm_labels != -100
                loss = loss + w["soft"] * kd_tok(s_out["logits"], t_out["logits"], sel)
                if sel.any():
                    loss = loss + w["hard"] * torch.nn.functional.cross_entropy(s_out["logits"][sel], mlm_labels[sel])
            else:
                y = None
                if labels is not None and any(labels[i] is not None for i in idx):
                    y = torch.tensor([-100 if labels[i] is None else labels[i] for i in idx])  # -100: ignored by CE
                loss = loss + (w["soft"] + w["hard"]) * kd_cls(s_out["logits"], t_out["logits"], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            last_lr = opt.param_groups[0]["lr"]
            opt.step()
            step += 1
            running += loss.item()
            n_b += 1
            elapsed = clock() - t0
            if cfg.time_budget_s and n_b == 10:
                # fit the LR schedule to the time budget so the run ends annealed, not cut mid-way; refitted
                # in each epoch because later epochs are cheaper (the teacher's outputs are cached)
                rate = (elapsed - epoch_t0) / n_b
                fit = step + int((cfg.time_budget_s - elapsed) / rate)
                plan["total"] = max(step + 1, min(steps_per_epoch * cfg.epochs, fit))
            sched.step()  # after the refit, so the next step's LR already follows the new plan
            if cfg.eval_every and step % cfg.eval_every == 0:
                run_eval(epoch + 1)
            if step % 50 == 0:
                log(f"epoch {epoch + 1} step {step}/{plan['total']} loss {running / n_b:.4f} ({elapsed:.0f} s)")
            if step >= plan["total"]:
                stop = "time budget" if plan["total"] < steps_per_epoch * cfg.epochs else "epochs done"
                break
        history.append({"epoch": epoch + 1, "loss": running / max(1, n_b), "steps": n_b})
        if not (cfg.eval_every and step % cfg.eval_every == 0):
            run_eval(epoch + 1)
        if step >= plan["total"]:
            break
    student.eval()
    return {"history": history, "evals": evals, "steps": step, "planned_steps": steps_per_epoch * cfg.epochs,
            "seconds": round(clock() - t0, 1), "wall_seconds": round(time.perf_counter() - t_wall, 1),
            "budget_clock": cfg.budget_clock, "stopped": stop, "weights": w,
            "teacher_cached": kind == "embedding", "batch_size": cfg.batch_size, "lr": cfg.lr,
            "lr_last": last_lr,
            "temperature": cfg.temperature, "max_length": cfg.max_length, "freeze_embeddings": cfg.freeze_embeddings, "train_examples": len(texts),
            "layer_targets": cfg.layer_targets, "cached_texts": len(cache), "augment": cfg.augment}


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


def _cache_put(cache: dict, room: list, idx: list[int], mask, t_out: dict, n_layers: int) -> None:
    """Keep the teacher's outputs for these texts (fp16, real tokens only) while memory is left."""
    for r, i in enumerate(idx):
        n_tok = int(mask[r].sum())
        cost = 2 * n_tok * t_out["hidden"].shape[-1] * (1 + n_layers)
        if cost > room[0]:
            return
        room[0] -= cost
        cache[i] = (t_out["hidden"][r, :n_tok].half(), t_out["emb"][r].clone(),
                    [t_out["layers"][k][r, :n_tok].half() for k in range(n_layers)])


def _stack_hidden(rows, length: int):
    import torch

    out = torch.zeros(len(rows), length, rows[0].shape[-1])
    for i, r in enumerate(rows):
        out[i, :r.shape[0]] = r.float()
    return out


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
