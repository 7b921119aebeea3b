"""Teacher-assistant (TA) chains (Mirzadeh et al. 2020, "Improved KD via Teacher Assistant").

A student far smaller than its teacher imitates it badly; intermediate "assistants" bridge the gap.
plan_chain decides how many assistants (from the capacity ratio, confirmed or vetoed by a quick probe)
and sizes them geometrically in MACs between teacher and student. run_chain derives each link from the
previous *trained* link (so it inherits both the teacher's weights and what the link learned), distills
it from the previous link, and records every link as a resumable stage of the run directory.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.core.inputs import open_fraction
from edgekd.errors import EdgeKDError
from edgekd.prune import _train, _util

MAX_LINK_GAP = 10.0  # one distillation link should shrink MACs by at most ~10x
PROBE_MARGIN = 0.02  # an assistant must agree > 2 points better than the student to justify the chain
MIN_GAP = 4.0  # below this capacity ratio a student learns fine from the teacher: no probe, direct KD


@dataclass
class ChainPlan:
    student_ratio: float  # student MACs / teacher MACs
    ratios: list[float]  # MACs ratios of the assistants, largest first (empty: direct KD)
    reason: str
    mode: str = "auto"  # auto | none | <n>
    probe: dict | None = None

    @property
    def n_assistants(self) -> int:
        return len(self.ratios)

    def to_dict(self) -> dict:
        return {"student_ratio": self.student_ratio, "assistant_ratios": self.ratios,
                "n_assistants": self.n_assistants, "reason": self.reason, "mode": self.mode, "probe": self.probe}


@dataclass
class ChainResult:
    student: Any
    plan: ChainPlan
    links: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"plan": self.plan.to_dict(), "links": self.links, "seconds": self.seconds}

    @property
    def metrics(self) -> dict:
        """Same spirit as DistillResult.metrics: the student link's figures plus the chain."""
        last = self.links[-1] if self.links else {}
        return {"best_val_acc": last.get("val_acc"), "steps": sum(int(l.get("steps") or 0) for l in self.links),
                "seconds": self.seconds, "chain": self.to_dict()}


def geometric_ratios(student_ratio: float, n: int) -> list[float]:
    """n assistant sizes evenly spaced in log-MACs between teacher (1.0) and student."""
    return [round(student_ratio ** (i / (n + 1)), 6) for i in range(1, n + 1)]


def split_guidance(chain) -> tuple[str, "str | int"]:
    """--chain "dense", "dense:auto" or "dense:<n>" -> ("dense", the rest, default auto); anything else ("chain", it)."""
    if isinstance(chain, str) and chain.strip().lower().startswith("dense"):
        rest = chain.strip()[len("dense"):].lstrip(":").strip()
        return "dense", rest or "auto"
    return "chain", chain


def parse_chain(chain) -> str | int:
    """'auto' | 'none' | a non-negative integer number of assistants (a "dense:" prefix is split off first)."""
    chain = split_guidance(chain)[1]
    if isinstance(chain, int) and not isinstance(chain, bool):
        n = chain
    elif isinstance(chain, str) and chain.strip().lower() in ("auto", "none"):
        return chain.strip().lower()
    else:
        try:
            n = int(str(chain).strip())
        except ValueError:
            raise EdgeKDError(f"--chain must be auto, none or a number of assistants (optionally after dense:), "
                              f"got {chain!r}") from None
    if not 0 <= n <= 8:
        raise EdgeKDError(f"--chain: number of assistants must be between 0 and 8, got {n}")
    return n


def plan_chain(teacher=None, student_ratio: float = 0.1, *, probe=None, chain="auto",
               max_link_gap: float = MAX_LINK_GAP, margin: float = PROBE_MARGIN,
               agreement_threshold: float = 0.9, min_gap: float = MIN_GAP) -> ChainPlan:
    """Decide the assistants for a student of `student_ratio` x the teacher's MACs.

    auto: a gap <= `min_gap` never gets assistants. Above it, the capacity rule asks for as many
    assistants as keep every link under `max_link_gap` (none up to 10x), and the probe decides:
    `probe` is None (capacity rule only), a float (student-teacher agreement after a short run:
    >= agreement_threshold means no assistants, below it at least one), or a dict {"direct": a_d,
    "chain": a_c} (auto_probe: the student's agreement with the teacher after the same short budget of
    direct KD / of a one-assistant chain): assistants (at least one) only if the chain's student agrees
    more than `margin` better, none otherwise.
    """
    mode = parse_chain(chain)
    r = open_fraction(student_ratio, "student ratio", "student MACs / teacher MACs")
    gap = 1.0 / r
    if mode == "none":
        return ChainPlan(r, [], "chain disabled (--chain none): direct KD", "none")
    if isinstance(mode, int):
        return ChainPlan(r, geometric_ratios(r, mode), f"{mode} assistant(s) requested", str(mode))
    p = _probe_dict(probe)
    if gap <= min_gap:
        return ChainPlan(r, [], f"capacity gap {gap:.1f}x <= {min_gap:g}x: direct KD", "auto", p)
    n_cap = max(0, math.ceil(math.log(gap) / math.log(max_link_gap) - 1e-9) - 1)
    cap = f"capacity gap {gap:.1f}x ({n_cap} assistant(s) keep every link <= {max_link_gap:g}x)"
    a_d, a_c = (p or {}).get("direct"), (p or {}).get("chain")
    if a_d is not None and a_c is not None:
        if a_c - a_d <= margin:
            return ChainPlan(r, [], f"{cap}; probe at equal budget: the student agrees with the teacher {a_d:.3f} "
                                    f"after direct KD vs {a_c:.3f} through an assistant (not > {margin:g} "
                                    f"better): direct KD", "auto", p)
        n = max(1, n_cap)
        return ChainPlan(r, geometric_ratios(r, n), f"{cap}; probe at equal budget: the student agrees {a_c:.3f} "
                                                    f"through an assistant vs {a_d:.3f} after direct KD: "
                                                    f"{n} assistant(s)", "auto", p)
    a_s = (p or {}).get("student")
    if a_s is not None:
        if a_s >= agreement_threshold:
            return ChainPlan(r, [], f"{cap}; probe: the student already agrees {a_s:.3f} >= "
                                    f"{agreement_threshold:g} with the teacher: direct KD", "auto", p)
        n = max(1, n_cap)
        return ChainPlan(r, geometric_ratios(r, n), f"{cap}; probe: the student agrees only {a_s:.3f}: "
                                                    f"{n} assistant(s)", "auto", p)
    if n_cap == 0:
        return ChainPlan(r, [], f"{cap}, no probe: direct KD", "auto", p)
    return ChainPlan(r, geometric_ratios(r, n_cap), f"{cap}, no probe: {n_cap} assistant(s)", "auto", p)


def _probe_dict(probe) -> dict | None:
    if probe is None:
        return None
    if isinstance(probe, (int, float)) and not isinstance(probe, bool):
        return {"student": float(probe)}
    if isinstance(probe, dict):
        return dict(probe)
    raise EdgeKDError("probe must be None, a student-teacher agreement (float) or a dict")


def probe_agreement(teacher, model, data, *, steps: int = 100, recipe="hinton", batch_size: int = 128,
                    seed: int = 0, limit: int = 2000, cache=None) -> float:
    """Student-teacher top-1 agreement on held-out data after a short distillation of a copy of `model`."""
    m = copy.deepcopy(model)
    m.requires_grad_(True)
    _train.train_link(teacher, m, data, recipe=recipe, epochs=max(1, math.ceil(steps * batch_size / len(data.train))),
                      max_steps=steps, batch_size=batch_size, seed=seed, cache=cache)
    return _train.agreement(m, teacher, _train.held_out(data).x[:limit])


def auto_probe(teacher, data, student_ratio, *, example_input, steps=100, recipe="hinton", batch_size=128,
               seed=0, derive_mode="auto", round_to=8, student=None, student_blocks=None, teacher_cache=None) -> dict:
    """A miniature of the decision itself: the same short budget (2 x `steps` optimizer steps) spent on
    direct KD and on a one-assistant chain (assistant at sqrt(ratio)); returns the student's top-1
    agreement with the teacher on held-out data after each."""
    from edgekd.prune.derived import derive

    import dataclasses

    t0 = time.perf_counter()
    mid = math.sqrt(student_ratio)
    cache = teacher_cache if teacher_cache is not None else _shared_cache(recipe, data)
    if len(data.val) > 1000:  # each short run evaluates teacher and student on val: keep that cheap
        data = dataclasses.replace(data, val=data.val.subset(1000, seed))
    if student is not None:
        s = student
    else:
        s = derive(teacher, ratio=student_ratio, mode="width" if student_blocks is not None else derive_mode,
                   drop=student_blocks or None, example_input=example_input, round_to=round_to,
                   measure_latency=False).model
    a_direct = probe_agreement(teacher, s, data, steps=2 * steps, recipe=recipe, batch_size=batch_size, seed=seed,
                               cache=cache)
    res = run_chain(teacher, student, data, student_ratio=student_ratio,
                    plan=ChainPlan(student_ratio, [round(mid, 6)], "probe", "1"), example_input=example_input,
                    recipe=recipe, max_steps=2 * steps, batch_size=batch_size, seed=seed, derive_mode=derive_mode,
                    round_to=round_to, student_blocks=student_blocks, teacher_cache=cache)
    a_chain = _train.agreement(res.student, teacher, _train.held_out(data).x[:2000])
    return {"direct": round(a_direct, 4), "chain": round(a_chain, 4), "assistant_ratio": round(mid, 5),
            "steps_each": 2 * steps, "seconds": round(time.perf_counter() - t0, 2)}


def _shared_cache(recipe, data):
    if data.train.y is None:
        return None
    from edgekd.prune.structured import _shared_cache as sc

    return sc(recipe, len(data.train))


def run_chain(
    teacher,
    student,
    data,
    *,
    student_ratio: float | None = None,
    plan: ChainPlan | None = None,
    chain="auto",
    example_input=None,
    recipe="auto",
    epochs: int = 1,
    max_steps: int | None = None,
    batch_size: int = 128,
    lr: float | None = None,
    seed: int = 0,
    run=None,
    output_dir: str | Path | None = None,
    progress: bool = False,
    probe_steps: int = 100,
    derive_mode: str = "auto",
    round_to: int = 8,
    teacher_cache=None,
    student_blocks: list[str] | None = None,
    guidance: str = "chain",
) -> ChainResult:
    """Distill teacher -> TA1 -> ... -> student with the same total budget as one direct KD run.

    Budget: `max_steps` (or `epochs` over data.train) is the TOTAL number of training steps; it is split
    equally over the links, so a chain costs the same number of optimizer steps as direct KD.
    student: a given student module, or None to derive it (ratio `student_ratio`) from the last trained
    assistant, so it inherits what the chain learned (best for `--student auto:<ratio>`).
    run: an edgekd.core.RunDir; the plan and each link become stages "chain.plan", "chain.link<i>"
    (skipped on resume), link files go to RUN/chain/link<i>/ (or output_dir when no run is given).
    teacher_cache: an edgekd.distill.TeacherCache of `teacher` on `data` for the first link (benchmarks share one).
    student_blocks: with student=None, the teacher blocks the derived student must drop (its announced depth
    plan, e.g. from derive(teacher, ratio)); assistants are then width-only so those blocks still exist.
    Every link file records its dropped blocks relative to the teacher, so it loads with
    edgekd.models.load_model(teacher_spec, link/model.pt).
    guidance: "chain" (each link learns from the one before) or "dense" (DGKD, Son et al. 2021: the student link
    learns from the teacher and every trained assistant at once, through edgekd.distill.guides.DenseGuides).
    """
    run_dir = run
    import torch

    t0 = time.perf_counter()
    if not isinstance(teacher, torch.nn.Module):
        raise EdgeKDError("run_chain needs a PyTorch nn.Module teacher")
    if guidance not in ("chain", "dense"):
        raise EdgeKDError(f"chain guidance must be 'chain' or 'dense', got {guidance!r}")
    x = _util.example_tensor(example_input if example_input is not None else data.train.x[:1])
    teacher.eval()
    t_macs, _ = _util.count(teacher, x)
    if student is not None:
        s_macs, _ = _util.count(student, x)
        if student_ratio is None:
            student_ratio = s_macs / max(1, t_macs)
    if student_ratio is None and plan is None:
        raise EdgeKDError("run_chain needs student_ratio, a student or a plan")
    if teacher_cache is None:  # the teacher is fixed: its outputs serve the probe and the first link
        teacher_cache = _shared_cache(recipe, data)
    if plan is None:
        plan = _planned(teacher, data, student_ratio, chain, student, x, run_dir=run_dir, probe_steps=probe_steps,
                        batch_size=batch_size, seed=seed, derive_mode=derive_mode, round_to=round_to,
                        student_blocks=student_blocks, recipe=recipe, teacher_cache=teacher_cache)

    n_links = plan.n_assistants + 1
    steps_per_epoch = math.ceil(len(data.train) / batch_size)
    total = max_steps if max_steps is not None else epochs * steps_per_epoch
    per_link = max(1, total // n_links)
    link_epochs = max(1, math.ceil(per_link / steps_per_epoch))
    out_root = Path(output_dir) if output_dir else (Path(run_dir.root) / "chain" if run_dir is not None else None)

    links: list[dict] = []
    # Derivation starts from a tagged copy: every module remembers its teacher name, so blocks dropped by
    # later links (whose containers were renumbered) are recorded relative to the teacher.
    prev, prev_ratio, prev_key = teacher, 1.0, _weights_key(teacher)
    prev_arch, prev_dropped = _tagged(copy.deepcopy(teacher)), []
    sizes = plan.ratios + [plan.student_ratio]
    guides = [teacher]  # the teacher and every trained assistant: the student's guides under dense guidance
    for i, ratio in enumerate(sizes):
        last = i == len(sizes) - 1
        name = f"link{i + 1}"
        link_dir = out_root / name if out_root is not None else None
        given = student if (last and student is not None) else None

        make_model = _link_factory(prev_arch, prev_dropped, prev_ratio, ratio, given, last, student_blocks,
                                   derive_mode, x, round_to)
        settings = _link_settings(i + 1, ratio, prev_ratio, prev_key, recipe, link_epochs, per_link, batch_size, lr,
                                  seed, derive_mode, round_to, given, student_blocks, guidance)
        link_teacher = _dense_guides(guides, recipe, settings) if last and guidance == "dense" else prev
        model, info = _run_link(run_dir, f"chain.{name}", settings, link_teacher, make_model, data, link_dir,
                                recipe=recipe, epochs=link_epochs, max_steps=per_link, batch_size=batch_size,
                                lr=lr, seed=seed, progress=progress, given=given, root=teacher,
                                cache=teacher_cache if i == 0 else None)
        macs, params = _util.count(model, x)
        info.update({"link": i + 1, "role": "student" if last else "assistant", "target_ratio": ratio,
                     "macs": macs, "params": params, "macs_ratio": round(macs / max(1, t_macs), 5)})
        if link_teacher is not prev:  # dense guidance
            info["guides"] = len(guides)
        links.append(info)
        guides.append(model)
        prev, prev_ratio, prev_key = model, macs / max(1, t_macs), _weights_key(model)  # achieved, not planned
        prev_arch, prev_dropped = model, list(info.get("dropped_blocks") or [])
    prev.eval()
    return ChainResult(student=prev, plan=plan, links=links, seconds=round(time.perf_counter() - t0, 3))


def _link_factory(prev_arch, prev_dropped: list[str], prev_ratio: float, ratio: float, given, last: bool,
                  student_blocks, derive_mode: str, x, round_to: int):
    """How one link's model is made (called only when its stage is not already in the run): a copy of the given
    student, or a model derived from the previous trained link at ratio / prev_ratio of its MACs. student_blocks:
    the teacher blocks the last link must drop; while it is set, every link is width-only so they still exist."""
    def make_model():
        from edgekd.prune.derived import derive

        if given is not None:
            m = copy.deepcopy(given)
            m.requires_grad_(True)
            return m, []
        here = {getattr(m, _TAG, n): n for n, m in prev_arch.named_modules()}
        drop = [here[b] for b in student_blocks if b not in prev_dropped] if last and student_blocks else None
        mode = "width" if student_blocks is not None else derive_mode  # depth only where announced
        d = derive(prev_arch, ratio=min(1.0, ratio / prev_ratio), mode=mode, example_input=x,
                   round_to=round_to, measure_latency=False, drop=drop)
        names = dict(prev_arch.named_modules())
        return d.model, prev_dropped + [getattr(names[b], _TAG, b) for b in d.dropped_blocks]

    return make_model


def _link_settings(link: int, ratio: float, prev_ratio: float, prev_key: str, recipe, epochs: int, max_steps: int,
                   batch_size: int, lr, seed: int, derive_mode: str, round_to: int, given, student_blocks,
                   guidance: str) -> dict:
    """The link's stage settings: what makes a resumed run reuse it (or train it again when any of them changed)."""
    return {"stage": "chain", "link": link, "ratio": ratio, "from_ratio": prev_ratio, "prev": prev_key,
            "recipe": recipe if isinstance(recipe, str) else _util_key(recipe), "epochs": epochs,
            "max_steps": max_steps, "batch_size": batch_size, "lr": lr, "seed": seed,
            "derive_mode": derive_mode, "round_to": round_to, "given_student": given is not None,
            "student_key": _weights_key(given) if given is not None else None,
            "student_blocks": sorted(student_blocks) if student_blocks is not None else None,
            **({"guidance": "dense"} if guidance == "dense" else {})}


def _dense_guides(guides: list, recipe, settings: dict):
    """The student link's teacher under dense guidance: the teacher and every assistant (the link's stage key names
    them all); with no assistant, the teacher itself."""
    if len(guides) == 1:
        return guides[0]
    from edgekd.distill.guides import DenseGuides

    settings["prev"] = [_weights_key(g) for g in guides]
    return DenseGuides(guides, _kd_temperature(recipe)).eval()


def _kd_temperature(recipe) -> float:
    """The KD temperature the student link's recipe softens with (DenseGuides must average at the same T); auto's
    probe ranks kd-balanced first, T=4."""
    from edgekd.distill.recipe import load_recipe

    name = "kd-balanced" if recipe == "auto" else recipe
    kd = [s for s in load_recipe(name).losses if s.type == "kd"]
    return float(kd[0].params.get("temperature", 4.0)) if kd else 4.0


def _planned(teacher, data, student_ratio, chain, student, x, *, run_dir, probe_steps, batch_size, seed,
             derive_mode, round_to, student_blocks, recipe, teacher_cache) -> ChainPlan:
    """plan_chain with the automatic probe; recorded as stage "chain.plan" so a resumed run does not re-probe."""
    mode = parse_chain(chain)

    def make() -> ChainPlan:
        probe = None
        if mode == "auto" and probe_steps > 0 and 1.0 / float(student_ratio) > MIN_GAP:
            probe = auto_probe(teacher, data, student_ratio, example_input=x, steps=probe_steps, recipe=recipe,
                               batch_size=batch_size, seed=seed, derive_mode=derive_mode, round_to=round_to,
                               student=student, student_blocks=student_blocks, teacher_cache=teacher_cache)
        return plan_chain(teacher, student_ratio, probe=probe, chain=chain)

    if run_dir is None:
        return make()
    from edgekd.core import StageResult

    settings = {"stage": "chain.plan", "teacher": _weights_key(teacher), "student_ratio": student_ratio,
                "chain": str(mode), "probe_steps": probe_steps, "batch_size": batch_size, "seed": seed,
                "derive_mode": derive_mode, "round_to": round_to, "data": [data.name, len(data.train)],
                "student": _weights_key(student) if student is not None else None, "probe": "equal-budget-v2",
                "recipe": recipe if isinstance(recipe, str) else _util_key(recipe),
                "student_blocks": sorted(student_blocks) if student_blocks is not None else None}
    result, _ = run_dir.run_stage("chain.plan", settings, lambda: StageResult(metrics=make().to_dict()))
    m = result.metrics
    return ChainPlan(m["student_ratio"], list(m["assistant_ratios"]), m["reason"], m["mode"], m.get("probe"))


def _run_link(run_dir, stage, settings, teacher, make_model, data, link_dir, *, recipe, epochs, max_steps,
              batch_size, lr, seed, progress, root, given=None, cache=None):
    """Build + distill one link; with a RunDir it is a stage (skipped and reloaded when already done)."""
    from edgekd.models.checkpoint import load_portable, save_portable

    state: dict = {}

    def work():
        from edgekd.core import Artifact, StageResult

        model, dropped = make_model()
        resume = link_dir is not None and (link_dir / "last.pt").is_file()
        m = _train.train_link(teacher, model, data, recipe=recipe, epochs=epochs, max_steps=max_steps,
                              batch_size=batch_size, lr=lr, seed=seed, output_dir=link_dir, resume=resume,
                              progress=progress, cache=cache)
        info = {"recipe": m.get("recipe"), "steps": m.get("steps"), "seconds": m.get("seconds"),
                "val_acc": m.get("best_val_acc"),
                "agreement_with_its_teacher": round(_train.agreement(model, teacher,
                                                                     _train.held_out(data).x[:2000]), 4),
                "test_acc": _train.accuracy(model, data.test), "dropped_blocks": dropped}
        state.update(model=model, info=info)
        arts = []
        if link_dir is not None:
            path = save_portable(model, link_dir / "model.pt", dropped_blocks=dropped, meta={"stage": stage})
            arts.append(Artifact(name=stage, path=str(path), format="pytorch", extra={"dropped_blocks": dropped}))
        return StageResult(artifacts=arts, metrics=info)

    if run_dir is None:
        work()
        return state["model"], dict(state["info"])
    result, skipped = run_dir.run_stage(stage, settings, work)
    if not skipped:
        return state["model"], dict(state["info"])
    # Resume: the link's checkpoint holds its weights + the teacher blocks dropped so far; rebuild it from
    # the teacher's architecture (tagged, for the next link) or the given student's, and load.
    base = copy.deepcopy(given) if given is not None else _tagged(copy.deepcopy(root))
    model = load_portable(base, run_dir.path(result.artifacts[0].path))
    model.requires_grad_(True)
    return model, {**result.metrics, "resumed": True}


_TAG = "_edgekd_teacher_name"


def _tagged(model):
    """Mark every module with its name in the teacher (plain attribute: survives deepcopy and pruning)."""
    for n, m in model.named_modules():
        setattr(m, _TAG, n)
    return model


def _weights_key(model) -> str:
    import hashlib

    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(str(float(v.detach().double().sum())).encode())
    return h.hexdigest()[:16]


def _util_key(obj) -> str:
    from edgekd.core.manifest import fingerprint

    return fingerprint(obj)
