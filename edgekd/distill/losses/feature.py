"""Feature losses: FitNets hints, attention transfer, relational KD and cosine alignment.

Each takes student tensors first, teacher tensors second (detached here). The recipe types they back
are registered at the end; they read layer pairs or one embedding per model (see registry.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.distill.registry import number, register_loss
from edgekd.errors import EdgeKDError

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


# ---- recipe loss types -----------------------------------------------------------------------------

@register_loss("hint", student="pairs", teacher="features")
def make_hint(p, s_tap, t_tap):
    return HintLoss(s_tap.shape, t_tap.shape)


def _attention_cache(p):
    """AT compares attention maps only: cache the teacher's H*W map instead of its C*H*W feature."""
    pw = float(p["p"])
    return f"at{pw:g}", lambda f: attention_map(f, pw)


@register_loss("at", student="pairs", teacher="features", params={"p": number(2.0)}, cache_teacher=_attention_cache)
def make_at(p, s_tap, t_tap):
    if len(s_tap.shape) != 3 or len(t_tap.shape) != 3:
        raise EdgeKDError(f"attention transfer needs feature maps; {s_tap.path} -> {s_tap.shape}, "
                          f"{t_tap.path} -> {t_tap.shape}")
    return AttentionTransferLoss(float(p["p"]))


@register_loss("rkd", student="embedding", teacher="features",
               params={"distance_weight": number(25.0), "angle_weight": number(50.0)})
def make_rkd(p, s_tap, t_tap):
    return RKDLoss(p["distance_weight"], p["angle_weight"])


@register_loss("cosine", student="embedding", teacher="features")
def make_cosine(p, s_tap, t_tap):
    return CosineAlignmentLoss(s_tap.numel, t_tap.numel)
