"""Turn a recipe's [[loss]] entries into loss modules bound to concrete student/teacher taps.

A Term says which student taps and teacher keys it reads; the engine captures those with hooks,
gets the teacher keys from the cache, and calls `term(student_out, teacher_out, y)`.
Teacher keys are "logits", "<tap>" (raw feature) or "<tap>|<tag>" (a feature reduced before caching,
e.g. "layer2|at2", AT's attention map). Everything loss-specific comes from the registry (registry.py).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from edgekd.distill.hooks import FeatureTaps, auto_embedding, auto_pairs
from edgekd.distill.recipe import LossSpec, Recipe, loss_types
from edgekd.distill.registry import LossType, Tap
from edgekd.errors import EdgeKDError


class Term(nn.Module):
    def __init__(self, spec: LossSpec, module: nn.Module, s_taps: list[str], t_keys: list[str],
                 fn: Callable, needs_labels: bool = False, reducers: dict[str, Callable] | None = None,
                 reads_labels: bool | None = None):
        super().__init__()
        self.spec, self.module = spec, module
        self.s_taps, self.t_keys, self.fn, self.needs_labels = s_taps, t_keys, fn, needs_labels
        # mixup mixes the loss of a term that reads labels (engine: Trainable), not the labels themselves
        self.reads_labels = needs_labels if reads_labels is None else reads_labels
        self.reducers = reducers or {}  # teacher key -> what to cache instead of the hooked tensor

    def forward(self, s: dict, t: dict, y):
        return self.fn(self.module, s, t, y)


def _identity(f: torch.Tensor) -> torch.Tensor:
    return f


def teacher_reducers(terms: list[Term]) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Per teacher key, how to turn the hooked tensor into what is cached."""
    red: dict[str, Callable] = {}
    for term in terms:
        for key in term.t_keys:
            red.setdefault(key, term.reducers.get(key, _identity))
    return red


def build_terms(recipe: Recipe, student: nn.Module, teacher: nn.Module, example: torch.Tensor,
                skipped: list[str] | None = None) -> list[Term]:
    """One Term per recipe loss. A layer loss marked `optional = true` whose layers are chosen
    automatically is left out (reason appended to `skipped`) when the two models have no such layers,
    so the default recipe still works for any teacher/student pair (it falls back to plain KD)."""
    types = loss_types()
    terms: list[Term] = []
    for spec in recipe.losses:
        lt = types[spec.type]  # parse_recipe already rejected unknown types
        params = lt.resolve(spec.params)
        if params.get("optional") and lt.layers_are_auto(spec.params):
            try:
                terms.append(_build(spec, lt, params, student, teacher, example))
            except EdgeKDError as exc:
                if skipped is not None:
                    skipped.append(f"{spec.name}: {exc}")
            continue
        terms.append(_build(spec, lt, params, student, teacher, example))
    return terms


def _build(spec: LossSpec, lt: LossType, p: dict, student: nn.Module, teacher: nn.Module,
           example: torch.Tensor) -> Term:
    if lt.student == "logits":
        return _logit_term(spec, lt, p)
    pairs = _layer_pairs(lt, p, student, teacher, example)
    s_shapes = _shapes(student, [a for a, _ in pairs], example, "student")
    t_shapes = _shapes(teacher, [b for _, b in pairs], example, "teacher")
    mods = [lt.make(p, Tap(a, s_shapes[a]), Tap(b, t_shapes[b])) for a, b in pairs]
    tag, reduce = lt.cache_teacher(p) if lt.cache_teacher else (None, None)
    keys = [f"{b}|{tag}" if tag else b for _, b in pairs]
    reducers = {k: reduce for k in keys} if reduce else {}
    s_taps = [a for a, _ in pairs]
    if lt.student == "embedding":  # one vector per sample and model
        (a, k), mod = (s_taps[0], keys[0]), mods[0]

        def fn(m, s, t, y):
            return m(s[a].flatten(1), t[k].flatten(1))
    else:  # one module per layer pair, averaged
        mod = nn.ModuleList(mods)

        def fn(m, s, t, y):
            return sum(mi(s[a], t[k]) for mi, a, k in zip(m, s_taps, keys)) / len(s_taps)

    return Term(spec, mod, s_taps, keys, fn, needs_labels=lt.labels == "required", reducers=reducers,
                reads_labels=lt.labels != "none")


def _logit_term(spec: LossSpec, lt: LossType, p: dict) -> Term:
    """The module is called as (student logits[, teacher logits][, labels]), as declared."""
    with_teacher, with_labels = lt.teacher == "logits", lt.labels != "none"

    def fn(m, s, t, y):
        return m(s["logits"], *((t["logits"],) if with_teacher else ()), *((y,) if with_labels else ()))

    return Term(spec, lt.make(p, None, None), [], ["logits"] if with_teacher else [], fn,
                needs_labels=lt.labels == "required", reads_labels=with_labels)


def _layer_pairs(lt: LossType, p: dict, student, teacher, ex) -> list[tuple[str, str]]:
    """(student tap, teacher tap) per pair: named in the recipe, or found by hooks.auto_*."""
    if lt.student == "pairs":
        if p["pairs"] == "auto":
            return auto_pairs(student, teacher, ex, ex, max_pairs=int(p["max_pairs"]))
        return [tuple(q) for q in p["pairs"]]
    if p["embedding"] == "auto":
        return [(auto_embedding(student, ex, "student"), auto_embedding(teacher, ex, "teacher"))]
    return [tuple(p["embedding"])]


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
