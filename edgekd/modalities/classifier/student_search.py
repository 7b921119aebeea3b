"""`--student auto --latency-budget 1.5ms`: the most accurate student derived from the teacher whose shipped
file meets the budget on the target's figure of record.

Each candidate is derived (width and depth, Torch-Pruning) at a fraction of the teacher's MACs, turned into
the file the target ships (e.g. int8 TFLite) and profiled there; latency does not depend on the weights'
values, so that is done before any training. The largest few candidates within the budget then get a short
distillation probe (same steps, same recipe, same seed each) and the best probe accuracy wins.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from edgekd.errors import EdgeKDError, UsageError

RATIOS = (0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03, 0.02, 0.01)  # fractions of the teacher's MACs, largest first
TRAINED = 2  # the largest candidates within the budget that get a training probe
PROBE_RECIPE = "hinton"


def parse_budget(text: str | None) -> float | None:
    """'1.5ms', '800us', '0.002s' or a bare number of milliseconds -> milliseconds."""
    if text is None or str(text).strip() == "":
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(ms|us|µs|s)?\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise UsageError(f"--latency-budget expects a positive time like 1.5ms, 800us or 0.002s, got {text!r}")
    return float(m.group(1)) * {"ms": 1.0, None: 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}[m.group(2)]


def figure_of_record(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The latency a budget is judged on: measured on the device (or on this host when the target is this
    host), else the emulated aarch64 estimate for ARM cores, else the NPU compiler's estimate (Vela).
    A host measurement standing in for a phone or a board is never one; nor is the HTP simulator's time."""
    for r in results:
        if r.get("kind") == "measured" and r.get("backend") != "host-fallback" and r.get("p50_ms") is not None:
            return r
    for r in results:
        if r.get("emulated_instructions") is not None and r.get("p50_ms") is not None:
            return r
    for r in results:
        if r.get("backend") == "vela" and r.get("p50_ms") is not None:
            return r
    return None


@dataclass
class Candidate:
    ratio: float
    macs: int
    params: int
    latency_ms: float | None = None
    kind: str | None = None  # measured | emulated | estimated (of the figure of record)
    where: str | None = None
    meets: bool = False
    probe_acc: float | None = None
    note: str = ""


def _shipped_file(model, data, target, dest, calib):
    from edgekd.export import export_onnx, export_tflite
    from edgekd.quantize import quantize

    ship = target.ships[0]
    path = dest / f"candidate.{ship.format}"
    if ship.precision == "fp32":
        (export_tflite if ship.format == "tflite" else export_onnx)(model, data.test.x[:16], path)
    else:
        int8_io = target.kind == "npu" and ship.format == "tflite"
        quantize(None, path, mode=ship.precision, calib=calib, torch_model=model, allow_drop=True, int8_io=int8_io,
                 float_head=target.kind != "npu")
    return path


def _latency(cand: Candidate, model, ctx, budget_ms: float, dest) -> None:
    from edgekd.profile import profile

    path = _shipped_file(model, ctx.data, ctx.target, dest, ctx.data.calibration(64, seed=ctx.cfg.seed))
    rep = profile(path, ctx.target, sample=ctx.data.test.x[:8], runs=ctx.cfg.runs, emulate="auto", output_dir=dest)
    fig = figure_of_record(rep.to_dict()["results"])
    if fig is None:
        raise EdgeKDError(f"--latency-budget: target {ctx.target.name} gave no figure to judge a budget on (no device "
                          "reached, no ARM emulation (`make arm-env`) and no NPU estimate); a host measurement does "
                          "not stand in for the device")
    from edgekd.core.plots import latency_kind

    cand.latency_ms, cand.kind = round(fig["p50_ms"], 5), latency_kind(fig)
    cand.where, cand.meets = fig.get("where"), fig["p50_ms"] <= budget_ms


def _probe(cand: Candidate, model, ctx, steps: int) -> None:
    import torch

    from edgekd.distill import distill

    torch.manual_seed(ctx.cfg.seed)
    res = distill(ctx.teacher, model.train(), ctx.data, recipe=PROBE_RECIPE, epochs=1, max_steps=steps,
                  batch_size=ctx.cfg.batch_size, seed=ctx.cfg.seed, progress=False)
    cand.probe_acc = round(100 * res.metrics["best_val_acc"], 2)


def search(ctx, budget_ms: float, *, ratios=RATIOS, probe_steps: int = 60) -> dict[str, Any]:
    """Every candidate tried (MACs, latency and its kind, probe accuracy) and the ratio chosen.

    Latency falls with the MACs ratio, so a bisection over `ratios` (largest first) finds the largest
    candidate within the budget in a few profiles; it and the next smaller one(s) are probe-trained."""
    tried: dict[int, tuple[Candidate, Any]] = {}

    def meets(i: int) -> bool:
        if i not in tried:
            tried[i] = _evaluate(ctx, ratios[i], budget_ms)
        return tried[i][0].meets

    first = _first_within(len(ratios), meets)
    if first is None:
        fastest = min((c for c, _ in tried.values() if c.latency_ms is not None), key=lambda c: c.latency_ms, default=None)
        what = (f"the fastest tried, auto:{fastest.ratio} ({fastest.macs:,} MACs), takes {fastest.latency_ms:g} ms "
                f"({fastest.kind})" if fastest else "no candidate could be derived")
        raise EdgeKDError(f"no derived student meets the latency budget {budget_ms:g} ms on {ctx.target.name}: {what}; "
                          "raise the budget or give a --student")
    within = [i for i in range(first, min(first + TRAINED, len(ratios))) if meets(i)]
    for i in within:
        cand, model = tried[i]
        ctx.log(f"student search: probe-training auto:{cand.ratio} for {probe_steps} steps")
        _probe(cand, model, ctx, probe_steps)
    best = max((tried[i][0] for i in within), key=lambda c: (c.probe_acc, c.macs))
    cands = [tried[i][0] for i in sorted(tried)]
    return {"budget_ms": budget_ms, "target": ctx.target.name, "probe_steps": probe_steps, "recipe": PROBE_RECIPE,
            "chosen": best.ratio, "candidates": [asdict(c) for c in cands]}


def _first_within(n: int, meets) -> int | None:
    """Index of the first True of a monotone False..True sequence (bisection), None when all are False."""
    if meets(0):  # a generous budget: the largest candidate already fits
        return 0
    if not meets(n - 1):
        return None
    lo, hi = 1, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _evaluate(ctx, ratio: float, budget_ms: float) -> tuple[Candidate, Any]:
    """Derive the candidate, make the file the target ships and profile it there (untrained weights)."""
    import torch

    from edgekd.models import count_macs_params
    from edgekd.prune import derive

    torch.manual_seed(ctx.cfg.seed)
    try:
        res = derive(ctx.teacher, ratio=ratio, example_input=torch.from_numpy(ctx.data.test.x[:1]),
                     measure_latency=False)
    except EdgeKDError as exc:  # e.g. a ratio the teacher's layers cannot reach
        ctx.log(f"student search: auto:{ratio} cannot be derived ({exc})")
        return Candidate(ratio, 0, 0, note=f"cannot be derived: {exc}"), None
    macs, params = count_macs_params(res.model, ctx.data.input_shape)
    cand = Candidate(ratio, macs, params)
    ship = ctx.target.ships[0]
    ctx.log(f"student search: auto:{ratio} ({macs:,} MACs) -> {ship.format} {ship.precision} on {ctx.target.name}")
    _latency(cand, res.model, ctx, budget_ms, ctx.run.path(f"search/auto-{ratio}"))
    ctx.log(f"student search: auto:{ratio}: {cand.latency_ms:g} ms ({cand.kind}), "
            f"{'within' if cand.meets else 'over'} {budget_ms:g} ms")
    return cand, res.model


def report_lines(s: dict[str, Any]) -> list[str]:
    """report.md's table of every candidate tried."""
    lines = [f"- student search: latency budget {s['budget_ms']:g} ms on {s['target']}; chose `auto:{s['chosen']}` "
             f"(the best {s['probe_steps']}-step `{s['recipe']}` probe within the budget)", "",
             "| candidate | MACs | params | latency ms | latency kind | meets | probe val acc % | |", "|---|---|---|---|---|---|---|---|"]
    for c in s["candidates"]:
        acc = "—" if c["probe_acc"] is None else f"{c['probe_acc']:.2f}"
        ms = "—" if c["latency_ms"] is None else f"{c['latency_ms']:.4g}"
        note = c["note"] or ("" if c["probe_acc"] is not None else "over the budget: not trained" if not c["meets"]
                             else "within, but smaller than the probed ones: not trained")
        lines.append(f"| auto:{c['ratio']} | {c['macs']:,} | {c['params']:,} | {ms} | {c['kind'] or '—'} | "
                     f"{'yes' if c['meets'] else 'no'} | {acc} | {note} |")
    return lines + [""]
