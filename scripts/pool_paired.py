#!/usr/bin/env python3
"""Pools the paired comparisons of several run folders of one grid: each
method's final metric minus uniform sampling's at the same budget, paired
by (folder, seed), with a 95% percentile-bootstrap interval of the mean
difference and P(better) (the share of resamples whose mean is above 0),
as `cargo xtask report` computes them for one folder.

Folders that trained the same seeds under different arithmetic (a kernel
that sums in another order moves every run: docs/results/README.md) are
further draws of the same comparison; pooling them narrows what one
arithmetic's seeds leave open. A seed's runs under two arithmetics share
its initial weights and data order, so they are not independent: the
bootstrap resamples seeds, each with all of its pairs (a cluster
bootstrap), not pairs. Reads only the runs' `summary.json`.

    python3 scripts/pool_paired.py docs/results/synth-main-12seeds \\
        docs/results/synth-main-12seeds-ce9a301 [--resamples 10000] [--seed 0]
"""
import argparse
import json
import os
import random
import statistics
import sys


def summaries(folder):
    """Every run's summary under `folder` (up to three levels down)."""
    for root, dirs, files in os.walk(folder):
        if root[len(folder):].count(os.sep) > 3:
            dirs[:] = []
            continue
        if "summary.json" in files:
            with open(os.path.join(root, "summary.json")) as f:
                yield root, json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--baseline", default="uniform")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    # (method, budget) -> {(folder, seed): metric}
    runs = {}
    for folder in a.folders:
        for path, s in summaries(folder):
            metric = s.get("primary_metric", "AP")
            if metric not in s:
                sys.exit(f"{path}/summary.json: no {metric!r}")
            key = (folder, s["seed"])
            group = runs.setdefault((s["method"], s["budget"]), {})
            if key in group:
                sys.exit(f"{path}: seed {s['seed']} of {s['method']} twice in {folder}")
            group[key] = s[metric]
    rng = random.Random(a.seed)
    rows = []
    for (method, budget), group in sorted(runs.items()):
        base = runs.get((a.baseline, budget))
        if method == a.baseline or base is None:
            continue
        pairs = sorted(set(group) & set(base))
        if not pairs:
            continue
        d = [group[k] - base[k] for k in pairs]
        # Seed -> its differences, one per folder that has the pair.
        by_seed = {}
        for k, x in zip(pairs, d):
            by_seed.setdefault(k[1], []).append(x)
        clusters = [by_seed[seed] for seed in sorted(by_seed)]
        means = []
        for _ in range(a.resamples):
            drawn = [x for c in rng.choices(clusters, k=len(clusters)) for x in c]
            means.append(statistics.fmean(drawn))
        means.sort()
        lo = means[int(0.025 * (a.resamples - 1))]
        hi = means[int(0.975 * (a.resamples - 1))]
        better = sum(m > 0 for m in means) / a.resamples
        above = sum(x > 0 for x in d)
        rows.append((method, budget, len(d), statistics.fmean(d), lo, hi, better, above))
    print(f"pairs by (folder, seed) over {len(a.folders)} folder(s); seeds resampled "
          f"as clusters, {a.resamples} resamples, seed {a.seed}")
    print("| method | budget | pairs | Δ final | 95% interval | P(better) | above |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method, budget, n, mean, lo, hi, better, above in rows:
        print(f"| {method} | {budget:.0%} | {n} | {mean:+.4f} | [{lo:+.4f}, {hi:+.4f}] "
              f"| {better:.2f} | {above}/{n} |")


if __name__ == "__main__":
    main()
