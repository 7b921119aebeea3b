"""compress warns when the teacher is near chance on the data (wrong normalisation, size or class order)."""

import torch

from edgekd.data import load_data
from edgekd.models import load_weights
from edgekd.modalities.classifier.checks import teacher_sanity


def test_trained_teacher_passes_and_mismatched_preprocessing_warns():
    from examples.fashion_mnist.teacher import build_teacher, weights_for

    teacher = build_teacher()
    load_weights(teacher, weights_for("digits"))
    assert teacher_sanity(teacher, load_data("digits")) is None
    # the same teacher fed pixels it never saw in training: flagged, with the fix named
    note = teacher_sanity(teacher, load_data("digits", normalize="0.9/0.01"))
    assert note and "chance 10.0 %" in note and "--normalize (now 0.9/0.01)" in note


def test_untrained_teacher_warns():
    torch.manual_seed(0)
    blank = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    torch.nn.init.zeros_(blank[1].weight)
    torch.nn.init.zeros_(blank[1].bias)  # constant output: always class 0
    assert "the teacher scores" in teacher_sanity(blank, load_data("digits"))
