"""Derive a smaller student from an HF teacher, DistilBERT style; the tokenizer stays the teacher's.

- Layer selection: the student keeps a subset of the teacher's transformer layers plus embeddings
  and heads, all initialised from the teacher's weights. Default: half the layers spread evenly with
  the first and the LAST kept (6 -> 0,2,5; 12 -> 0,2,4,6,8,11): the last layer's output space is what
  the teacher's pooled embedding lives in, so keeping it starts the student much closer (MiniLM-L6:
  Spearman 0.57 vs 0.47 untrained, 0.80 vs 0.71 after 150 steps, benchmarks/results/minilm_distill.json).
  "every-other" (0,2,4, DistilBERT's exact rule) is still available.
- Smaller hidden size: same depth (or the selected layers), narrower; each weight is initialised
  from the leading slice of the teacher's (whole attention heads kept, residual width truncated).
  Hidden-state alignment then goes through a learned projection.
- Narrower MLP (`intermediate_size`, or the one a smaller hidden size implies): each layer keeps the
  teacher's neurons that add most to the residual stream on the training text (mlp_neurons), not the first k.
"""

from __future__ import annotations

import copy
import re
from typing import Sequence

from edgekd.errors import EdgeKDError
from edgekd.hf.mlp_neurons import cut, important_neurons, mean_abs_inputs, mlp_axes


INFLUENCE = "influence"


def influence_count(layers, n_teacher: int) -> int | None:
    """k for an "influence[:k]" spec (k defaults to half the layers, rounded up), else None."""
    if not (isinstance(layers, str) and layers.split(":")[0].strip() == INFLUENCE):
        return None
    _, _, k = layers.partition(":")
    if k and not k.strip().isdigit():
        raise EdgeKDError(f"--layers {layers!r}: want influence or influence:<count>")
    k = int(k) if k else (n_teacher + 1) // 2
    if not 1 <= k <= n_teacher:
        raise EdgeKDError(f"--layers {layers!r}: the teacher has {n_teacher} layers, want 1..{n_teacher}")
    return k


def parse_layers(layers: str | int | Sequence[int] | None, n_teacher: int,
                 influence: Sequence[float] | None = None) -> list[int]:
    """None -> half the layers (rounded up) spread evenly, first and last kept (6 -> 0,2,5);
    int k -> k layers spread the same way (k=1 -> the first); "every-other" -> 0,2,4,... (DistilBERT);
    "influence[:k]" -> the k layers of highest block influence (edgekd.hf.layer_influence; `influence` holds
    the scores), first and last kept; "0,2,4" or a list -> exactly those teacher layers."""
    k_infl = influence_count(layers, n_teacher)
    if k_infl is not None:
        from edgekd.hf.layer_influence import most_influential

        if influence is None or len(influence) != n_teacher:
            raise EdgeKDError(f"--layers {layers!r} needs the teacher's block influence per layer (texts to measure it)")
        return most_influential(influence, k_infl)
    if layers == "every-other":
        sel = list(range(0, n_teacher, 2))
    elif layers is None or layers == "" or isinstance(layers, int) or (isinstance(layers, str) and layers.strip().isdigit()):
        k = (n_teacher + 1) // 2 if layers in (None, "") else int(layers)
        if not 1 <= k <= n_teacher:
            raise EdgeKDError(f"--layers {k}: the teacher has {n_teacher} layers, want 1..{n_teacher}")
        sel = [0] if k == 1 else [int(i * (n_teacher - 1) / (k - 1)) for i in range(k)]
    else:
        try:
            sel = [int(v) for v in (layers.split(",") if isinstance(layers, str) else layers)]
        except (TypeError, ValueError):
            raise EdgeKDError(f"--layers {layers!r}: want a count or a comma-separated list of layer indices") from None
    if not sel or len(set(sel)) != len(sel) or any(not 0 <= i < n_teacher for i in sel):
        raise EdgeKDError(f"--layers {layers!r}: indices must be distinct and within 0..{n_teacher - 1}")
    return sorted(sel)


def layer_targets(selected: Sequence[int], n_teacher: int) -> list[int]:
    """For each student layer but the last, the teacher hidden state its output should imitate: the one
    after the teacher layers it replaces (kept layer i stands for teacher layers i .. next kept - 1), as an
    index into HF's hidden_states (0 = embeddings). Student 0,2,5 of 6 -> [2, 5]."""
    sel = sorted(selected)
    return [sel[k + 1] for k in range(len(sel) - 1)]


def _layer_prefix(model, n_layers: int) -> str:
    """Name of the ModuleList holding the transformer layers (bert.encoder.layer, transformer.layer ...)."""
    from torch import nn

    for name, mod in model.named_modules():
        # "h": GPT-2 / GPT-J / Falcon (transformer.h); "layers": Llama, Qwen2, Phi, GPT-NeoX; "layer": BERT
        if isinstance(mod, nn.ModuleList) and len(mod) == n_layers and name.split(".")[-1] in ("layer", "layers", "h"):
            return name
    shared = getattr(model.config, "model_type", "") == "albert"
    why = ("ALBERT shares one set of layer weights across its depth; edgekd derives students from per-layer weights "
           "(selected or narrowed), which ALBERT does not have" if shared else
           f"no ModuleList named 'layer'/'layers'/'h' with {n_layers} entries (BERT-style encoders, GPT-2, Llama, "
           "Qwen2, Phi and GPT-NeoX decoders have one)")
    raise EdgeKDError(f"cannot find the transformer layer list of {type(model).__name__}: {why}")


def _mlp_key(cfg) -> str | None:
    return next((k for k in ("intermediate_size", "n_inner") if hasattr(cfg, k)), None)


def _mlp_width(cfg) -> int | None:
    """The MLP's hidden width of a config (GPT-2's n_inner None means 4 x the hidden size)."""
    key = _mlp_key(cfg)
    full = getattr(cfg, key, None) if key else None
    if key == "n_inner" and full is None:
        full = 4 * cfg.hidden_size  # GPT-2's default
    return full


def _narrow_mlp(cfg, intermediate_size: int | None) -> None:
    """A narrower MLP (decoders: keep the depth budget for layers); mlp_neurons picks which neurons stay."""
    if intermediate_size is None:
        return
    full = _mlp_width(cfg)
    if full is None or not 0 < intermediate_size <= full:
        raise EdgeKDError(f"--intermediate-size {intermediate_size}: want 1..{full} (the teacher's MLP width)")
    setattr(cfg, _mlp_key(cfg), intermediate_size)


def _student_config(teacher, sel: list[int], intermediate_size: int | None):
    cfg = copy.deepcopy(teacher.config)
    cfg.num_hidden_layers = len(sel)
    if isinstance(getattr(cfg, "layer_types", None), list):  # per-layer attention kinds (Qwen2, Gemma): keep the kept ones'
        cfg.layer_types = [cfg.layer_types[i] for i in sel]
    _narrow_mlp(cfg, intermediate_size)
    return cfg


def _layer_choice(layers, influence) -> str:
    if influence is not None:
        return "block influence (ShortGPT), first and last kept"
    if layers == "every-other":
        return "every other layer (DistilBERT)"
    if layers in (None, "") or isinstance(layers, int) or str(layers).strip().isdigit():
        return "evenly spread, first and last kept"
    return "the layers given"


def derive_hf_student(teacher, *, layers: str | int | Sequence[int] | None = None,
                      hidden_size: int | None = None, intermediate_size: int | None = None, seed: int = 0,
                      texts: Sequence[str] | None = None, max_length: int = 128):
    """Return (student model, info dict). `teacher` is an edgekd.hf.HFTeacher. `texts`: what block influence
    is measured on when layers is "influence[:k]"."""
    import torch

    n = teacher.num_layers
    influence = None
    if influence_count(layers, n) is not None:
        from edgekd.hf.layer_influence import block_influence

        if not texts:
            raise EdgeKDError(f"--layers {layers}: choosing layers by influence needs texts to measure it on")
        influence = block_influence(teacher, texts, max_length=max_length)
    sel = parse_layers(layers, n, influence)
    cfg = _student_config(teacher, sel, intermediate_size)
    t_hidden = teacher.hidden_size
    if hidden_size is not None:
        heads = int(teacher.config.num_attention_heads)
        head_dim = t_hidden // heads
        if hidden_size <= 0 or hidden_size > t_hidden or hidden_size % head_dim:
            raise EdgeKDError(f"--hidden-size {hidden_size}: want a multiple of the head size {head_dim} up to {t_hidden}")
        cfg.hidden_size = hidden_size
        cfg.num_attention_heads = hidden_size // head_dim
        if hasattr(cfg, "intermediate_size"):
            cfg.intermediate_size = int(cfg.intermediate_size * hidden_size / t_hidden)
    torch.manual_seed(seed)
    student = type(teacher.model)(cfg)
    student.eval()

    prefix = _layer_prefix(teacher.model, n)
    pat = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(.*)$")
    new_index = {t: s for s, t in enumerate(sel)}
    t_state = teacher.model.state_dict()
    s_state = student.state_dict()
    full, keep = _mlp_width(teacher.config), _mlp_width(cfg)
    narrower = bool(full and keep and keep < full)
    acts = _mlp_activations(teacher, prefix, sel, full, texts, max_length) if narrower and texts else None
    neurons = _kept_neurons(t_state, s_state, prefix, new_index, full, keep, acts) if narrower else {}
    out = {}
    for key, t_val in t_state.items():
        m = pat.match(key)
        if m:
            t_i = int(m.group(1))
            if t_i not in new_index:
                continue
            key = f"{prefix}.{new_index[t_i]}.{m.group(2)}"
        if key not in s_state:
            continue
        s_val = s_state[key]
        if s_val.shape != t_val.shape:
            if s_val.dim() != t_val.dim():
                continue
            axes, index = neurons.get(int(m.group(1)), ({}, None)) if m else ({}, None)
            t_val = cut(t_val, s_val.shape, axes.get(m.group(2)) if m else None, index)  # whole heads and neurons
        out[key] = t_val.clone()
    missing = [k for k in s_state if k not in out]
    student.load_state_dict(out, strict=False)
    if hasattr(student, "tie_weights"):
        student.tie_weights()
    t_params = sum(p.numel() for p in teacher.model.parameters())
    s_params = sum(p.numel() for p in student.parameters())
    info = {"layers": sel, "num_layers": len(sel), "teacher_layers": n, "hidden_size": int(cfg.hidden_size),
            "teacher_hidden_size": t_hidden, "params": s_params, "teacher_params": t_params,
            "init": "teacher" if not missing else f"teacher (except {len(missing)} tensors)",
            "intermediate_size": getattr(cfg, "intermediate_size", getattr(cfg, "n_inner", None)),
            **({"mlp_neurons": "per layer, the teacher's neurons with the largest mean |activation| x output-weight "
                "norm on the training text" if acts else "the leading neurons of each layer (no text to measure "
                "activations on)"} if neurons else {}),
            "tied_embeddings": bool(getattr(cfg, "tie_word_embeddings", False)),
            "layer_choice": _layer_choice(layers, influence),
            **({"block_influence": influence} if influence is not None else {}),
            "mode": "layer-selection" if hidden_size in (None, t_hidden) else "smaller-hidden"}
    return student, info



def _kept_neurons(t_state, s_state, prefix: str, new_index: dict[int, int], full: int, keep: int,
                  acts: dict | None = None) -> dict[int, tuple[dict[str, int], object]]:
    """{teacher layer: ({layer-relative key: MLP axis}, kept neuron indices)} for a narrower student MLP; acts:
    mean_abs_inputs of the teacher's layers (None: weights only)."""
    out = {}
    for t_i, s_i in new_index.items():
        tp, sp = f"{prefix}.{t_i}.", f"{prefix}.{s_i}."
        t_layer = {k[len(tp):]: v for k, v in t_state.items() if k.startswith(tp)}
        s_layer = {k[len(sp):]: v for k, v in s_state.items() if k.startswith(sp)}
        axes = mlp_axes(t_layer, s_layer, full, keep)
        if not axes:
            continue
        seen = (acts or {}).get(t_i) or {}
        activation = sum(seen.values()) / len(seen) if seen else None
        out[t_i] = (axes, important_neurons(t_layer, axes, keep, activation, tuple(f"{n}.weight" for n in seen)))
    return out


MLP_ACTIVATION_BLOCKS = 8  # token blocks of the training text the neuron activations are averaged over


def _mlp_activations(teacher, prefix: str, sel: list[int], full: int, texts, max_length: int) -> dict | None:
    """Mean |input| of each kept teacher layer's down projection, per MLP neuron, on the first blocks of `texts`."""
    from edgekd.hf.lm_eval import lm_batches

    batches = lm_batches(teacher.tokenizer, list(texts), max_length=max_length, batch_size=1,
                         limit=MLP_ACTIVATION_BLOCKS)
    if not batches:
        return None
    layers = teacher.model.get_submodule(prefix)
    return mean_abs_inputs(teacher.model, {i: layers[i] for i in sel}, full, batches)
