"""Teacher-assistant chain: the planning rule, the probe veto, and a resumable run in a RunDir."""

import copy
import dataclasses

import pytest
import torch
from torch import nn

from edgekd.errors import EdgeKDError
from edgekd.prune.chain import geometric_ratios, plan_chain, run_chain

torch.set_num_threads(1)


def test_plan_by_capacity_gap():
    assert plan_chain(None, 0.2).n_assistants == 0  # 5x: one link is enough
    p = plan_chain(None, 0.02)  # 50x: one assistant at the geometric midpoint
    assert p.n_assistants == 1 and p.ratios[0] == pytest.approx(0.02 ** 0.5, rel=1e-4)
    p = plan_chain(None, 0.001)  # 1000x: two assistants, 10x per link
    assert p.ratios == pytest.approx([0.1, 0.01], rel=1e-3)


def test_plan_modes_and_geometric_sizes():
    assert plan_chain(None, 0.02, chain="none").n_assistants == 0
    p = plan_chain(None, 0.008, chain="2")
    assert p.ratios == pytest.approx([0.2, 0.04], rel=1e-3) and p.mode == "2"
    assert geometric_ratios(0.01, 1) == [0.1]


def test_probe_can_veto_or_confirm_assistants():
    veto = plan_chain(None, 0.02, probe={"direct": 0.90, "chain": 0.91})
    assert veto.n_assistants == 0 and "direct KD" in veto.reason
    keep = plan_chain(None, 0.02, probe={"direct": 0.60, "chain": 0.85})
    assert keep.n_assistants == 1 and "probe" in keep.reason
    assert plan_chain(None, 0.02, probe=0.95).n_assistants == 0  # plain agreement above the threshold
    assert plan_chain(None, 0.02, probe=0.50).n_assistants == 1
    # 10x: the capacity rule alone says direct KD, a probe showing a gap adds one assistant at sqrt(0.1)
    assert plan_chain(None, 0.1).n_assistants == 0
    p = plan_chain(None, 0.1, probe={"direct": 0.55, "chain": 0.80})
    assert p.ratios == pytest.approx([0.1 ** 0.5], rel=1e-4)
    # a small gap is never probed or chained
    assert plan_chain(None, 0.3, probe={"direct": 0.1, "chain": 0.9}).n_assistants == 0


@pytest.mark.parametrize("kw,msg", [({"chain": "many"}, "--chain"), ({"chain": "-1"}, "between"),
                                    ({"student_ratio": 1.5}, "ratio"), ({"student_ratio": "x"}, "ratio")])
def test_plan_bad_input(kw, msg):
    args = {"student_ratio": 0.1} | kw
    with pytest.raises(EdgeKDError, match=msg):
        plan_chain(None, **args)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU())
        self.body = nn.Sequential(Block(64), Block(64), Block(64), Block(64))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(self.body(self.stem(x)).mean((2, 3)))


@pytest.fixture(scope="module")
def data():
    from edgekd.data import load_data

    b = load_data("digits", seed=0)
    return dataclasses.replace(b, train=b.train.subset(192, 0), val=b.val.subset(48, 0), test=b.test.subset(48, 0))


def test_run_chain_records_links_and_resumes(tmp_path, data):
    from edgekd.core import RunDir

    torch.manual_seed(0)
    teacher = Teacher().eval()
    plan = plan_chain(None, 0.02, chain="1")
    rd = RunDir(tmp_path / "run")
    res = run_chain(teacher, None, data, plan=plan, recipe="hinton", max_steps=6, batch_size=32, run=rd)
    assert [l["role"] for l in res.links] == ["assistant", "student"]
    assert [l["steps"] for l in res.links] == [3, 3]  # the total budget is split over the links
    a, s = res.links
    assert s["macs"] < a["macs"] < res.links[0]["macs"] / a["macs_ratio"]
    assert s["macs_ratio"] <= 0.05
    stages = rd.manifest["stages"]
    assert {"chain.link1", "chain.link2"} <= set(stages) and stages["chain.link2"]["status"] == "done"
    assert (tmp_path / "run" / "chain" / "link2" / "model.pt").is_file()
    x = torch.from_numpy(data.test.x[:4])
    want = res.student(x)
    # A rerun with the same settings skips both links and rebuilds the same student from the files.
    again = run_chain(teacher, None, data, plan=plan, recipe="hinton", max_steps=6, batch_size=32, run=RunDir(rd.root))
    assert all(l.get("resumed") for l in again.links)
    torch.testing.assert_close(again.student(x), want)
    assert res.metrics["chain"]["plan"]["n_assistants"] == 1


def test_run_chain_with_given_student_and_auto_probe(data):
    from edgekd.models import create_model

    torch.manual_seed(0)
    teacher = Teacher().eval()
    student = create_model("cnn-xs", in_channels=1, num_classes=10)
    res = run_chain(teacher, copy.deepcopy(student), data, chain="auto", recipe="hinton", max_steps=4,
                    batch_size=32, probe_steps=2)
    assert res.plan.probe is not None and {"direct", "chain"} <= set(res.plan.probe)
    assert res.plan.probe["steps_each"] == 4
    assert res.links[-1]["params"] == sum(p.numel() for p in student.parameters())  # the given architecture


def test_chain_student_keeps_announced_depth_and_link_files_load_from_teacher(tmp_path, data):
    """auto:<ratio> in compress: assistants width-only, the student drops the blocks derive(teacher) chose,
    and every link file (dropped blocks relative to the teacher) loads onto a fresh teacher."""
    from edgekd.models.checkpoint import load_portable

    torch.manual_seed(0)
    teacher = Teacher().eval()
    plan = plan_chain(None, 0.05, chain="1")
    res = run_chain(teacher, None, data, plan=plan, recipe="hinton", max_steps=4, batch_size=32,
                    student_blocks=["body.1", "body.3"], output_dir=tmp_path)
    ta, st = res.links
    assert ta["dropped_blocks"] == [] and sorted(st["dropped_blocks"]) == ["body.1", "body.3"]
    assert len(res.student.body) == 2 and st["macs_ratio"] <= 0.05 * 1.05
    x = torch.from_numpy(data.test.x[:4])
    m = load_portable(Teacher(), tmp_path / "link2" / "model.pt")
    torch.testing.assert_close(m(x), res.student(x))


def test_run_chain_with_recipe_auto(tmp_path, data):
    """compress's default recipe reaches every link: each one probes, then trains what it chose."""
    from edgekd.core import RunDir

    torch.manual_seed(0)
    res = run_chain(Teacher().eval(), None, data, plan=plan_chain(None, 0.02, chain="1"), recipe="auto",
                    max_steps=6, batch_size=32, run=RunDir(tmp_path / "run"))
    assert [link["recipe"].split(":")[0] for link in res.links] == ["auto", "auto"]


def test_dense_guidance_teaches_the_student_from_teacher_and_assistant(data, monkeypatch):
    """DGKD: the student link's teacher is DenseGuides over the teacher and the trained assistant."""
    import edgekd.prune._train as tr
    from edgekd.distill.guides import DenseGuides

    seen = []
    real = tr.train_link
    monkeypatch.setattr(tr, "train_link", lambda t, s, d, **k: (seen.append(t), real(t, s, d, **k))[1])
    torch.manual_seed(0)
    teacher = Teacher().eval()
    res = run_chain(teacher, None, data, plan=plan_chain(None, 0.02, chain="1"), recipe="hinton", max_steps=6,
                    batch_size=32, guidance="dense")
    assert seen[0] is teacher and isinstance(seen[1], DenseGuides)
    assert len(seen[1].guides) == 2 and seen[1].guides[0] is teacher and seen[1].temperature == 4.0  # hinton's T
    assert res.links[-1]["guides"] == 2 and "guides" not in res.links[0]
    with pytest.raises(EdgeKDError, match="guidance"):
        run_chain(teacher, None, data, plan=plan_chain(None, 0.02, chain="1"), max_steps=2, guidance="both")


def test_dense_prefix_of_chain():
    from edgekd.prune.chain import split_guidance

    assert split_guidance("dense") == ("dense", "auto") and split_guidance("dense:2") == ("dense", "2")
    assert split_guidance("auto") == ("chain", "auto") and split_guidance(1) == ("chain", 1)
    assert plan_chain(None, 0.02, chain="dense:1").n_assistants == 1
    with pytest.raises(EdgeKDError, match="dense"):
        plan_chain(None, 0.02, chain="dense:many")
