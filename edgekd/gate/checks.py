"""Deterministic checks: facts read from the files (or counted), identical on every run and machine load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgekd.gate.report import Check


@dataclass(frozen=True)
class Limits:
    max_regression: float = 0.05  # wall-time ratio - 1 the A/B may show (CI lower bound)
    max_size_growth: float | None = None  # relative; None -> max_regression
    max_macs_growth: float | None = None
    max_instructions_growth: float | None = None
    max_new_transposes: int = 0
    max_npu_share_drop: float = 0.0  # fraction of ops (0.02 = 2 points) the NPU may lose
    size_slack_bytes: int = 4096  # growth below this never fails (names, metadata on tiny models)

    def __post_init__(self):
        import math

        from edgekd.errors import UsageError

        for name in ("max_size_growth", "max_macs_growth", "max_instructions_growth", "max_npu_share_drop"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0):
                raise UsageError(f"{name} must be a number >= 0 (0.05 = 5 %), got {v}")

    def growth(self, which: str) -> float:
        v = getattr(self, f"max_{which}_growth")
        return self.max_regression if v is None else v


def _rel(base: float, cand: float) -> float:
    return (cand - base) / base if base else (0.0 if cand == base else float("inf"))


def growth_check(name: str, base: float | None, cand: float | None, limit: float, unit: str, kind: str = "deterministic") -> Check:
    """Fail when cand exceeds base by more than `limit` (relative)."""
    if base is None or cand is None:
        which = "baseline" if base is None else "candidate"
        return Check(name, "skip", f"{name}: not available for the {which}", kind, base, cand, limit)
    rel = _rel(base, cand)
    msg = f"{name} {fmt_num(base)} -> {fmt_num(cand)} {unit} ({rel:+.1%}, limit +{limit:.1%})"
    return Check(name, "fail" if rel > limit else "pass", msg, kind, base, cand, limit, {"relative_change": rel})


def fmt_num(v: float) -> str:
    v = float(v)
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.4g}"


def deterministic_checks(base: dict[str, Any], cand: dict[str, Any], limits: Limits) -> list[Check]:
    """Compare two model_info dicts (plus optional 'npu' / 'instructions' / 'arm_instructions' entries)."""
    size = growth_check("size_bytes", base.get("size_bytes"), cand.get("size_bytes"), limits.growth("size"), "bytes")
    if size.status == "fail" and cand["size_bytes"] - base["size_bytes"] <= limits.size_slack_bytes:
        size.status = "pass"
        size.message += f", but within {limits.size_slack_bytes} bytes"
    checks = [
        size,
        growth_check("macs", base.get("macs"), cand.get("macs"), limits.growth("macs"), "MACs"),
        _transpose_check(base, cand, limits),
        _custom_ops_check(base, cand),
        _io_check(base, cand),
    ]
    b_fmt, c_fmt = base.get("format"), cand.get("format")
    if b_fmt and c_fmt and b_fmt != c_fmt:  # most often the wrong --baseline: say so rather than pass quietly
        checks.append(Check("format", "warn", f"baseline is {b_fmt}, candidate {c_fmt}: file sizes and op counts of two "
                            "formats are not like for like (compare files of one format)", "deterministic",
                            b_fmt, c_fmt))
    if "npu" in base or "npu" in cand:
        checks += _npu_checks(base.get("npu"), cand.get("npu"), limits)
    if "delegation" in base or "delegation" in cand:
        checks += _delegation_checks(base.get("delegation"), cand.get("delegation"), limits)
    for key, label, kind in (("instructions", "instructions.host", "deterministic"),
                             ("arm_instructions", "instructions.arm", "simulated")):
        if key in base or key in cand:
            b, c = (base.get(key) or {}), (cand.get(key) or {})
            err = c.get("error") or b.get("error")
            if err:
                checks.append(Check(label, "skip", err, kind))
                continue
            chk = growth_check(label, b.get("per_inference"), c.get("per_inference"),
                               limits.growth("instructions"), "instructions/inference", kind)
            chk.details.update(how=c.get("how") or b.get("how"))
            checks.append(chk)
    return checks


def _transpose_check(base: dict, cand: dict, limits: Limits) -> Check:
    b, c = base.get("transpose_ops"), cand.get("transpose_ops")
    if b is None or c is None:
        return Check("ops.transpose", "skip", "transpose count not available", baseline=b, candidate=c)
    allowed = b + limits.max_new_transposes
    status = "fail" if c > allowed else "pass"
    # Layout transposes are the classic silent slowdown of an NCHW->NHWC conversion.
    return Check("ops.transpose", status, f"Transpose ops {b} -> {c} (allowed <= {allowed})", "deterministic", b, c, allowed)


def _custom_ops_check(base: dict, cand: dict) -> Check:
    b: dict[str, int] = base.get("custom_ops") or {}
    c: dict[str, int] = cand.get("custom_ops") or {}
    new = {k: v for k, v in c.items() if v > b.get(k, 0)}
    if new:
        flex = [k for k in new if k.startswith("Flex")]
        what = ", ".join(f"{k} x{v}" for k, v in sorted(new.items()))
        why = " (Flex ops need the TensorFlow delegate on device)" if flex else ""
        return Check("ops.custom", "fail", f"new custom/Flex ops: {what}{why}", "deterministic", b, c, "none new", {"new": new})
    if c:
        return Check("ops.custom", "warn", f"custom/Flex ops carried over from the baseline: {', '.join(sorted(c))}",
                     "deterministic", b, c, "none new")
    return Check("ops.custom", "pass", "no custom or Flex ops", "deterministic", b, c, "none new")


def _sig(entries: list | None) -> list[tuple]:
    return [(tuple(e.get("shape") or []), e.get("dtype")) for e in entries or []]


def _io_check(base: dict, cand: dict) -> Check:
    """Shapes/dtypes of inputs and outputs: the contract the app code was written against."""
    if base.get("inputs") is None or cand.get("inputs") is None:
        return Check("io", "skip", "I/O signature not available")
    b = {"inputs": _sig(base.get("inputs")), "outputs": _sig(base.get("outputs"))}
    c = {"inputs": _sig(cand.get("inputs")), "outputs": _sig(cand.get("outputs"))}
    if b == c:
        return Check("io", "pass", "inputs/outputs unchanged (shape, dtype)")
    diff = [k for k in ("inputs", "outputs") if b[k] != c[k]]
    show = lambda sig: "; ".join(f"{list(shape)} {dtype}" for shape, dtype in sig)  # noqa: E731
    what = ", ".join(f"{k} {show(b[k])} -> {show(c[k])}" for k in diff)
    return Check("io", "warn", f"{what} (app code must match)", "deterministic", b, c)


def _delegation_checks(b: dict | None, c: dict | None, limits: Limits) -> list[Check]:
    """ExecuTorch .pte: the share of ops inside a delegate (XNNPACK) and the kernels that fell back to the
    portable CPU kernels, read from both files (deterministic). Fails like an op falling off an NPU."""
    if not b or not c or b.get("share") is None or c.get("share") is None:
        return [Check("delegation", "skip", "delegation share not available for both models", "deterministic")]
    drop = b["share"] - c["share"]
    share = Check("delegation.share", "fail" if drop > limits.max_npu_share_drop + 1e-12 else "pass",
                  f"share of ops delegated to XNNPACK {b['share']:.1%} -> {c['share']:.1%} "
                  f"(may drop {limits.max_npu_share_drop:.1%})", "deterministic", b["share"], c["share"],
                  limits.max_npu_share_drop)
    bf, cf = b.get("fallback_ops") or {}, c.get("fallback_ops") or {}
    new = {k: v - bf.get(k, 0) for k, v in cf.items() if v > bf.get(k, 0)}
    if new:
        fb = Check("delegation.fallback_ops", "fail", "ops now falling back to portable kernels: " +
                   ", ".join(f"{k} +{v}" for k, v in sorted(new.items())), "deterministic", bf, cf, "none new", {"new": new})
    else:
        fb = Check("delegation.fallback_ops", "pass", f"no new portable-kernel fall-backs ({sum(cf.values())} as in "
                   "the baseline)" if cf else "every op delegated to XNNPACK", "deterministic", bf, cf, "none new")
    return [share, fb]


def _npu_checks(b: dict | None, c: dict | None, limits: Limits) -> list[Check]:
    """Ops falling off the NPU and the NPU share of ops, from the HTP/Vela analysis (see edgekd.gate.npu)."""
    if not b or not c or b.get("share") is None or c.get("share") is None:
        why = (c or b or {}).get("error") or "NPU analysis not available for both models"
        return [Check("npu.placement", "skip", why, "simulated", b and b.get("share"), c and c.get("share"))]
    kind = c.get("kind", "simulated")
    drop = b["share"] - c["share"]
    share = Check("npu.share", "fail" if drop > limits.max_npu_share_drop + 1e-12 else "pass",
                  f"share of ops on the NPU {b['share']:.1%} -> {c['share']:.1%} (may drop {limits.max_npu_share_drop:.1%})",
                  kind, b["share"], c["share"], limits.max_npu_share_drop, {"tool": c.get("tool")})
    bf: dict[str, int] = b.get("fallback_ops") or {}
    cf: dict[str, int] = c.get("fallback_ops") or {}
    new = {k: v - bf.get(k, 0) for k, v in cf.items() if v > bf.get(k, 0)}
    if new:
        fb = Check("npu.fallback_ops", "fail", "ops now falling off the NPU: " + ", ".join(f"{k} +{v}" for k, v in sorted(new.items())),
                   kind, bf, cf, "none new", {"new": new})
    else:
        fb = Check("npu.fallback_ops", "pass", f"no new ops off the NPU ({sum(cf.values())} off-NPU ops, as in the baseline)"
                   if cf else "every op placed on the NPU", kind, bf, cf, "none new")
    out = [share, fb]
    if b.get("cycles") and c.get("cycles"):  # Vela's static estimate: deterministic, so a hard check too
        out.append(growth_check("npu.cycles", b["cycles"], c["cycles"], limits.max_regression, "cycles", kind))
    return out


def budget_checks(target, cand: dict[str, Any], latency: dict | None, local: bool) -> list[Check]:
    """The target file's own [budgets]; latency only when the A/B ran where the target runs."""
    out = []
    b = target.budgets
    if b.size_bytes is not None:
        size = cand.get("size_bytes")
        out.append(Check("budget.size_bytes", "fail" if size > b.size_bytes else "pass",
                         f"size {fmt_num(size)}B vs budget {fmt_num(b.size_bytes)}B", "deterministic", None, size, b.size_bytes))
    if b.latency_ms is not None:
        p50 = (latency or {}).get("p50_ms")
        if p50 is None:
            out.append(Check("budget.latency_ms", "skip", "latency budget: candidate latency not measured", "measured", None, None, b.latency_ms))
        elif not local:
            out.append(Check("budget.latency_ms", "skip",
                             f"latency budget is for {target.name}; this machine is not it (use `edgekd profile --target {target.name}`)",
                             "measured", None, p50, b.latency_ms))
        else:
            out.append(Check("budget.latency_ms", "fail" if p50 > b.latency_ms else "pass",
                             f"p50 {p50:.3f} ms vs budget {b.latency_ms} ms (measured here)", "measured", None, p50, b.latency_ms))
    if b.peak_memory_mb is not None:
        out.append(Check("budget.peak_memory_mb", "skip", "peak memory budget is checked by `edgekd profile`, not the gate",
                         "measured", None, None, b.peak_memory_mb))
    return out
