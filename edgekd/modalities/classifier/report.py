"""report.md's lines about a classifier run: data, teacher, student, distillation, the input an app must feed."""

from __future__ import annotations

from typing import Any


def title(report: dict[str, Any]) -> str:
    return f"# edgekd compress — target `{report['target']['name']}`"


def _macs(n: int) -> str:
    # Torch-Pruning's counter sees nn modules only: a torch.export program or a model file counts 0
    return f"{n:,} MACs" if n else "MACs not counted (no nn.Conv/nn.Linear modules)"


def _params(n: int) -> str:
    return f"{n:,} params" if n else "parameters inside the file, not counted"


def _auto_choice(distill: dict) -> str:
    """What `auto` picked and why."""
    auto = distill.get("auto")
    if not auto:
        return ""
    return (f" → `{auto['chosen']}` at lr {auto['lr']:.2g} (probe: {len(auto['tried'])} trials of "
            f"{auto['steps_per_candidate']} steps, {auto['seconds']:.0f} s; {auto['reason']})")


def _input_line(data: dict[str, Any]) -> str | None:
    """What an app must do to pixels (or features) before calling the shipped file."""
    norm = data.get("normalisation")
    if not norm:
        return None
    values = (f"mean {[round(m, 4) for m in norm['mean']]}, std {[round(v, 4) for v in norm['std']]}"
              if len(norm["mean"]) <= 8 else f"the {len(norm['mean'])} means and stds in report.json (data.normalisation)")
    how = f"then (x - mean) / std with {values} (--normalize {data.get('normalize', 'dataset')})"
    if data.get("layout") == "NF":
        return f"- model input: vectors of {data['input_shape'][0]} features as stored in the data, {how}"
    c, h, w = data["input_shape"]
    return f"- model input: {c}x{h}x{w} images (NCHW; TFLite files NHWC), pixels in [0, 1] {how}"


def _coreml_input(report: dict[str, Any]) -> str:
    """A shipped Core ML package with an image input takes raw pixels: the app does none of the above."""
    images = [v.split()[1] for v in report["data"].get("coreml_input", []) if v.startswith("image ")]
    if not images:
        return ""
    return (f"; the Core ML packages take a {'/'.join(images)} image of raw 0..255 pixels instead (that "
            "normalisation is folded into Core ML's preprocessing scale and bias)")


def _trained(d: dict, data: dict) -> str:
    """What was trained: epochs and steps, and under a time budget the budget and why training stopped."""
    curve = d.get("curve") or []
    epochs = len(curve) if curve else d.get("epochs")
    text = f"{epochs} epochs" + (f", {d['steps']} steps" if d.get("steps") else "")
    if d.get("train_samples"):
        text += f" on {d['train_samples']} training images" + (f" x {d['views']} crop-flip views"
                                                              if (d.get("views") or 1) > 1 else "")
    if d.get("time_budget_s"):
        text += (f", time budget {d['time_budget_s']:g} s (took {d.get('budget_used_s', d.get('seconds', 0)):.0f} s"
                 + (f", stopped by the budget at {d['steps']} of {d['planned_steps']} planned steps"
                    if d.get("planned_steps") and d.get("steps", 0) < d["planned_steps"] else "") + ")")
    if d.get("val_metric") == "teacher-agreement":
        text += f"; best held-out agreement with the teacher {100 * d.get('best_val_acc', 0):.2f} % (validation views)"
    return text


def header_lines(report: dict[str, Any]) -> list[str]:
    data, student = report["data"], report["student"]
    lines = [f"- data: {data['name']} ({data['test']} test {'samples' if data.get('layout') == 'NF' else 'images'})",
             f"- teacher: `{report['teacher']['spec']}` ({_macs(report['teacher']['macs'])}, "
             f"{_params(report['teacher']['params'])})",
             f"- student: `{student['spec']}` ({_macs(student['macs'])}, {student['params']:,} params)",
             f"- distillation: recipe `{report['distill'].get('recipe')}`{_auto_choice(report['distill'])}, "
             + _trained(report['distill'], data)]
    if report.get("accuracy_metric"):  # unlabeled data: agreement, and what each file keeps of the student
        lines.append(f"- figures: {report['accuracy_metric']}")
        kept = [f"{name} {v:.2f} %" for name, v in (report.get("agreement_with_student") or {}).items()]
        if kept:
            lines.append("- top-1 agreement of each exported file with the PyTorch student: " + ", ".join(kept))
    if report.get("baseline"):
        b = report["baseline"]
        ships = ("; **the labels-only student ships** (better on the validation split)"
                 if b.get("ships") == "scratch" else "")
        lines.append(f"- baseline (labels only, same budget): {b['scratch_test_acc']:.2f} % vs distilled "
                     f"{b['distilled_test_acc']:.2f} % ({b['gain_points']:+.2f} points){ships}")
    if line := _input_line(data):
        lines.append(line + _coreml_input(report))
    if student.get("search"):
        from edgekd.modalities.classifier.student_search import report_lines

        lines += report_lines(student["search"])
    derived = student.get("derived") or {}
    if derived.get("macs_before"):
        lines.append(f"- student derived from the teacher ({derived.get('mode')}): {derived['macs_before']:,} -> "
                     f"{derived['macs_after']:,} MACs, dropped blocks {derived.get('dropped_blocks') or 'none'}, "
                     f"channels rounded to multiples of {derived.get('round_to')}")
    return lines
