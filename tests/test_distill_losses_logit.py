"""Logit-distillation losses (DKD, DIST, logit standardisation) against numpy hand computations,
their recipe registration, and the three built-in recipes that use them trained through the engine."""

import numpy as np
import pytest
import torch

from tiny_vectors import mlp, tiny_bundle

from edgekd.distill import distill, load_recipe
from edgekd.distill.losses import DISTLoss, DKDLoss, KDLoss, dkd_parts, soft_kl, standardize_logits
from edgekd.distill.recipe import LOSS_TYPES
from edgekd.distill.registry import LOSSES, register_loss
from edgekd.errors import EdgeKDError

torch.set_num_threads(1)

# float32 module output vs float64 numpy reference
TIGHT = dict(rtol=1e-5, atol=1e-6)

S = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
T = np.array([[2.0, 0.5, -1.0], [1.0, 0.0, 2.5]])
Y = np.array([0, 2])


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _kl(p, q):  # sum_i p_i log(p_i / q_i) per row
    return (p * np.log(p / q)).sum(-1)


def _tensor(a):
    return torch.tensor(a, dtype=torch.float32)


def _close(got, want):
    want = torch.as_tensor(want, dtype=torch.float32)
    assert torch.allclose(got.detach().float(), want, **TIGHT), (got.item(), want.item())


def _dkd_by_hand(s, t, y, temp, alpha, beta):
    """Per sample, in probability space: binary (target, rest) KL and KL of the renormalised rest."""
    ps, pt = _softmax(s / temp), _softmax(t / temp)
    tckd, nckd = [], []
    for i, c in enumerate(y):
        bs = np.array([ps[i, c], 1 - ps[i, c]])
        bt = np.array([pt[i, c], 1 - pt[i, c]])
        tckd.append(_kl(bt, bs))
        rest = [j for j in range(s.shape[1]) if j != c]
        qs = ps[i, rest] / ps[i, rest].sum()
        qt = pt[i, rest] / pt[i, rest].sum()
        nckd.append(_kl(qt, qs))
    tckd, nckd = np.mean(tckd) * temp ** 2, np.mean(nckd) * temp ** 2
    return alpha * tckd + beta * nckd, tckd, nckd


# ---- DKD ----------------------------------------------------------------------------------------

def test_dkd_matches_hand_computation():
    want, tckd, nckd = _dkd_by_hand(S, T, Y, 2.0, 1.0, 8.0)
    got = DKDLoss(temperature=2.0, alpha=1.0, beta=8.0)(_tensor(S), _tensor(T), torch.tensor(Y))
    _close(got, want)
    got_t, got_n = dkd_parts(_tensor(S), _tensor(T), torch.tensor(Y), 2.0)
    _close(got_t, tckd)
    _close(got_n, nckd)
    # defaults: alpha 1, beta 8, T 4 (the paper's CIFAR-100 setting)
    d = DKDLoss()
    assert (d.alpha, d.beta, d.temperature, d.standardize) == (1.0, 8.0, 4.0, False)
    _close(d(_tensor(S), _tensor(T), torch.tensor(Y)), _dkd_by_hand(S, T, Y, 4.0, 1.0, 8.0)[0])


def test_dkd_beta_zero_is_tckd_alone():
    _, tckd, _ = _dkd_by_hand(S, T, Y, 4.0, 1.0, 0.0)
    got = DKDLoss(temperature=4.0, alpha=1.0, beta=0.0)(_tensor(S), _tensor(T), torch.tensor(Y))
    _close(got, tckd)
    # and alpha = 0: NCKD alone
    _, _, nckd = _dkd_by_hand(S, T, Y, 4.0, 0.0, 1.0)
    _close(DKDLoss(temperature=4.0, alpha=0.0, beta=1.0)(_tensor(S), _tensor(T), torch.tensor(Y)), nckd)


def test_dkd_decomposes_classic_kd():
    """Zhao et al. eq. (3): KD = TCKD + (1 - p_target^teacher) * NCKD, sample by sample."""
    temp = 3.0
    for i in range(2):
        s, t, y = _tensor(S[i:i + 1]), _tensor(T[i:i + 1]), torch.tensor(Y[i:i + 1])
        tckd, nckd = dkd_parts(s, t, y, temp)
        pt_target = torch.softmax(t / temp, -1)[0, Y[i]]
        kd = KDLoss(temperature=temp, alpha=1.0)(s, t)
        assert torch.allclose(kd, tckd + (1 - pt_target) * nckd, **TIGHT)


def test_dkd_confident_teacher_is_finite_and_teacher_gets_no_gradient():
    s = torch.tensor([[0.0, 1.0, -1.0, 0.5]], requires_grad=True)
    t = torch.tensor([[200.0, -100.0, 0.0, 1.0]], requires_grad=True)  # p_target = 1 - 1e-87
    loss = DKDLoss(temperature=1.0)(s, t, torch.tensor([0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all() and t.grad is None
    with pytest.raises(ValueError, match="labels"):
        DKDLoss()(s, t, None)


def test_dkd_standardize_uses_standardised_logits():
    zs = (S - S.mean(-1, keepdims=True)) / S.std(-1, ddof=1, keepdims=True)
    zt = (T - T.mean(-1, keepdims=True)) / T.std(-1, ddof=1, keepdims=True)
    want = _dkd_by_hand(zs, zt, Y, 2.0, 1.0, 8.0)[0]
    _close(DKDLoss(temperature=2.0, standardize=True)(_tensor(S), _tensor(T), torch.tensor(Y)), want)


# ---- DIST ---------------------------------------------------------------------------------------

S4 = np.array([[1.0, 0.0, -1.0, 2.0], [0.5, 1.5, 0.0, -0.5], [-1.0, 2.0, 1.0, 0.0]])
T4 = np.array([[2.0, -1.0, 0.0, 1.0], [0.0, 3.0, -1.0, 0.0], [1.0, 1.0, 2.0, -2.0]])


def _dist_by_hand(s, t, temp, beta, gamma):
    ps, pt = _softmax(s / temp), _softmax(t / temp)
    inter = 1 - np.mean([np.corrcoef(ps[i], pt[i])[0, 1] for i in range(len(ps))])
    intra = 1 - np.mean([np.corrcoef(ps[:, c], pt[:, c])[0, 1] for c in range(ps.shape[1])])
    return temp ** 2 * (beta * inter + gamma * intra), temp ** 2 * inter, temp ** 2 * intra


def test_dist_matches_hand_computation():
    for temp, beta, gamma in ((1.0, 1.0, 1.0), (2.0, 2.0, 0.5)):
        want, inter, intra = _dist_by_hand(S4, T4, temp, beta, gamma)
        loss = DISTLoss(temperature=temp, beta=beta, gamma=gamma)
        _close(loss(_tensor(S4), _tensor(T4)), want)
        got_inter, got_intra = loss.parts(_tensor(S4), _tensor(T4))
        _close(got_inter, inter)
        _close(got_intra, intra)
    d = DISTLoss()
    assert (d.temperature, d.beta, d.gamma) == (1.0, 1.0, 1.0)


def test_dist_is_zero_for_equal_logits_and_trains_the_student_only():
    z = _tensor(S4)
    assert DISTLoss()(z, z.clone()).abs().item() < 1e-6
    # at T=4 the probabilities are nearly uniform: the eps in the correlation's denominator and float32
    # rounding of 1 - corr (~1e-6) are multiplied by T^2 = 16
    assert DISTLoss(temperature=4.0)(z, z.clone()).abs().item() < 1e-4
    # correlation ignores scale and shift of the probabilities, not of the logits: a sharper copy costs > 0
    assert DISTLoss()(3 * z, z).item() > 1e-3
    s = z.clone().requires_grad_(True)
    t = _tensor(T4).requires_grad_(True)
    DISTLoss()(s, t).backward()
    assert t.grad is None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


# ---- logit standardisation -------------------------------------------------------------------------

def test_standardize_logits_and_zero_std_guard():
    got = standardize_logits(_tensor(S))
    want = (S - S.mean(-1, keepdims=True)) / S.std(-1, ddof=1, keepdims=True)
    assert torch.allclose(got, _tensor(want), **TIGHT)
    flat = standardize_logits(torch.full((2, 5), 3.0))
    assert torch.equal(flat, torch.zeros(2, 5))  # (z - mean) = 0 over (0 + eps): uniform softmax, not NaN


def test_kd_standardize_matches_hand_computation():
    zs = (S - S.mean(-1, keepdims=True)) / S.std(-1, ddof=1, keepdims=True)
    zt = (T - T.mean(-1, keepdims=True)) / T.std(-1, ddof=1, keepdims=True)
    soft = np.mean(_kl(_softmax(zt / 2.0), _softmax(zs / 2.0))) * 4.0  # base temperature 2, T^2 kept
    _close(KDLoss(temperature=2.0, alpha=1.0, standardize=True)(_tensor(S), _tensor(T)), soft)
    # with labels, the hard term reads the raw student logits
    p_raw = _softmax(S)
    hard = -np.mean(np.log(p_raw[np.arange(2), Y]))
    got = KDLoss(temperature=2.0, alpha=0.25, standardize=True)(_tensor(S), _tensor(T), torch.tensor(Y))
    _close(got, 0.25 * soft + 0.75 * hard)


def test_standardised_kd_is_invariant_to_shift_and_positive_scale():
    s, t = _tensor(S4), _tensor(T4)
    kd = KDLoss(temperature=2.0, alpha=1.0, standardize=True)
    base = kd(s, t)
    assert base.item() > 1e-3
    for variant in (s + 7.5, s - 3.0, 4.0 * s, 0.25 * s, 3.0 * s + 2.0):
        assert torch.allclose(kd(variant, t), base, **TIGHT)
    assert torch.allclose(kd(s, 5.0 * t - 1.0), base, **TIGHT)  # the teacher's range does not matter either
    # plain KD is shift-invariant too (softmax), but not scale-invariant
    plain = KDLoss(temperature=2.0, alpha=1.0)
    assert torch.allclose(plain(s + 7.5, t), plain(s, t), **TIGHT)
    assert not torch.allclose(plain(4.0 * s, t), plain(s, t), **TIGHT)
    # a student matching the teacher up to an affine map costs nothing once standardised
    assert kd(2.0 * t + 1.0, t).abs().item() < 1e-6


def test_plain_kd_unchanged_by_the_option():
    s, t = _tensor(S), _tensor(T)
    assert torch.equal(KDLoss(2.0, 1.0)(s, t), soft_kl(s, t, 2.0).mean())


# ---- registry and recipe checks -----------------------------------------------------------------------

def test_each_loss_type_is_registered_once_with_its_keys():
    assert set(LOSSES) >= {"ce", "kd", "hint", "at", "rkd", "cosine", "dkd", "dist"}
    assert set(LOSS_TYPES) == set(LOSSES)
    assert LOSS_TYPES["dkd"] == {"temperature", "alpha", "beta", "standardize"}
    assert LOSS_TYPES["dist"] == {"temperature", "beta", "gamma"}
    assert "standardize" in LOSS_TYPES["kd"]
    with pytest.raises(ValueError, match="already registered"):
        register_loss("kd")(lambda *a: [])


def test_recipe_values_are_checked_when_parsed():
    def rec(**kw):
        return {"loss": [kw]}

    load_recipe(rec(type="dkd", alpha=2.0, beta=0.0, standardize=True))  # DKD's alpha is a weight, not a mix
    load_recipe(rec(type="dist", beta=2.0, gamma=2.0, temperature=4.0))
    cases = [
        (rec(type="dkd", beta=-1.0), "dkd.beta must be >= 0"),
        (rec(type="dkd", alpha="big"), "dkd.alpha must be a number"),
        (rec(type="dkd", standardize="yes"), "dkd.standardize must be true or false"),
        (rec(type="dkd", temperature=0.0), "dkd.temperature must be > 0"),
        (rec(type="dist", gamma=-0.5), "dist.gamma must be >= 0"),
        (rec(type="dist", alpha=1.0), "unknown key"),
        (rec(type="kd", standardize=1), "kd.standardize must be true or false"),
        (rec(type="kd", alpha=1.5), "kd.alpha must lie in"),
        (rec(type="ce", standardize=True), "unknown key"),
    ]
    for raw, msg in cases:
        with pytest.raises(EdgeKDError, match=msg):
            load_recipe(raw)


def test_builtin_logit_recipes():
    dkd, dist, ls = load_recipe("dkd"), load_recipe("dist"), load_recipe("kd-ls")
    assert [(s.type, s.weight) for s in dkd.losses] == [("dkd", 1.0), ("ce", 1.0)]
    assert dkd.losses[0].params == {"temperature": 4.0, "alpha": 1.0, "beta": 8.0}
    assert [(s.type, s.weight) for s in dist.losses] == [("dist", 1.0), ("ce", 1.0)]
    assert dist.losses[0].params == {"temperature": 1.0, "beta": 1.0, "gamma": 1.0}
    assert [(s.type, s.weight) for s in ls.losses] == [("kd", 9.0), ("ce", 1.0)]
    assert ls.losses[0].params == {"temperature": 2.0, "alpha": 1.0, "standardize": True}
    # overrides reach the new keys
    assert load_recipe("dkd", {"dkd.beta": "2"}).losses[0].params["beta"] == 2
    # kd-ls-ramp: kd-ls's terms, the KD weight ramping in over the first half (labels alone at the start)
    ramp = load_recipe("kd-ls-ramp")
    assert [(s.type, s.weight) for s in ramp.losses] == [("ce", 1.0), ("kd", 9.0)]
    assert ramp.losses[1].params == ls.losses[0].params
    kd = ramp.losses[1]
    assert kd.factor(0.0) == 0.0 and kd.factor(0.25) == pytest.approx(0.5) and kd.factor(0.75) == 1.0


# ---- end to end through the engine ---------------------------------------------------------------------

_tiny_bundle, _mlp = tiny_bundle, mlp


@pytest.mark.parametrize("name", ["dkd", "dist", "kd-ls", "kd-ls-ramp"])
def test_logit_recipes_train_end_to_end(name):
    teacher, student = _mlp(32, 0).eval(), _mlp(8, 1)
    before = [p.detach().clone() for p in student.parameters()]
    res = distill(teacher, student, _tiny_bundle(), recipe=name, epochs=2, max_steps=4, batch_size=32,
                  progress=False)
    m = res.metrics
    assert m["steps"] == 4 and m["recipe"] == name
    parts = set().union(*(e["parts"] for e in m["epochs"]))
    assert parts == {s.name for s in load_recipe(name).losses}
    assert all(np.isfinite(e["train_loss"]) for e in m["epochs"])
    assert all(np.isfinite(v) for e in m["epochs"] for v in e["parts"].values())
    assert any(not torch.equal(a, b) for a, b in zip(before, res.student.parameters()))


# a new loss type from a test file: tests/test_distill_registry.py


def test_warmup_ramps_a_loss_weight_linearly():
    spec = load_recipe({"loss": [{"type": "dkd", "warmup": 0.2, "start": 0.1}, {"type": "ce"}]}).losses[0]
    assert spec.factor(0.05) == 0.0  # not started
    assert spec.factor(0.2) == pytest.approx(0.5)  # half way through its warm-up
    assert spec.factor(0.3) == pytest.approx(1.0) and spec.factor(1.0) == 1.0  # (0.3 - 0.1) / 0.2 in floats
    assert load_recipe("dkd").losses[0].warmup == 0.1  # the paper's 20 of 240 epochs, as a share of steps
    with pytest.raises(EdgeKDError, match="warmup"):
        load_recipe({"loss": [{"type": "kd", "warmup": -1}]})
