#!/usr/bin/env python3
"""Checks the vectorised target assignment of bench/fcos_tiny.py against a
line-by-line port of crates/detector/src/assign.rs (assign_image and
ensure_one_positive, no crowd boxes) on random batches at 64 and 96 px,
with a 3 px box per image so that the at-least-one-positive rule runs.

Usage: /tmp/venv/bin/python bench/check_fcos_tiny_assign.py
"""
import math, os, random, sys

import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcos_tiny as ft

def literal(locs, boxes, labels):
    # line-by-line port of assign.rs assign_image (no crowd)
    L = len(locs); out = []
    for bx, lb in zip(boxes, labels):
        bx = bx.tolist(); lb = lb.tolist()
        owner = [None] * L
        for i in range(L):
            p = locs.points[i].tolist(); s = float(locs.stride[i]); lo, hi = float(locs.lo[i]), float(locs.hi[i])
            best = None
            for k, a in enumerate(bx):
                d = [p[0]-a[0], p[1]-a[1], a[2]-p[0], a[3]-p[1]]
                if any(v <= 0 for v in d): continue
                cx, cy = (a[0]+a[2])/2, (a[1]+a[3])/2; r = 1.5*s
                inc = p[0] > max(cx-r, a[0]) and p[0] < min(cx+r, a[2]) and p[1] > max(cy-r, a[1]) and p[1] < min(cy+r, a[3])
                m = max([0.0]+d)
                if inc and m > lo and m <= hi:
                    area = (a[2]-a[0])*(a[3]-a[1])
                    if best is None or area < best[0]: best = (area, k)
            if best: owner[i] = best[1]
        for k, a in enumerate(bx):
            if k in owner: continue
            cx, cy = (a[0]+a[2])/2, (a[1]+a[3])/2
            cand = [i for i in range(locs.n0) if owner[i] is None]
            if cand:
                i = min(cand, key=lambda q: (locs.points[q][0].item()-cx)**2 + (locs.points[q][1].item()-cy)**2)
                owner[i] = k
        labs = [-1]*L; ltrb = [[0.0]*4 for _ in range(L)]; ctr = [0.0]*L
        for i, o in enumerate(owner):
            if o is None: continue
            a = bx[o]; p = locs.points[i].tolist(); s = float(locs.stride[i])
            d = [p[0]-a[0], p[1]-a[1], a[2]-p[0], a[3]-p[1]]
            labs[i] = lb[o]; ltrb[i] = [v/s for v in d]
            dc = [max(v, 1e-2) for v in d]
            ctr[i] = math.sqrt((min(dc[0],dc[2])/max(dc[0],dc[2]))*(min(dc[1],dc[3])/max(dc[1],dc[3])))
        out.append((labs, ltrb, ctr))
    return out

for size in (64, 96):
    for seed in range(5):
        locs = ft.Locations(size, ft.STRIDES)
        boxes, labels = ft.random_boxes(16, size, 5, seed)
        # add some tiny boxes to exercise ensure_one_positive
        rng = random.Random(seed)
        for b in range(16):
            x0, y0 = rng.uniform(0, size-4), rng.uniform(0, size-4)
            boxes[b] = torch.cat([boxes[b], torch.tensor([[x0, y0, x0+3.0, y0+3.0]])])
            labels[b] = torch.cat([labels[b], torch.tensor([rng.randrange(5)])])
        lab, ltrb, ctr = ft.assign(locs, *ft.pad_boxes(boxes, labels))
        ref = literal(locs, boxes, labels)
        for b in range(16):
            assert lab[b].tolist() == ref[b][0], (size, seed, b)
            assert torch.allclose(ltrb[b], torch.tensor(ref[b][1]), atol=1e-5)
            assert torch.allclose(ctr[b], torch.tensor(ref[b][2]), atol=1e-5)
        print(size, seed, "ok, positives", int((lab >= 0).sum()))
