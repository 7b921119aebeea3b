"""Logit losses: Hinton KD, decoupled KD, DIST, logit standardisation, token KD and cross-entropy.

Each takes student logits first, teacher logits second; teacher tensors are detached here, so a caller
cannot leak gradients into the teacher by mistake. The recipe types they back are registered at the end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.distill.registry import flag, number, register_loss

def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row KL(p_teacher(T) || p_student(T)) * T^2, shape = logits.shape[:-1]."""
    t = temperature
    log_ps = F.log_softmax(student_logits / t, dim=-1)
    log_pt = F.log_softmax(teacher_logits.detach() / t, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1) * (t * t)


STANDARDIZE_EPS = 1e-7


def standardize_logits(logits: torch.Tensor, eps: float = STANDARDIZE_EPS) -> torch.Tensor:
    """Logit standardisation (Sun et al., CVPR 2024): z -> (z - mean(z)) / (std(z) + eps) over classes.

    As in the authors' code: the sample (unbiased, K - 1) standard deviation and eps added to it, so a
    row of equal logits becomes all zeros (a uniform softmax) instead of 0 / 0.
    """
    mean = logits.mean(dim=-1, keepdim=True)
    std = logits.std(dim=-1, keepdim=True)
    return (logits - mean) / (std + eps)


class KDLoss(nn.Module):
    """Hinton et al. 2015: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels).

    Without labels (target None) only the soft term is used (at full weight).
    standardize: both models' logits go through `standardize_logits` before the soft term (Sun et al.
    2024); T then acts as their "base temperature" (the paper uses 2) and T^2 is kept. The hard CE
    term always reads the raw student logits.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, label_smoothing: float = 0.0,
                 standardize: bool = False):
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("alpha must lie in [0, 1]")
        self.temperature, self.alpha, self.label_smoothing = float(temperature), float(alpha), float(label_smoothing)
        self.standardize = bool(standardize)

    def forward(self, student_logits, teacher_logits, target=None):
        s, t = student_logits, teacher_logits.detach()
        if self.standardize:
            s, t = standardize_logits(s), standardize_logits(t)
        soft = soft_kl(s, t, self.temperature).mean()
        if target is None or self.alpha >= 1.0:
            return soft if target is None else self.alpha * soft
        hard = F.cross_entropy(student_logits, target, label_smoothing=self.label_smoothing)
        return self.alpha * soft + (1.0 - self.alpha) * hard


def dkd_parts(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
              temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD) of Decoupled KD (Zhao et al., CVPR 2022), batch means, each scaled by T^2.

    TCKD: binary KL(teacher || student) between (target mass, non-target mass) of softmax(z / T).
    NCKD: KL(teacher || student) between the softmaxes over the K - 1 non-target classes only (the
    target is dropped, not down-weighted). Classic KD = TCKD + (1 - p_target^teacher) * NCKD per sample.
    Computed in log space (logsumexp), so a confident model does not take log(0).
    """
    k = student_logits.shape[-1]
    if k < 2:
        raise ValueError("DKD needs at least 2 classes")
    t_ = float(temperature)
    s = student_logits.reshape(-1, k) / t_
    t = teacher_logits.detach().reshape(-1, k).to(s.dtype) / t_
    gt = F.one_hot(target.reshape(-1).long(), k).bool()
    s_other, t_other = s[~gt].view(-1, k - 1), t[~gt].view(-1, k - 1)  # row-major: each row keeps its order
    lse_s, lse_t = torch.logsumexp(s, -1), torch.logsumexp(t, -1)
    lse_s_other, lse_t_other = torch.logsumexp(s_other, -1), torch.logsumexp(t_other, -1)
    log_bs = torch.stack([s[gt] - lse_s, lse_s_other - lse_s], -1)  # log (p_target, 1 - p_target)
    log_bt = torch.stack([t[gt] - lse_t, lse_t_other - lse_t], -1)
    tckd = (log_bt.exp() * (log_bt - log_bs)).sum(-1)
    log_qs = s_other - lse_s_other[:, None]  # softmax over the non-target classes
    log_qt = t_other - lse_t_other[:, None]
    nckd = (log_qt.exp() * (log_qt - log_qs)).sum(-1)
    return tckd.mean() * (t_ * t_), nckd.mean() * (t_ * t_)


class DKDLoss(nn.Module):
    """Decoupled KD (Zhao et al., CVPR 2022): alpha * TCKD + beta * NCKD at temperature T (see dkd_parts).

    Needs the labels. Defaults are the paper's CIFAR-100 setting (alpha 1, beta 8, T 4). The paper's
    linear warm-up of the DKD weight over the first 20 epochs is not applied here (the engine does not
    give a loss the training progress); standardize: as in KDLoss (Sun et al. 2024 apply it to DKD too).
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 1.0, beta: float = 8.0,
                 standardize: bool = False):
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        if alpha < 0 or beta < 0:
            raise ValueError("alpha and beta must be >= 0")
        self.temperature, self.alpha, self.beta = float(temperature), float(alpha), float(beta)
        self.standardize = bool(standardize)

    def forward(self, student_logits, teacher_logits, target):
        if target is None:
            raise ValueError("DKD needs the labels (target)")
        s, t = student_logits, teacher_logits.detach()
        if self.standardize:
            s, t = standardize_logits(s), standardize_logits(t)
        tckd, nckd = dkd_parts(s, t, target, self.temperature)
        return self.alpha * tckd + self.beta * nckd


def pearson_rows(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of each row of a with the same row of b (as DIST's code: eps in the denominator)."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)


class DISTLoss(nn.Module):
    """DIST (Huang et al., NeurIPS 2022): match relations, not values, of p = softmax(z / T).

    inter = 1 - mean over samples of pearson(p_s[i, :], p_t[i, :])   (relations between classes)
    intra = 1 - mean over classes of pearson(p_s[:, c], p_t[:, c])   (relations within the batch)
    loss = T^2 * (beta * inter + gamma * intra). Defaults are the paper's ImageNet setting (T 1,
    beta = gamma = 1; CIFAR-100 used T 4, beta = gamma = 2). Labels are not used (CE is a separate term).
    A batch of one sample has no intra-class relation: that part is then the constant 1 (no gradient).
    """

    def __init__(self, temperature: float = 1.0, beta: float = 1.0, gamma: float = 1.0, eps: float = 1e-8):
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        if beta < 0 or gamma < 0:
            raise ValueError("beta and gamma must be >= 0")
        self.temperature, self.beta, self.gamma, self.eps = float(temperature), float(beta), float(gamma), float(eps)

    def parts(self, student_logits, teacher_logits) -> tuple[torch.Tensor, torch.Tensor]:
        """(inter, intra), each already scaled by T^2."""
        t_ = self.temperature
        k = student_logits.shape[-1]
        ps = F.softmax(student_logits.reshape(-1, k) / t_, dim=-1)
        pt = F.softmax(teacher_logits.detach().reshape(-1, k).to(ps.dtype) / t_, dim=-1)
        inter = 1.0 - pearson_rows(ps, pt, self.eps).mean()
        intra = 1.0 - pearson_rows(ps.t(), pt.t(), self.eps).mean()
        return inter * (t_ * t_), intra * (t_ * t_)

    def forward(self, student_logits, teacher_logits):
        inter, intra = self.parts(student_logits, teacher_logits)
        return self.beta * inter + self.gamma * intra


class TokenKDLoss(nn.Module):
    """Token-level KD for sequence outputs (B, L, V): per-token softmax at T, padded tokens masked out.

    mask: (B, L) with 1/True for real tokens; the mean is over real tokens only.
    """

    def __init__(self, temperature: float = 2.0):
        super().__init__()
        self.temperature = float(temperature)

    def forward(self, student_logits, teacher_logits, mask=None):
        per_token = soft_kl(student_logits, teacher_logits, self.temperature)  # (B, L)
        if mask is None:
            return per_token.mean()
        m = mask.to(per_token.dtype)
        return (per_token * m).sum() / m.sum().clamp_min(1.0)


class CELoss(nn.Module):
    """Plain cross-entropy on hard (or pseudo) labels; the 'scratch' baseline and the hard term of recipes."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, student_logits, target):
        return F.cross_entropy(student_logits, target, label_smoothing=self.label_smoothing)


# ---- recipe loss types -----------------------------------------------------------------------------

TEMPERATURE = dict(lo=0, lo_open=True)


@register_loss("ce", teacher=None, labels="required", params={"label_smoothing": number(0.0)})
def make_ce(p, s_tap, t_tap):
    return CELoss(p["label_smoothing"])


@register_loss("kd", labels="optional", params={
    "temperature": number(4.0, **TEMPERATURE), "alpha": number(0.9, lo=0, hi=1), "label_smoothing": number(0.0),
    "standardize": flag()})
def make_kd(p, s_tap, t_tap):
    return KDLoss(p["temperature"], p["alpha"], p["label_smoothing"], standardize=p["standardize"])


@register_loss("dkd", labels="required", params={
    "temperature": number(4.0, **TEMPERATURE), "alpha": number(1.0, lo=0), "beta": number(8.0, lo=0),
    "standardize": flag()})
def make_dkd(p, s_tap, t_tap):
    return DKDLoss(p["temperature"], p["alpha"], p["beta"], standardize=p["standardize"])


@register_loss("dist", params={"temperature": number(1.0, **TEMPERATURE), "beta": number(1.0, lo=0),
                               "gamma": number(1.0, lo=0)})
def make_dist(p, s_tap, t_tap):
    return DISTLoss(p["temperature"], p["beta"], p["gamma"])
