#!/usr/bin/env python3
"""PyTorch twin of isdet's default detector (FCOS-style, preset `tiny`) and of
its training-step benchmark (`cargo xtask bench train-step --net detector`).

The network, layer by layer (crates/detector/src/fcos.rs, layers.rs):

- ConvNorm = bias-free k×k conv (padding k//2) + norm (+ ReLU when marked).
  Backbone and pyramid norm: BatchNorm (batch statistics in training, eps
  1e-5, momentum 0.1). Head towers: GroupNorm with 8 groups (the largest
  divisor of the channels not above 8), eps 1e-5.
- stem: ConvNorm 3×3, 3→16, stride 2, ReLU.
- 4 stages, one BasicBlock each, widths 24, 48, 64, 96, stride 2 each
  (strides 4, 8, 16, 32): a = ConvNorm 3×3 (stride 2) + ReLU, b = ConvNorm
  3×3 (no ReLU), shortcut = ConvNorm 1×1 stride 2 (no ReLU); out = ReLU(b +
  shortcut).
- pyramid from stages 1..3 (48, 64, 96 channels; strides 8, 16, 32): lateral
  1×1 conv with bias → 48; from the top down p_i = lateral_i + nearest
  upsample(p_{i+1}) (the pre-smoothing sum); output_i = ConvNorm 3×3 48→48 +
  BatchNorm + ReLU.
- shared head on every level: cls tower and reg tower, 2 × (ConvNorm 3×3
  48→48, GroupNorm(8), ReLU) each; cls_pred 3×3 48→C (bias, prior 0.01) on
  the cls tower; reg_pred 3×3 48→4 on the reg tower, times a learnable
  per-level scale (init 1), then ReLU; ctr_pred 3×3 48→1 on the reg tower.
  Outputs flattened to [B, H·W, ·] and concatenated finest level first.

Initialisation as isdet: Kaiming-normal (std sqrt(2/fan_in)) convs, N(0, 0.01²)
prediction convs, zero lateral biases, norm scale 1 / shift 0.

Targets (crates/detector/src/assign.rs), a port done in torch ops batched
over the images, inside the timed step, as the Rust bench assigns inside its
step (`--assign outside` assigns once before the loop; the port costs about
3 ms of a step at batch 16; bench/check_fcos_tiny_assign.py checks it against
a line-by-line port of the Rust code): locations at
(j·s + s/2, i·s + s/2); a location is positive for a box when inside the box,
inside the centre region (1.5 strides around the centre, clipped to the box)
and its largest side distance falls in its level's range (S/8, S/4 split
points for 3 levels, first from 0, last open-ended); the smallest-area box
wins; every box left without a positive gets the free finest-level location
nearest its centre. Regression targets (l, t, r, b)/stride, centre-ness from
distances floored at 0.01. (No crowd boxes: synth scenes have none, so the
IGNORE label never occurs; the loss still carries the `valid` mask.)

Loss (crates/detector/src/loss.rs): sigmoid focal loss (α 0.25, γ 2) summed
over classes and locations / positives; GIoU loss of the boxes (−l, −t, r, b)
against the target's, weighted by the centre-ness target on positives, /
the batch's centre-ness sum; centre-ness BCE-with-logits on positives /
positives. All dense over every location, as isdet computes them.

Optimiser: SGD lr 0.01, momentum 0.9, no Nesterov, weight decay 1e-4 on
convolution weights only (not on biases, norm parameters or scales).

The batch: B random images (N(0,1) pixels) and, per image, 1–8 random boxes
of 6–48 px (scaled by S/96) with classes 0–4, drawn from a fixed seed like
the synth scenes' object sizes and counts (not the same pixels or boxes as
isdet's synth batch; the step's cost does not depend on them).

Timing as the Rust bench: 2 untimed warm-up steps, then --steps timed steps
(default 10); a step is assignment + forward + loss + backward + optimiser
step + reading the loss value; the median over the timed steps.

Usage: fcos_tiny.py [--batch 16] [--size 96] [--steps 10] [--threads 2]
                    [--classes 5] [--assign inside|outside] [--json]
"""
import argparse
import json
import math
import random
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

WIDTHS = [16, 24, 48, 64, 96]
BLOCKS = [1, 1, 1, 1]
FPN = 48
HEAD_CONVS = 2
HEAD_GROUPS = 8
CENTER_RADIUS = 1.5
STRIDES = [8, 16, 32]
FOCAL_ALPHA, FOCAL_GAMMA, GIOU_EPS = 0.25, 2.0, 1e-7
IGNORE, BACKGROUND = -2, -1


def groups_for(channels, g):
    return next(d for d in range(max(g, 1), 0, -1) if channels % d == 0)


class ConvNorm(nn.Module):
    """Bias-free conv + BatchNorm/GroupNorm (+ ReLU)."""

    def __init__(self, cin, cout, k, stride, norm, relu):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
        nn.init.normal_(self.conv.weight, 0.0, math.sqrt(2.0 / (cin * k * k)))
        if norm == "batch":
            self.norm = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        else:
            self.norm = nn.GroupNorm(groups_for(cout, norm), cout, eps=1e-5)
        self.relu = relu

    def forward(self, x):
        y = self.norm(self.conv(x))
        return F.relu(y) if self.relu else y


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        self.short = (
            ConvNorm(cin, cout, 1, stride, norm, False) if cin != cout or stride != 1 else None
        )
        self.a = ConvNorm(cin, cout, 3, stride, norm, True)
        self.b = ConvNorm(cout, cout, 3, 1, norm, False)

    def forward(self, x):
        y = self.b(self.a(x))
        s = self.short(x) if self.short is not None else x
        return F.relu(y + s)


def conv_normal(cin, cout, k, std, bias):
    c = nn.Conv2d(cin, cout, k, padding=k // 2, bias=True)
    nn.init.normal_(c.weight, 0.0, std)
    nn.init.constant_(c.bias, bias)
    return c


def flatten_level(t):
    b, c, h, w = t.shape
    return t.permute(0, 2, 3, 1).reshape(b, h * w, c)


class FcosTiny(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        w, f = WIDTHS, FPN
        self.stem = ConvNorm(3, w[0], 3, 2, "batch", True)
        self.stages = nn.ModuleList()
        for s in range(4):
            blocks = []
            for k in range(BLOCKS[s]):
                cin, stride = (w[s], 2) if k == 0 else (w[s + 1], 1)
                blocks.append(BasicBlock(cin, w[s + 1], stride, "batch"))
            self.stages.append(nn.Sequential(*blocks))
        self.lateral = nn.ModuleList()
        self.output = nn.ModuleList()
        for c in w[2:]:
            lat = nn.Conv2d(c, f, 1, bias=True)
            nn.init.normal_(lat.weight, 0.0, math.sqrt(2.0 / c))
            nn.init.zeros_(lat.bias)
            self.lateral.append(lat)
            self.output.append(ConvNorm(f, f, 3, 1, "batch", True))
        self.cls_tower = nn.Sequential(
            *[ConvNorm(f, f, 3, 1, HEAD_GROUPS, True) for _ in range(HEAD_CONVS)]
        )
        self.reg_tower = nn.Sequential(
            *[ConvNorm(f, f, 3, 1, HEAD_GROUPS, True) for _ in range(HEAD_CONVS)]
        )
        prior = -math.log((1.0 - 0.01) / 0.01)
        self.cls_pred = conv_normal(f, num_classes, 3, 0.01, prior)
        self.reg_pred = conv_normal(f, 4, 3, 0.01, 0.0)
        self.ctr_pred = conv_normal(f, 1, 3, 0.01, 0.0)
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(1)) for _ in range(3)])

    def forward(self, x):
        y = self.stem(x)
        feats = []
        for s, stage in enumerate(self.stages):
            y = stage(y)
            if s >= 1:
                feats.append(y)
        out = [None] * len(feats)
        top = None
        for i in reversed(range(len(feats))):
            p = self.lateral[i](feats[i])
            if top is not None:
                p = p + F.interpolate(top, size=p.shape[-2:], mode="nearest")
            top = p
            out[i] = self.output[i](p)
        cls, reg, ctr = [], [], []
        for level, p in enumerate(out):
            c = self.cls_tower(p)
            r = self.reg_tower(p)
            cls.append(flatten_level(self.cls_pred(c)))
            reg.append(flatten_level(F.relu(self.reg_pred(r) * self.scales[level])))
            ctr.append(flatten_level(self.ctr_pred(r)).squeeze(2))
        return torch.cat(cls, 1), torch.cat(reg, 1), torch.cat(ctr, 1)


class Locations:
    """Every location, finest level first, row-major; per-location stride and
    level range (assign.rs `Locations::new`)."""

    def __init__(self, size, strides):
        n = len(strides)
        pts, st, lo, hi, self.n0 = [], [], [], [], None
        for k, s in enumerate(strides):
            h = size // s
            hi_k = math.inf if k + 1 == n else size / float(1 << (n - k))
            lo_k = 0.0 if k == 0 else size / float(1 << (n - k + 1))
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij")
            pts.append(torch.stack([xs.reshape(-1) * s + s / 2.0, ys.reshape(-1) * s + s / 2.0], 1))
            st += [float(s)] * (h * h)
            lo += [lo_k] * (h * h)
            hi += [hi_k] * (h * h)
            if self.n0 is None:
                self.n0 = h * h
        self.points = torch.cat(pts).float()
        self.stride = torch.tensor(st)
        self.lo = torch.tensor(lo)
        self.hi = torch.tensor(hi)

    def __len__(self):
        return self.points.shape[0]


def pad_boxes(boxes, labels):
    """Per-image box lists → padded [B, N, 4] boxes, [B, N] labels and a
    [B, N] mask of real boxes (done once, outside the step)."""
    B, N = len(boxes), max(1, max(b.shape[0] for b in boxes))
    bx = torch.zeros(B, N, 4)
    lb = torch.zeros(B, N, dtype=torch.long)
    mask = torch.zeros(B, N, dtype=torch.bool)
    for i, (b, l) in enumerate(zip(boxes, labels)):
        bx[i, : b.shape[0]] = b
        lb[i, : b.shape[0]] = l
        mask[i, : b.shape[0]] = True
    return bx, lb, mask


def assign(locs, bx, lb, mask):
    """FCOS targets (assign.rs `assign`) for a batch, batched over images:
    `bx` [B, N, 4] boxes (x0, y0, x1, y1) in input pixels, `lb` [B, N]
    class indices, `mask` [B, N] real boxes. No crowd boxes."""
    B, N = mask.shape
    L = len(locs)
    px = locs.points[None, :, 0:1]  # [1, L, 1]
    py = locs.points[None, :, 1:2]
    r = (CENTER_RADIUS * locs.stride)[None, :, None]
    x0, y0, x1, y1 = (bx[:, None, :, j] for j in range(4))  # [B, 1, N]
    d = torch.stack([px - x0, py - y0, x1 - px, y1 - py], 3)  # [B, L, N, 4]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ok = (
        (d > 0).all(3)
        & mask[:, None, :]
        & (px > torch.maximum(cx - r, x0))
        & (px < torch.minimum(cx + r, x1))
        & (py > torch.maximum(cy - r, y0))
        & (py < torch.minimum(cy + r, y1))
    )
    m = d.clamp(min=0).amax(3)
    ok &= (m > locs.lo[None, :, None]) & (m <= locs.hi[None, :, None])
    area = torch.where(ok, ((x1 - x0) * (y1 - y0)).expand(B, L, N), math.inf)
    best = area.argmin(2)  # the first smallest box, as the strict `<` in Rust
    owner = torch.where(ok.any(2), best, -1)  # [B, L]
    # ensure_one_positive: each box without a positive, in order, takes the
    # free finest-level location nearest its centre.
    has = (owner[:, :, None] == torch.arange(N)).any(1)  # [B, N]
    missing = torch.nonzero(mask & ~has).tolist()
    if missing:
        p0 = locs.points[: locs.n0]
        bcx, bcy = (bx[..., 0] + bx[..., 2]) / 2, (bx[..., 1] + bx[..., 3]) / 2
        for b, k in missing:
            dist = (p0[:, 0] - bcx[b, k]) ** 2 + (p0[:, 1] - bcy[b, k]) ** 2
            dist = torch.where(owner[b, : locs.n0] < 0, dist, math.inf)
            i = int(dist.argmin())
            if math.isfinite(float(dist[i])):
                owner[b, i] = k
    pos = owner >= 0
    k = owner.clamp(min=0)
    dd = torch.gather(d, 2, k[:, :, None, None].expand(B, L, 1, 4)).squeeze(2)  # [B, L, 4]
    labels = torch.where(pos, torch.gather(lb, 1, k), BACKGROUND)
    ltrb = torch.where(pos[..., None], dd / locs.stride[None, :, None], 0.0)
    dc = dd.clamp(min=1e-2)
    ctr = torch.sqrt(
        (torch.minimum(dc[..., 0], dc[..., 2]) / torch.maximum(dc[..., 0], dc[..., 2]))
        * (torch.minimum(dc[..., 1], dc[..., 3]) / torch.maximum(dc[..., 1], dc[..., 3]))
    )
    return labels, ltrb, torch.where(pos, ctr, 0.0)


def giou_loss(pred, target):
    x1, y1, x2, y2 = pred.unbind(-1)
    x1g, y1g, x2g, y2g = target.unbind(-1)
    inter = (torch.minimum(x2, x2g) - torch.maximum(x1, x1g)).relu() * (
        torch.minimum(y2, y2g) - torch.maximum(y1, y1g)
    ).relu()
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + GIOU_EPS)
    area_c = (torch.maximum(x2, x2g) - torch.minimum(x1, x1g)) * (
        torch.maximum(y2, y2g) - torch.minimum(y1, y1g)
    )
    return 1 - (iou - (area_c - union) / (area_c + GIOU_EPS))


def fcos_loss(cls_logits, ltrb, ctr_logits, labels, ltrb_t, ctr_t):
    """loss.rs `fcos_loss` with no per-image weights: the objective, and the
    detached per-image sums and probabilities isdet also produces."""
    B, L, C = cls_logits.shape
    valid = (labels != IGNORE).float()
    pos = labels >= 0
    pos_f = pos.float()
    onehot = F.one_hot(labels.clamp(min=0), C).float() * pos_f[..., None]
    reg_target = torch.where(
        pos[..., None], torch.cat([-ltrb_t[..., :2], ltrb_t[..., 2:]], 2), torch.ones(B, L, 4)
    )

    p = torch.sigmoid(cls_logits)
    ce = F.binary_cross_entropy_with_logits(cls_logits, onehot, reduction="none")
    p_t = p * onehot + (1 - p) * (1 - onehot)
    alpha_t = FOCAL_ALPHA * onehot + (1 - FOCAL_ALPHA) * (1 - onehot)
    focal = ce * (1 - p_t).clamp(0, 1) ** FOCAL_GAMMA * alpha_t
    cls_raw = (focal.sum(-1) * valid).sum(1)

    pred_box = torch.cat([-ltrb[..., :2], ltrb[..., 2:]], 2)
    reg_raw = (giou_loss(pred_box, reg_target) * (ctr_t * pos_f)).sum(1)
    ctr_raw = (
        F.binary_cross_entropy_with_logits(ctr_logits, ctr_t, reduction="none") * pos_f
    ).sum(1)

    n_pos = max(float(pos.sum()), 1.0)
    n_ctr = max(float(ctr_t.sum()), 1e-6)
    objective = cls_raw.sum() / n_pos + reg_raw.sum() / n_ctr + ctr_raw.sum() / n_pos
    raw = torch.stack([cls_raw, reg_raw, ctr_raw], 1).detach().tolist()
    probs = torch.sigmoid(cls_logits.detach())
    return objective, raw, probs


def random_boxes(batch, size, classes, seed):
    """1–8 boxes of 6–48 px per 96 px image (scaled to `size`), like the
    synth scenes' object counts and sizes."""
    rng = random.Random(seed)
    scale = size / 96.0
    boxes, labels = [], []
    for _ in range(batch):
        n = rng.randint(1, 8)
        bx = []
        for _ in range(n):
            w, h = rng.uniform(6, 48) * scale, rng.uniform(6, 48) * scale
            x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
            bx.append([x0, y0, x0 + w, y0 + h])
        boxes.append(torch.tensor(bx))
        labels.append(torch.tensor([rng.randrange(classes) for _ in range(n)]))
    return boxes, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--assign", choices=["inside", "outside"], default="inside",
                    help="assign targets inside the timed step (as isdet) or once before")
    ap.add_argument("--json", action="store_true", help="print one JSON line only")
    a = ap.parse_args()
    if a.size % 32:
        ap.error("--size must be a multiple of 32")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    net = FcosTiny(a.classes)
    net.train()
    decay = [p for n, p in net.named_parameters() if n.endswith("weight") and p.dim() == 4]
    ids = {id(p) for p in decay}
    rest = [p for p in net.parameters() if id(p) not in ids]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}],
        lr=0.01, momentum=0.9, nesterov=False,
    )
    params = sum(p.numel() for p in net.parameters())
    x = torch.randn(a.batch, 3, a.size, a.size)
    locs = Locations(a.size, STRIDES)
    padded = pad_boxes(*random_boxes(a.batch, a.size, a.classes, seed=0))
    fixed = assign(locs, *padded) if a.assign == "outside" else None

    times = []
    for s in range(a.steps + 2):
        t0 = time.perf_counter()
        targets = fixed if fixed is not None else assign(locs, *padded)
        cls, reg, ctr = net(x)
        loss, _raw, _probs = fcos_loss(cls, reg, ctr, *targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            raise SystemExit(f"step {s}: loss is {value}")
        if s >= 2:
            times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    report = {
        "net": "fcos-tiny-pytorch",
        "torch": torch.__version__,
        "batch": a.batch,
        "size": a.size,
        "parameters": params,
        "threads": torch.get_num_threads(),
        "steps": a.steps,
        "assign": a.assign,
        "positives": int((targets[0] >= 0).sum()),
        "train_step_ms_median": med,
        "train_step_ms_min": min(times),
        "train_images_per_s": a.batch * 1e3 / med,
    }
    if a.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
