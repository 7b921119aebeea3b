"""The compress report's figures, drawn from report.json's own content (nothing is re-measured): accuracy
against latency with the Pareto front, where the shipped file's time goes, size per artifact, and the
distillation curve. Each drawer returns None when the run has nothing for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.core.plots import KIND_MARKERS, OTHER_COLOR, SHIPPED_COLOR, Figure, latency_kind, save

DIR = "figures"  # beside report.md / report.html


def _short(name: str) -> str:
    return name.replace(" fp32", "").replace("student ", "s ").replace("teacher ", "t ")


def _points(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per (artifact, latency figure) with an accuracy and a p50."""
    out = []
    for a in report["artifacts"]:
        lats = ([a["latency"]] if a.get("latency") else []) + list((a.get("extra") or {}).get("other_latencies", []))
        for i, lat in enumerate(lats):
            if a.get("accuracy") is None or lat.get("p50_ms") is None:
                continue
            out.append({"name": a["name"], "acc": a["accuracy"], "ms": lat["p50_ms"], "kind": latency_kind(lat),
                        "primary": i == 0, "shipped": bool((a.get("extra") or {}).get("shipped")),
                        "where": lat.get("target", "")})
    return out


def pareto(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no other point beats on both latency (lower) and accuracy (higher), fastest first."""
    front, best = [], float("-inf")
    for p in sorted(points, key=lambda p: (p["ms"], -p["acc"])):
        if p["acc"] > best:
            front.append(p)
            best = p["acc"]
    return front


def accuracy_latency(plt, report: dict[str, Any], out: Path) -> Figure | None:
    pts = _points(report)
    if not pts:
        return None
    metric = report.get("accuracy_column", "accuracy %")
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, p in enumerate(sorted(pts, key=lambda p: p["ms"])):
        color = SHIPPED_COLOR if p["shipped"] else OTHER_COLOR
        ax.scatter(p["ms"], p["acc"], marker=KIND_MARKERS.get(p["kind"], "x"), s=90 if p["shipped"] else 45,
                   facecolors=color if p["primary"] else "none", edgecolors=color, zorder=3)
        # files of one model share an accuracy: labels alternate above and below so they do not overlap
        ax.annotate(_short(p["name"]) + ("" if p["primary"] else f" ({p['kind']})"), (p["ms"], p["acc"]),
                    textcoords="offset points", xytext=(4, 6 if i % 2 == 0 else -13), fontsize=8)
    # one kind only: a measured millisecond and a simulated or estimated one are not the same quantity
    measured = [p for p in pts if p["primary"] and p["kind"] == "measured"]
    front = pareto(measured)
    if len(front) > 1:
        ax.step([p["ms"] for p in front], [p["acc"] for p in front], where="post", color="#555", ls="--", lw=1,
                label="Pareto front (measured points)", zorder=2)
    for kind in dict.fromkeys(p["kind"] for p in pts):
        ax.scatter([], [], marker=KIND_MARKERS.get(kind, "x"), facecolors="none", edgecolors="black", label=kind)
    ax.scatter([], [], marker="o", color=SHIPPED_COLOR, label="shipped to " + report["target"]["name"])
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    # 1-2-5 ticks labelled as plain numbers: a run's latencies often span less than a decade
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.15, y=0.12)  # room for the point labels inside the frame
    ax.set_xlabel("p50 latency, ms (log scale)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.8)
    save(fig, out / DIR / "accuracy_latency.png")
    kinds = ", ".join(sorted({p["kind"] for p in pts}))
    on_front = ", ".join(_short(p["name"]) for p in front) or "none"
    return Figure(f"{DIR}/accuracy_latency.png", f"{metric} against latency",
                  f"every file of the run with a latency ({kinds}); filled: each file's figure of record, hollow: its "
                  "other figures; red: what ships; the marker says how the latency was obtained (see the table "
                  "above for where). The Pareto front is taken over the measured figures only (on it: "
                  f"{on_front}; drawn when it has two points or more). PyTorch rows have no file latency and are "
                  "not drawn.")


def _op_sources(lat: dict[str, Any]) -> list[tuple[str, str, dict[str, float]]]:
    """(unit, source, {op type: time}) for each op list a profiler result holds."""
    out, kind = [], latency_kind(lat)
    if lat.get("op_types"):
        tool = lat.get("op_profile") or "benchmark_model op profile"
        times = {t["type"]: t["avg_ms"] for t in lat["op_types"] if t.get("avg_ms") is not None}
        source = f"{tool} ({kind}, {lat.get('runtime', '?')} on {lat.get('target', '?')})"
        total, p50 = sum(times.values()), lat.get("p50_ms")
        if p50 and total > 3 * p50:  # op means are means: one stall in the profiled runs inflates them
            source += (f"; the op times sum to {total:.3g} ms against the file's p50 of {p50:.3g} ms, so a stall "
                       "during the profiled runs inflated them: read the shares with care")
        out.append(("ms", source, times))
    if lat.get("layers"):  # Vela per-layer performance
        agg: dict[str, float] = {}
        for layer in lat["layers"]:
            if layer.get("cycles") is not None:
                key = f"{layer.get('op')} ({layer.get('target', '?')})"
                agg[key] = agg.get(key, 0.0) + layer["cycles"]
        out.append(("cycles", f"Vela per-layer estimate ({kind})", agg))
    if lat.get("op_cycles"):  # QNN HTP detailed profile, per node
        out.append(("cycles", f"QNN HTP profiling, per node ({kind})",
                    {o["name"]: o["cycles"] for o in lat["op_cycles"] if o.get("cycles") is not None}))
    return [s for s in out if s[2]]


def _op_lists(report: dict[str, Any]):
    """The shipped file's op lists; else the closest student file's, said so."""
    arts = report["artifacts"]
    shipped = [a for a in arts if (a.get("extra") or {}).get("shipped") and a.get("latency")]
    for a in shipped:
        lats = [a["latency"], *(a.get("extra") or {}).get("other_latencies", [])]
        found = [s for lat in lats for s in _op_sources(lat)]
        if found:
            return a["name"], found, ""
    ship = shipped[0] if shipped else None
    for a in arts:
        if a.get("latency") and a["name"].startswith("student") and (not ship or a["precision"] == ship["precision"]):
            found = _op_sources(a["latency"])
            if found:
                why = (f"the shipped {ship['name']} has no op profile here ({ship['latency'].get('op_profile') or 'none'});"
                       " shown instead: the same student and precision in another format") if ship else ""
                return a["name"], found, why
    return None, [], ""


def op_time(plt, report: dict[str, Any], out: Path) -> Figure | None:
    name, sources, why = _op_lists(report)
    if not sources:
        return None
    sources = sources[:3]
    fig, axes = plt.subplots(1, len(sources), figsize=(5.5 * len(sources), 4), squeeze=False)
    for ax, (unit, source, times) in zip(axes[0], sources):
        top = sorted(times.items(), key=lambda kv: kv[1])[-12:]
        total = sum(times.values()) or 1.0
        ax.barh([k for k, _ in top], [v for _, v in top], color=SHIPPED_COLOR if not why else OTHER_COLOR)
        for i, (_, v) in enumerate(top):
            ax.annotate(f"{100 * v / total:.0f} %", (v, i), textcoords="offset points", xytext=(3, -3), fontsize=8)
        ax.set_xlabel(f"time per inference, {unit}")
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set_title(source.split("; ")[0], fontsize=8, wrap=True)  # the caption has the rest
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    save(fig, out / DIR / "op_time.png")
    return Figure(f"{DIR}/op_time.png", f"Where the time goes: {name}",
                  "time per op type (or per node), from " + "; ".join(s for _, s, _ in sources)
                  + (f". Note: {why}" if why else ""))


def sizes(plt, report: dict[str, Any], out: Path) -> Figure | None:
    arts = [a for a in report["artifacts"] if a.get("size_bytes")]
    if not arts:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(arts) + 1))
    kib = [a["size_bytes"] / 1024 for a in arts]
    colors = [SHIPPED_COLOR if (a.get("extra") or {}).get("shipped") else OTHER_COLOR for a in arts]
    ax.barh([a["name"] for a in arts], kib, color=colors)
    for i, v in enumerate(kib):
        ax.annotate(f"{v:.1f}", (v, i), textcoords="offset points", xytext=(3, -3), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("file size, KiB")
    ax.grid(axis="x", alpha=0.3)
    save(fig, out / DIR / "sizes.png")
    return Figure(f"{DIR}/sizes.png", "Size per artifact", "file size on disk; red: what ships")


def distill_curve(plt, report: dict[str, Any], out: Path) -> Figure | None:
    curve = (report.get("distill") or {}).get("curve") or []
    if not curve:
        return None
    ep = [c["epoch"] + 1 for c in curve]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(ep, [c.get("train_loss") for c in curve], marker="o", label="train loss (total)")
    for term in dict.fromkeys(k for c in curve for k in (c.get("parts") or {})):
        left.plot(ep, [(c.get("parts") or {}).get(term) for c in curve], marker=".", ls=":", label=f"train: {term}")
    if any(c.get("val_loss") is not None for c in curve):
        left.plot(ep, [c.get("val_loss") for c in curve], marker="s", label="held-out loss")
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    right.plot(ep, [100 * c["val_acc"] for c in curve if c.get("val_acc") is not None], marker="o",
               color=SHIPPED_COLOR, label="student, held-out")
    teacher = (report.get("distill") or {}).get("teacher_val_acc")
    if teacher is not None:
        right.axhline(100 * teacher, color="#555", ls="--", label="teacher, held-out")
    right.set_xlabel("epoch")
    agreement = (report.get("distill") or {}).get("val_metric") == "teacher-agreement"  # data without labels
    metric = "agreement with the teacher" if agreement else "accuracy"
    right.set_ylabel(f"held-out {metric} %")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    for ax in (left, right):
        if len(ep) <= 30:  # a time-budgeted run on a few images has hundreds of one-step epochs
            ax.set_xticks(ep)
    fig.tight_layout()
    save(fig, out / DIR / "distill_curve.png")
    chosen = (report.get("distill") or {}).get("chosen") or (report.get("distill") or {}).get("recipe")
    return Figure(f"{DIR}/distill_curve.png", "Distillation curve",
                  f"per epoch of the final training run (recipe {chosen}): the training loss and each of its "
                  f"terms (mean over the epoch's steps), the held-out loss and {metric} (validation split, not the "
                  "test set)")


DRAWERS = [accuracy_latency, op_time, sizes, distill_curve]
