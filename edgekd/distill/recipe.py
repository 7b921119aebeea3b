"""Recipes: which losses, with what weights and layer pairs, plus training settings. TOML files.

    name = "mine"
    [train]
    lr = 0.003
    augment = "crop-flip"
    [[loss]]
    type = "kd"
    temperature = 4.0
    alpha = 0.9
    [[loss]]
    type = "hint"
    pairs = [["features.1", "layer2"]]   # or "auto"
    end = 0.25                           # active for the first 25 % of steps (FitNets stage 1)

Built-in recipes live beside this file (recipes/<name>.toml). Overrides are dotted keys:
"train.lr", "kd.temperature" (a loss by its name, which defaults to its type) or "loss.0.weight".
Loss types, their keys, defaults and value checks are declared once each, with @register_loss
beside the loss module (edgekd/distill/losses/; see registry.py).
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from edgekd.distill.registry import LOSSES, LossType
from edgekd.errors import EdgeKDError

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"


def loss_types() -> dict[str, LossType]:
    """Every registered loss type; importing edgekd.distill.losses registers the built-in ones (torch)."""
    import edgekd.distill.losses  # noqa: F401

    return LOSSES


class _LossKeys(Mapping):
    """type -> allowed keys besides type/name/weight/start/end, read from the loss registry."""

    def __getitem__(self, name: str) -> set[str]:
        return set(loss_types()[name].keys)

    def __iter__(self) -> Iterator[str]:
        return iter(loss_types())

    def __len__(self) -> int:
        return len(loss_types())


# The former hand-kept dict, now a view of the registry; tests/test_distill_losses_logit.py reads it.
LOSS_TYPES: Mapping[str, set[str]] = _LossKeys()

TRAIN_DEFAULTS: dict[str, Any] = {
    "optimizer": "adamw",  # adamw | sgd
    "lr": 3e-3,
    "weight_decay": 5e-4,
    "momentum": 0.9,
    "scheduler": "onecycle",  # onecycle | cosine | constant
    "warmup": 0.1,  # fraction of steps (onecycle / cosine)
    "augment": "none",  # none | flip | crop | crop-flip
    "views": 4,  # augmented views per sample cached for the teacher (see cache.py)
    "checkpoint_every": 200,  # steps; 0 = only at epoch end
    "grad_clip": 0.0,
    "mixup": 0.0,  # Beta(a, a) concentration of input mixup, 0 = off; the teacher then runs live on the mix
}
# Optional train settings, in a recipe's dict only when given (so runs without them keep their fingerprints):
# freeze_bn: BatchNorm layers keep their running statistics while training (their scale and shift still learn):
# fine-tuning a pretrained student on a few dozen images, whose batch statistics would replace ImageNet's.
OPTIONAL_TRAIN = {"freeze_bn": False}
AUGMENTS = ("none", "flip", "crop", "crop-flip")
PSEUDO_DEFAULTS: dict[str, Any] = {"threshold": 0.0}
COMMON_KEYS = {"type", "name", "weight", "start", "end", "warmup"}


@dataclass
class LossSpec:
    type: str
    name: str
    weight: float = 1.0
    start: float = 0.0  # active while start <= progress < end, progress = step / total steps
    end: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    warmup: float = 0.0  # fraction of training over which the weight ramps linearly from 0 (DKD's warm-up)

    def active(self, progress: float) -> bool:
        return self.start <= progress < self.end or (self.end >= 1.0 and progress >= 1.0)

    def factor(self, progress: float) -> float:
        """Multiplier of `weight` at this point of training: 0 while inactive, ramping over `warmup`."""
        if not self.active(progress):
            return 0.0
        return 1.0 if self.warmup <= 0 else min(1.0, (progress - self.start) / self.warmup)


@dataclass
class Recipe:
    name: str
    losses: list[LossSpec]
    train: dict[str, Any]
    pseudo_labels: dict[str, Any]
    description: str = ""
    source: str = "builtin"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "train": dict(self.train),
            "pseudo_labels": dict(self.pseudo_labels),
            "loss": [{"type": s.type, "name": s.name, "weight": s.weight, "start": s.start, "end": s.end,
                      **({"warmup": s.warmup} if s.warmup else {}), **s.params}
                     for s in self.losses],
        }


def builtin_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def _read(spec: str) -> tuple[dict[str, Any], str]:
    path = Path(spec).expanduser()
    if spec.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise EdgeKDError(f"recipe file {spec} does not exist")
        source = str(path)
    else:
        path = RECIPE_DIR / f"{spec}.toml"
        if not path.is_file():
            raise EdgeKDError(f"unknown recipe '{spec}'; built-in: {', '.join(builtin_recipes())}, or give a .toml file")
        source = f"builtin:{spec}"
    try:
        return tomllib.loads(path.read_text()), source
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EdgeKDError(f"recipe {path} is not valid TOML: {exc}") from None


def _coerce(value: Any) -> Any:
    """CLI override strings: parse as a TOML value (numbers, booleans, arrays), else keep the string."""
    if not isinstance(value, str):
        return value
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    losses = raw.setdefault("loss", [])
    for key, value in (overrides or {}).items():
        value = _coerce(value)
        parts = key.split(".")
        if len(parts) == 1:
            parts = ["train", parts[0]]  # bare keys are training settings: lr, augment, ...
        head, rest = parts[0], parts[1:]
        if head in ("train", "pseudo_labels") and len(rest) == 1:
            raw.setdefault(head, {})[rest[0]] = value
            continue
        if head == "loss" and rest:
            head, rest = rest[0], rest[1:]
        target = None
        if head.isdigit() and int(head) < len(losses):
            target = losses[int(head)]
        else:
            target = next((l for l in losses if l.get("name", l.get("type")) == head), None)
        if target is None or len(rest) != 1:
            names = [l.get("name", l.get("type")) for l in losses]
            raise EdgeKDError(f"override '{key}' names no recipe field; use train.<key>, pseudo_labels.<key> "
                              f"or <loss>.<key> with a loss among {names}")
        target[rest[0]] = value
    return raw


def _number(d: dict, key: str, default: float, lo: float | None = None) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EdgeKDError(f"recipe: '{key}' must be a number, got {v!r}")
    if not math.isfinite(v):  # NaN passes every comparison below and reaches the optimizer
        raise EdgeKDError(f"recipe: '{key}' must be a finite number, got {v}")
    if lo is not None and v < lo:
        raise EdgeKDError(f"recipe: '{key}' must be >= {lo}, got {v}")
    return float(v)


def parse_recipe(raw: dict[str, Any], source: str = "dict") -> Recipe:
    unknown = set(raw) - {"name", "description", "train", "loss", "pseudo_labels"}
    if unknown:
        raise EdgeKDError(f"recipe {source}: unknown section(s) {sorted(unknown)}")
    train, pseudo = _parse_train(raw.get("train", {}), source), _parse_pseudo(raw.get("pseudo_labels", {}), source)
    entries = raw.get("loss", [])
    if not isinstance(entries, list) or not entries:
        raise EdgeKDError(f"recipe {source}: needs at least one [[loss]] entry")
    losses = [_parse_loss(i, e, source) for i, e in enumerate(entries)]
    names = [s.name for s in losses]
    if len(set(names)) != len(names):
        raise EdgeKDError(f"recipe {source}: loss names must be unique (got {names}); set name = \"...\"")
    return Recipe(name=str(raw.get("name", Path(source).stem)), description=str(raw.get("description", "")),
                  losses=losses, train=train, pseudo_labels=pseudo, source=source)


def _parse_train(given: dict[str, Any], source: str) -> dict[str, Any]:
    train = dict(TRAIN_DEFAULTS)
    bad = set(given) - set(TRAIN_DEFAULTS) - set(OPTIONAL_TRAIN)
    if bad:
        raise EdgeKDError(f"recipe {source}: unknown train setting(s) {sorted(bad)}; known: "
                          f"{sorted([*TRAIN_DEFAULTS, *OPTIONAL_TRAIN])}")
    train.update(given)
    if "freeze_bn" in train and not isinstance(train["freeze_bn"], bool):
        raise EdgeKDError(f"recipe {source}: train.freeze_bn must be true or false, got {train['freeze_bn']!r}")
    if train["optimizer"] not in ("adamw", "sgd"):
        raise EdgeKDError(f"recipe {source}: optimizer must be adamw or sgd, got {train['optimizer']!r}")
    if train["scheduler"] not in ("onecycle", "cosine", "constant"):
        raise EdgeKDError(f"recipe {source}: scheduler must be onecycle, cosine or constant, got {train['scheduler']!r}")
    if train["augment"] not in AUGMENTS:
        raise EdgeKDError(f"recipe {source}: augment must be one of {', '.join(AUGMENTS)}, got {train['augment']!r}")
    for k, lo in (("lr", 0.0), ("weight_decay", 0.0), ("warmup", 0.0), ("grad_clip", 0.0), ("momentum", 0.0),
                  ("mixup", 0.0)):
        train[k] = _number(train, k, TRAIN_DEFAULTS[k], lo)
    if train["lr"] <= 0:  # the optimizer accepts 0, and the run then trains nothing while reporting a student
        raise EdgeKDError(f"recipe {source}: train.lr must be above 0, got {train['lr']}")
    for k in ("views", "checkpoint_every"):
        if not isinstance(train[k], int) or isinstance(train[k], bool) or train[k] < (1 if k == "views" else 0):
            raise EdgeKDError(f"recipe {source}: train.{k} must be a non-negative integer, got {train[k]!r}")
    return train


def _parse_pseudo(given: dict[str, Any], source: str) -> dict[str, Any]:
    pseudo = dict(PSEUDO_DEFAULTS)
    if set(given) - set(PSEUDO_DEFAULTS):
        raise EdgeKDError(f"recipe {source}: pseudo_labels knows only {sorted(PSEUDO_DEFAULTS)}")
    pseudo.update(given)
    pseudo["threshold"] = _number(pseudo, "threshold", 0.0, 0.0)
    if pseudo["threshold"] > 1.0:
        raise EdgeKDError(f"recipe {source}: pseudo_labels.threshold must lie in [0, 1]")
    return pseudo


def _parse_loss(i: int, e: Any, source: str) -> LossSpec:
    """One [[loss]] entry, checked against its registered type (keys, then each value)."""
    types = loss_types()
    if not isinstance(e, dict) or e.get("type") not in types:
        raise EdgeKDError(f"recipe {source}: loss #{i} needs type = one of {sorted(types)}")
    lt = types[e["type"]]
    extra = set(e) - COMMON_KEYS - lt.keys
    if extra:
        raise EdgeKDError(f"recipe {source}: loss '{e['type']}' has unknown key(s) {sorted(extra)}; "
                          f"known: {sorted(COMMON_KEYS | lt.keys)}")
    spec = LossSpec(
        type=e["type"], name=str(e.get("name", e["type"])), weight=_number(e, "weight", 1.0, 0.0),
        start=_number(e, "start", 0.0, 0.0), end=_number(e, "end", 1.0, 0.0),
        warmup=_number(e, "warmup", 0.0, 0.0),
        params={k: v for k, v in e.items() if k not in COMMON_KEYS},
    )
    if spec.start >= spec.end:
        raise EdgeKDError(f"recipe {source}: loss '{spec.name}' has start >= end")
    problem = lt.validate(spec.params)
    if problem:
        raise EdgeKDError(f"recipe {source}: {spec.name}.{problem}")
    return spec


def load_recipe(spec: "str | dict | Recipe" = "default", overrides: dict[str, Any] | None = None) -> Recipe:
    """A built-in name, a .toml path, a dict (same layout as the TOML) or a Recipe; then overrides."""
    if isinstance(spec, Recipe):
        if not overrides:
            return spec
        raw, source = spec.to_dict(), spec.source
    elif isinstance(spec, dict):
        raw, source = spec, "dict"
    else:
        raw, source = _read(str(spec))
    return parse_recipe(apply_overrides(raw, overrides), source)
