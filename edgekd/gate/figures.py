"""The gate's figure: the distribution of the interleaved A/B pairs' time ratios (candidate / baseline) per
attempt, with the median, its bootstrap interval and the allowed limit; and report.html around it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekd.core.plots import OTHER_COLOR, SHIPPED_COLOR, Figure, draw_all, save, write_html

FIGURE = "gate_ab_ratios.png"


def ab_ratios(plt, report: dict[str, Any], out: Path) -> Figure | None:
    timing = report.get("timing") or {}
    attempts = [a for a in timing.get("attempts") or [] if a.get("pair_ratios")]
    if timing.get("mode") != "ab" or not attempts:
        return None
    import numpy as np

    limit = timing["limit_ratio"]
    every = np.concatenate([a["pair_ratios"] for a in attempts])
    # a shared machine stalls single pairs by 100x now and then: show the body, count what lies outside it
    q1, q3 = np.quantile(every, [0.25, 0.75])
    lo, hi = q1 - 4 * (q3 - q1), q3 + 4 * (q3 - q1)
    lo, hi = min(lo, 1.0, limit) * 0.99, max(hi, 1.0, limit) * 1.01
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, a in enumerate(attempts):
        color = (OTHER_COLOR, "#ff7f0e")[i % 2]
        r = np.asarray(a["pair_ratios"])
        outside = int(((r < lo) | (r > hi)).sum())
        ax.hist(r, bins=50, range=(lo, hi), alpha=0.45, color=color,
                label=f"attempt {i + 1}: {a['pairs']} ABBA pairs x{a['inner']} invokes"
                      + (f" ({outside} outside the range shown)" if outside else ""))
        ax.axvspan(a["ci_low"], a["ci_high"], color=color, alpha=0.2,
                   label=f"median x{a['ratio']:.3f}, {a['confidence']:.0%} CI {a['ci_low']:.3f}-{a['ci_high']:.3f}")
        ax.axvline(a["ratio"], color=color, lw=2)
    ax.axvline(1.0, color="#555", ls=":", lw=1, label="x1.000 (no change)")
    ax.axvline(limit, color=SHIPPED_COLOR, ls="--", lw=2, label=f"limit x{limit:.3f} (fail if the CI lies above)")
    ax.set_xlabel("candidate / baseline time per pair")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3)
    save(fig, out / FIGURE)
    return Figure(FIGURE, "A/B time ratios", f"measured on this machine, interleaved ABBA in one process "
                  f"({report['settings'].get('threads', '?')} thread(s)); the verdict uses the interval of the median, "
                  "not the spread of single pairs")


def write_gate_html(report, path: Path) -> list[Figure]:
    """report.html of one gate run: the verdict, every check, the A/B figure (self-contained)."""
    d = report.to_dict()
    figures = draw_all([ab_ratios], d, path.parent)
    rows = [[c.status.upper(), c.name, c.kind, c.message] for c in report.checks]
    blocks = [("p", f"candidate `{d['candidate'].get('path')}` vs baseline `{d['baseline'].get('path')}`, "
                    f"target `{report.target}`"),
              ("table", (["result", "check", "kind", "details"], rows)), *[("figure", f) for f in figures]]
    if report.notes:
        blocks += [("h2", "Notes"), ("ul", list(report.notes))]
    write_html(path, report.summary(), blocks)
    return figures
