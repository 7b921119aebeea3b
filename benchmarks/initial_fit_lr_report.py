"""Tables of benchmarks/initial_fit_lr_study.py's JSON: per pair, scratch, auto before the rule (x20 for every
student) and with it (x<f> for a student with a head start, x20 otherwise), the untrained student's val accuracy.

    .venv/bin/python benchmarks/initial_fit_lr_report.py study.json [--factor 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distill_suite as ds

from edgekd.distill.auto import PRIOR_LR_FACTOR, head_start, noise_margin


def with_rule(v: dict, factor: float, margin: float) -> list[dict]:
    """auto under the rule, per seed: the x<factor> run where the untrained student has the head start."""
    n_val = v["data"]["val"]
    out = []
    for i, start in enumerate(v["initial"]):
        hs = head_start((start["val_acc"], start["majority"], n_val)) if margin is None else \
            start["val_acc"] > start["majority"] + noise_margin(start["majority"], n_val) + margin
        key = f"auto-x{factor:g}" if hs and f"auto-x{factor:g}" in v["runs"] else f"auto-x{PRIOR_LR_FACTOR:g}"
        if hs and f"auto-x{factor:g}" not in v["runs"]:
            raise SystemExit(f"{v['student']} has a head start but no x{factor:g} run")
        out.append(dict(v["runs"][key][i], head_start=hs))
    return out


def paired(rule: list[dict], before: list[dict]) -> dict:
    """The rule's change per seed, in test points: mean and standard error (same seeds, students, teacher)."""
    d = [100 * (a["test_acc"] - b["test_acc"]) for a, b in zip(rule, before)]
    se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else None
    return {"rule_minus_before_points": round(statistics.mean(d), 2), "se": None if se is None else round(se, 2)}


def rows(doc: dict, factor: float, margin: float | None = None) -> tuple[list[dict], dict]:
    per, pairs_before, pairs_after = [], {}, {}
    for k, v in doc["results"].items():
        rule = with_rule(v, factor, margin)
        before = ds.summarise(v["teacher"], {"scratch": v["runs"]["scratch"], "auto": v["runs"][f"auto-x{PRIOR_LR_FACTOR:g}"]})
        after = ds.summarise(v["teacher"], {"scratch": v["runs"]["scratch"], "auto": rule})
        m = lambda rs: round(100 * statistics.mean(r["test_acc"] for r in rs), 2)
        init = [s["val_acc"] for s in v["initial"]]
        per.append({"pair": k, "teacher": round(100 * v["teacher"]["test_acc"], 2),
                    "initial_val_acc": round(100 * statistics.mean(init), 1),
                    "initial_val_acc_range": [round(100 * min(init), 1), round(100 * max(init), 1)],
                    "majority": round(100 * v["initial"][0]["majority"], 1),
                    "head_start_seeds": sum(r["head_start"] for r in rule),
                    "scratch": m(v["runs"]["scratch"]), "scratch_lr_picked": [r["lr"] for r in v["runs"]["scratch"]],
                    **{f: m(rs) for f, rs in v["runs"].items() if f.startswith("auto-x")},
                    "auto_rule": m(rule), **paired(rule, v["runs"][f"auto-x{PRIOR_LR_FACTOR:g}"]),
                    "gain_before": before.get("auto_gain_points"), "gain_rule": after.get("auto_gain_points"),
                    "gap_closed_before": before.get("auto_gap_closed"), "gap_closed_rule": after.get("auto_gap_closed")})
        pairs_before[k] = {**v, "runs": {"scratch": v["runs"]["scratch"], "auto": [dict(r, probe_seconds=0)
                           for r in v["runs"][f"auto-x{PRIOR_LR_FACTOR:g}"]]}, "summary": before}
        pairs_after[k] = {**v, "runs": {"scratch": v["runs"]["scratch"], "auto": [dict(r, probe_seconds=0)
                          for r in rule]}, "summary": after}
    budgets = sorted({v["epochs"] for v in doc["results"].values()})
    keep = ("auto_mean_gap_closed", "pairs_with_a_gap", "auto_min_gain_over_scratch_points")
    by = {}
    for b in budgets:
        ob = ds.overall({k: v for k, v in pairs_before.items() if v["epochs"] == b})
        oa = ds.overall({k: v for k, v in pairs_after.items() if v["epochs"] == b})
        by[str(b)] = {"before": {k: ob.get(k) for k in keep}, "rule": {k: oa.get(k) for k in keep}}
    return per, by


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("--factor", type=float, default=3.0)
    ap.add_argument("--margin", type=float, default=None, help="HEAD_START to test (default: auto's)")
    a = ap.parse_args()
    per, by = rows(json.loads(Path(a.study).read_text()), a.factor, a.margin)
    cols = ["pair", "initial_val_acc", "majority", "head_start_seeds", "teacher", "scratch", "auto-x20", "auto-x1",
            "auto-x3", "auto_rule", "rule_minus_before_points", "se", "gain_before", "gain_rule", "gap_closed_before", "gap_closed_rule"]
    print(" | ".join(cols))
    for r in per:
        print(" | ".join(str(r.get(c, "-")) for c in cols), "| lr", r["scratch_lr_picked"])
    print(json.dumps(by, indent=1))


if __name__ == "__main__":
    main()
