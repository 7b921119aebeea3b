"""Where the teacher and the student come from: built-in example, entrypoint, .pt2, built-in family, auto:<ratio>."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgekd.errors import EdgeKDError

_PKG = Path(__file__).resolve().parents[2]  # the edgekd package directory


def example_dir() -> Path | None:
    """The built-in example's teacher: edgekd/_example (a symlink to examples/fashion_mnist; a built wheel
    holds teacher.py and its weights themselves), else examples/fashion_mnist beside the package."""
    for cand in (_PKG / "_example", _PKG.parent / "examples" / "fashion_mnist"):
        if (cand / "teacher.py").is_file():
            return cand
    return None


@dataclass
class ModelSource:
    spec: str
    weights: str | None
    factory: Callable[[], Any]
    info: dict[str, Any] = field(default_factory=dict)

    def build(self):
        """A fresh model instance (new object every call)."""
        return self.factory()


def builtin_example_teacher(dataset: str) -> tuple[str, str]:
    where = example_dir()
    if where is None:
        raise EdgeKDError(f"the built-in example's teacher is missing (looked in {_PKG / '_example'}; it ships in the "
                          "edgekd wheel and in the source tree's examples/fashion_mnist): reinstall edgekd or pass --teacher")
    teacher_py = where / "teacher.py"
    weights = where / ("teacher.pt" if dataset == "fashion-mnist" else f"teacher_{dataset}.pt")
    if not weights.is_file():
        raise EdgeKDError(f"the built-in teacher has no weights for data '{dataset}' (it has fashion-mnist and digits); pass --teacher")
    return f"{teacher_py}:build_teacher", str(weights)


def resolve_teacher(spec: str | None, weights: str | None, data) -> ModelSource:
    from edgekd.models import load_model

    if spec is None:
        if weights:
            raise EdgeKDError("--teacher-weights needs --teacher (the built-in example brings its own weights)")
        spec, weights = builtin_example_teacher(data.name)
    kw = {"in_channels": data.input_shape[0], "num_classes": data.num_classes}
    load_model(spec, weights, **kw)  # fail now, in one line, on a bad spec or checkpoint
    return ModelSource(spec, weights, lambda: load_model(spec, weights, **kw))


def resolve_student(spec: str, teacher, data, *, seed: int = 0, round_to: int = 8,
                    teacher_classes: int | None = None) -> ModelSource:
    """round_to: channel multiple for auto:<ratio> students (edgekd.prune._util.channel_multiple(target)).
    teacher_classes: the teacher's output width, when the caller has run check_fits on it already."""
    import torch

    from edgekd.models import load_model

    if spec.startswith("auto:"):
        try:
            ratio = float(spec.split(":", 1)[1])
        except ValueError:
            raise EdgeKDError(f"--student {spec}: expected auto:<ratio>, e.g. auto:0.1") from None
        if not 0 < ratio < 1:
            raise EdgeKDError(f"--student {spec}: the ratio must be between 0 and 1 (fraction of the teacher's MACs)")
        from edgekd.prune import derive

        torch.manual_seed(seed)
        example = torch.from_numpy(data.test.x[:1])
        result = derive(teacher, ratio=ratio, example_input=example, round_to=round_to)  # teacher not modified
        derived = result.model
        return ModelSource(spec, None, lambda: copy.deepcopy(derived), info=_public(result))
    from edgekd.modalities.classifier.checks import check_fits

    # the teacher's classes: data holding only some of them would give a student the teacher cannot be compared to
    if teacher_classes is None:
        teacher_classes = check_fits(teacher, data, "teacher")
    kw = {"in_channels": data.input_shape[0], "num_classes": max(data.num_classes, teacher_classes)}
    torch.manual_seed(seed)
    load_model(spec, None, **kw)
    return ModelSource(spec, None, lambda: load_model(spec, None, **kw).train())


def _public(result) -> dict[str, Any]:
    d = result.to_dict() if hasattr(result, "to_dict") else {}
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, list, dict, type(None)))}
