"""Turn a recipe's [[loss]] entries into loss modules bound to concrete student/teacher taps.

A Term says which student taps and teacher keys it reads; the engine captures those with hooks,
gets the teacher keys from the cache, and calls `term(student_out, teacher_out, y)`.
Teacher keys are "logits", "<tap>" (raw feature) or "<tap>|at<p>" (attention map: what AT caches).

Each recipe loss `type` is declared once below with @register_loss (registry.py): its recipe keys,
a value check run when the recipe is parsed, and the builder that makes its Term(s).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from edgekd.distill import losses as L
from edgekd.distill.hooks import FeatureTaps, auto_embedding, auto_pairs
from edgekd.distill.recipe import LossSpec, Recipe
from edgekd.distill.registry import LOSSES, boolean, first_error, number, register_loss
from edgekd.errors import EdgeKDError


class Term(nn.Module):
    def __init__(self, spec: LossSpec, module: nn.Module, s_taps: list[str], t_keys: list[str],
                 fn: Callable, needs_labels: bool = False):
        super().__init__()
        self.spec, self.module = spec, module
        self.s_taps, self.t_keys, self.fn, self.needs_labels = s_taps, t_keys, fn, needs_labels

    def forward(self, s: dict, t: dict, y):
        return self.fn(self.module, s, t, y)


def teacher_reducers(terms: list[Term]) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Per teacher key, how to turn the hooked tensor into what is cached."""
    red: dict[str, Callable] = {}
    for term in terms:
        for key in term.t_keys:
            if "|at" in key:
                p = float(key.split("|at", 1)[1])
                red[key] = lambda f, _p=p: L.attention_map(f, _p)
            else:
                red.setdefault(key, lambda f: f)
    return red


def _shapes(model: nn.Module, taps: list[str], example: torch.Tensor, who: str) -> dict[str, tuple[int, ...]]:
    hooks = FeatureTaps(model, taps, who)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was)
        hooks.remove()
    missing = [t for t in taps if t not in hooks.out]
    if missing:
        raise EdgeKDError(f"{who} layer(s) {missing} were not called in forward (no output to distill from)")
    return {k: tuple(v.shape[1:]) for k, v in hooks.out.items()}


def _pairs(spec: LossSpec, student, teacher, ex) -> list[tuple[str, str]]:
    pairs = spec.params.get("pairs", "auto")
    if pairs == "auto":
        return auto_pairs(student, teacher, ex, ex, max_pairs=int(spec.params.get("max_pairs", 2)))
    return [tuple(p) for p in pairs]


def _embedding(spec: LossSpec, student, teacher, ex) -> tuple[str, str]:
    emb = spec.params.get("embedding", "auto")
    if emb == "auto":
        return auto_embedding(student, ex, "student"), auto_embedding(teacher, ex, "teacher")
    return emb[0], emb[1]


def build_terms(recipe: Recipe, student: nn.Module, teacher: nn.Module, example: torch.Tensor,
                skipped: list[str] | None = None) -> list[Term]:
    """One Term per recipe loss. A feature loss marked `optional = true` whose layers are chosen
    automatically is left out (reason appended to `skipped`) when the two models have no such layers,
    so the default recipe still works for any teacher/student pair (it falls back to plain KD)."""
    terms: list[Term] = []
    for spec in recipe.losses:
        auto = spec.params.get("pairs", spec.params.get("embedding", "auto")) == "auto"
        lt = LOSSES.get(spec.type)
        if lt is not None and "optional" in lt.keys and spec.params.get("optional") and auto:
            try:
                terms.extend(_build_one(spec, student, teacher, example))
            except EdgeKDError as exc:
                if skipped is not None:
                    skipped.append(f"{spec.name}: {exc}")
            continue
        terms.extend(_build_one(spec, student, teacher, example))
    return terms


def _build_one(spec: LossSpec, student: nn.Module, teacher: nn.Module, example: torch.Tensor) -> list[Term]:
    lt = LOSSES.get(spec.type)
    if lt is None:  # parse_recipe already rejects unknown types
        raise EdgeKDError(f"unknown loss type {spec.type}")
    return lt.build(spec, student, teacher, example)


# ---- logit losses -------------------------------------------------------------------------------

def _check_kd(p: dict) -> str | None:
    err = number(p, "alpha")
    if err:
        return err
    if "alpha" in p and not 0.0 <= p["alpha"] <= 1.0:
        return "alpha must lie in [0, 1]"
    return boolean(p, "standardize")


@register_loss("ce", keys={"label_smoothing"})
def _build_ce(spec, student, teacher, example):
    mod = L.CELoss(spec.params.get("label_smoothing", 0.0))
    return [Term(spec, mod, [], [], lambda m, s, t, y: m(s["logits"], y), needs_labels=True)]


@register_loss("kd", keys={"temperature", "alpha", "label_smoothing", "standardize"}, check=_check_kd)
def _build_kd(spec, student, teacher, example):
    p = spec.params
    mod = L.KDLoss(p.get("temperature", 4.0), p.get("alpha", 0.9), p.get("label_smoothing", 0.0),
                   standardize=p.get("standardize", False))
    return [Term(spec, mod, [], ["logits"], lambda m, s, t, y: m(s["logits"], t["logits"], y))]


@register_loss("dkd", keys={"temperature", "alpha", "beta", "standardize"},
               check=lambda p: first_error(number(p, "alpha", 0.0), number(p, "beta", 0.0), boolean(p, "standardize")))
def _build_dkd(spec, student, teacher, example):
    p = spec.params
    mod = L.DKDLoss(p.get("temperature", 4.0), p.get("alpha", 1.0), p.get("beta", 8.0),
                    standardize=p.get("standardize", False))
    return [Term(spec, mod, [], ["logits"], lambda m, s, t, y: m(s["logits"], t["logits"], y), needs_labels=True)]


@register_loss("dist", keys={"temperature", "beta", "gamma"},
               check=lambda p: first_error(number(p, "beta", 0.0), number(p, "gamma", 0.0)))
def _build_dist(spec, student, teacher, example):
    p = spec.params
    mod = L.DISTLoss(p.get("temperature", 1.0), p.get("beta", 1.0), p.get("gamma", 1.0))
    return [Term(spec, mod, [], ["logits"], lambda m, s, t, y: m(s["logits"], t["logits"]))]


# ---- feature losses -----------------------------------------------------------------------------

def _build_paired(spec, student, teacher, example):
    """hint / at: one loss module per (student layer, teacher layer) pair, averaged."""
    p = spec.params
    pairs = _pairs(spec, student, teacher, example)
    s_shapes = _shapes(student, [a for a, _ in pairs], example, "student")
    t_shapes = _shapes(teacher, [b for _, b in pairs], example, "teacher")
    if spec.type == "hint":
        mods = nn.ModuleList(L.HintLoss(s_shapes[a], t_shapes[b]) for a, b in pairs)
        keys = [b for _, b in pairs]
    else:
        for a, b in pairs:
            if len(s_shapes[a]) != 3 or len(t_shapes[b]) != 3:
                raise EdgeKDError(f"attention transfer needs feature maps; {a} -> {s_shapes[a]}, {b} -> {t_shapes[b]}")
        pw = float(p.get("p", 2.0))
        mods = nn.ModuleList(L.AttentionTransferLoss(pw) for _ in pairs)
        keys = [f"{b}|at{pw:g}" for _, b in pairs]

    def fn(m, s, t, y, _pairs=pairs, _keys=keys):
        return sum(mi(s[a], t[k]) for mi, (a, _), k in zip(m, _pairs, _keys)) / len(_pairs)

    return [Term(spec, mods, [a for a, _ in pairs], keys, fn)]


def _build_embedding(spec, student, teacher, example):
    """rkd / cosine: one student and one teacher embedding tap."""
    p = spec.params
    s_tap, t_tap = _embedding(spec, student, teacher, example)
    s_shape = _shapes(student, [s_tap], example, "student")[s_tap]
    t_shape = _shapes(teacher, [t_tap], example, "teacher")[t_tap]
    if spec.type == "rkd":
        mod = L.RKDLoss(p.get("distance_weight", 25.0), p.get("angle_weight", 50.0))
    else:
        s_dim, t_dim = int(torch.Size(s_shape).numel()), int(torch.Size(t_shape).numel())
        mod = L.CosineAlignmentLoss(s_dim, t_dim)

    def fn(m, s, t, y, _a=s_tap, _b=t_tap):
        return m(s[_a].flatten(1), t[_b].flatten(1))

    return [Term(spec, mod, [s_tap], [t_tap], fn)]


register_loss("hint", keys={"pairs", "max_pairs", "optional"})(_build_paired)
register_loss("at", keys={"pairs", "max_pairs", "p", "optional"})(_build_paired)
register_loss("rkd", keys={"embedding", "distance_weight", "angle_weight", "optional"})(_build_embedding)
register_loss("cosine", keys={"embedding", "optional"})(_build_embedding)
