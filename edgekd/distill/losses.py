"""Distillation losses as plain nn.Modules on tensors, reusable outside the engine (prune, hf).

Each takes student tensors first, teacher tensors second. Teacher tensors are treated as constants
(detached here, so a caller cannot leak gradients into the teacher by mistake).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def _regressor(s_shape: tuple[int, ...], t_shape: tuple[int, ...]) -> nn.Module:
    """1x1 conv for feature maps, linear for vectors/tokens; identity when shapes already agree."""
    if s_shape == t_shape:
        return nn.Identity()
    if len(s_shape) == 3 and len(t_shape) == 3:  # (C, H, W)
        return nn.Conv2d(s_shape[0], t_shape[0], kernel_size=1, bias=False)
    return nn.Linear(s_shape[-1], t_shape[-1], bias=False)


def _match_spatial(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if x.shape[-2:] == hw:
        return x
    return F.adaptive_avg_pool2d(x, hw) if x.shape[-2] >= hw[0] else F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


class HintLoss(nn.Module):
    """FitNets (Romero et al. 2015): MSE between a regressed student feature and the teacher's.

    Give the per-sample shapes (without batch) to create the regressor up front, so the optimizer
    sees its parameters; spatial sizes that differ are matched by pooling/interpolating the student.
    """

    def __init__(self, student_shape=None, teacher_shape=None):
        super().__init__()
        self.regressor: nn.Module = nn.Identity()
        if student_shape is not None and teacher_shape is not None:
            s, t = tuple(student_shape), tuple(teacher_shape)
            self.regressor = _regressor((s[0], *t[1:]) if len(s) == 3 and len(t) == 3 else s, t)

    def forward(self, student_feat, teacher_feat):
        s = student_feat
        if s.dim() == 4 and teacher_feat.dim() == 4:
            s = _match_spatial(s, tuple(teacher_feat.shape[-2:]))
        s = self.regressor(s)
        return F.mse_loss(s, teacher_feat.detach().to(s.dtype))


def attention_map(feat: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Zagoruyko & Komodakis 2017: channel mean of |f|^p, flattened and L2-normalised -> (N, H*W)."""
    am = feat.abs().pow(p).mean(1)
    return F.normalize(am.flatten(1), dim=1)


class AttentionTransferLoss(nn.Module):
    """Squared distance between normalised spatial attention maps (mean over batch and positions).

    Teacher input may be a feature map (N, C, H, W) or a precomputed map (N, H*W) from
    `reduce_teacher` (what the engine caches: H*W floats instead of C*H*W).
    """

    def __init__(self, p: float = 2.0):
        super().__init__()
        self.p = float(p)

    def reduce_teacher(self, feat: torch.Tensor) -> torch.Tensor:
        return attention_map(feat, self.p) if feat.dim() == 4 else feat

    def forward(self, student_feat, teacher_feat):
        t = self.reduce_teacher(teacher_feat.detach())
        s = student_feat
        if s.dim() == 4:
            side = int(round(t.shape[1] ** 0.5))
            hw = (side, side) if side * side == t.shape[1] else None
            if hw is None and teacher_feat.dim() == 4:
                hw = tuple(teacher_feat.shape[-2:])
            if hw is not None and s.shape[-2:] != hw:
                s = _match_spatial(s, hw)
            s = attention_map(s, self.p)
        return (s - t.to(s.dtype)).pow(2).mean()


def _pdist(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    sq = e.pow(2).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * e @ e.t()).clamp_min(eps).sqrt()
    d = d.clone()
    d.fill_diagonal_(0.0)
    return d


class RKDLoss(nn.Module):
    """Relational KD (Park et al. 2019): distance-wise and angle-wise structure of a batch's embeddings.

    Distances are normalised by their mean (so the student and teacher embedding scales and widths
    may differ); both terms use smooth L1 (Huber) as in the paper.
    """

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0):
        super().__init__()
        self.distance_weight, self.angle_weight = float(distance_weight), float(angle_weight)

    @staticmethod
    def distance_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            td = _pdist(t)
            td = td / td[td > 0].mean()
        sd = _pdist(s)
        sd = sd / sd[sd > 0].mean()
        return F.smooth_l1_loss(sd, td)

    @staticmethod
    def angle_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            tv = F.normalize(t[None, :, :] - t[:, None, :], p=2, dim=2)
            ta = torch.bmm(tv, tv.transpose(1, 2)).flatten()
        sv = F.normalize(s[None, :, :] - s[:, None, :], p=2, dim=2)
        sa = torch.bmm(sv, sv.transpose(1, 2)).flatten()
        return F.smooth_l1_loss(sa, ta)

    def forward(self, student_emb, teacher_emb):
        s = student_emb.flatten(1)
        t = teacher_emb.detach().flatten(1).to(s.dtype)
        loss = s.new_zeros(())
        if s.shape[0] < 2:
            return loss
        if self.distance_weight:
            loss = loss + self.distance_weight * self.distance_loss(s, t)
        if self.angle_weight and s.shape[0] >= 3:
            loss = loss + self.angle_weight * self.angle_loss(s, t)
        return loss


class CosineAlignmentLoss(nn.Module):
    """DistilBERT's cosine loss: 1 - cos(student_h, teacher_h) per vector (token or sample), masked mean.

    Hidden sizes that differ get a linear projector (give the sizes so it is created up front).
    """

    def __init__(self, student_dim: int | None = None, teacher_dim: int | None = None):
        super().__init__()
        self.proj: nn.Module = nn.Identity()
        if student_dim and teacher_dim and student_dim != teacher_dim:
            self.proj = nn.Linear(student_dim, teacher_dim, bias=False)

    def forward(self, student_h, teacher_h, mask=None):
        s, t = student_h, teacher_h.detach()
        if s.dim() == 4:  # feature maps: compare per sample
            s, t = s.flatten(1), t.flatten(1)
        s = self.proj(s)
        cos = F.cosine_similarity(s, t.to(s.dtype), dim=-1)
        loss = 1.0 - cos
        if mask is None:
            return loss.mean()
        m = mask.to(loss.dtype)
        return (loss * m).sum() / m.sum().clamp_min(1.0)


class CELoss(nn.Module):
    """Plain cross-entropy on hard (or pseudo) labels; the 'scratch' baseline and the hard term of recipes."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = float(label_smoothing)

    def forward(self, student_logits, target):
        return F.cross_entropy(student_logits, target, label_smoothing=self.label_smoothing)
