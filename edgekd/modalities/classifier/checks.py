"""Early one-line failures and warnings about the teacher and the data, before any training."""

from __future__ import annotations

from edgekd.errors import EdgeKDError
from edgekd.core.outputs import logits_of


def teacher_sanity(teacher, data, n: int = 256) -> str | None:
    """A warning when the teacher is near chance on the test data: distilling it would teach the student
    nothing, and the usual cause is preprocessing (normalisation, size) or class order unlike its training."""
    from edgekd.runtime import accuracy, load_runner

    x, y = data.test.x[:n], data.test.y[:n]
    if len(x) < 20:  # too few test samples to tell a working teacher from chance
        return None
    acc = accuracy(load_runner(teacher), x, y) / 100.0
    chance = 1.0 / max(2, data.num_classes)
    # near chance: within 5 points, or within two standard errors of chance on this many images
    if acc >= chance + max(0.05, 2 * (chance * (1 - chance) / len(x)) ** 0.5):
        return None
    images = data.layout != "NF"
    return (f"the teacher scores {100 * acc:.1f} % on {len(x)} test {data.noun} of '{data.name}' "
            f"(chance {100 * chance:.1f} %): check that --normalize (now {data.source.get('normalize', 'dataset')})"
            f"{' and --image-size match' if images else ' matches'} how it was trained, and that the class order "
            "matches its outputs")


def check_fits(model, data, who: str) -> int:
    """Fail early, in one line, when the data does not fit the model; else the number of classes it predicts
    (a student is built with the teacher's, which data holding only some of its classes has fewer of)."""
    import torch

    x = torch.from_numpy(data.test.x[:2])
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:
        msg = " ".join(str(exc).split())[:200]
        raise EdgeKDError(f"data {data.where} of shape {tuple(data.input_shape)} does not fit the {who} (wrong channel "
                          f"count or size?): {msg}") from None
    try:
        out = logits_of(out)
    except TypeError as exc:
        raise EdgeKDError(f"the {who}: {exc}") from None
    if out.ndim != 2 or out.shape[1] < data.num_classes:
        raise EdgeKDError(f"the {who} outputs shape {tuple(out.shape)} but data {data.where} has {data.num_classes} "
                          "classes")
    return int(out.shape[1])
