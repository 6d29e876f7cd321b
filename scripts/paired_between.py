#!/usr/bin/env python3
"""Paired final-AP differences between two methods of a study, by seed.

`cargo xtask report` pairs every method against uniform; this pairs any two
(e.g. the detection study's first claim, uncertainty against loss), with a
95% percentile bootstrap over seeds (10,000 resamples, seed 0).

    python3 scripts/paired_between.py docs/results/detection-study/runs \
        entropy loss --budget 100 --seeds 0-4
"""

import argparse
import json
import random
import sys
from pathlib import Path


def final(runs: Path, method: str, budget: int, seed: int, metric: str) -> float:
    path = runs / f"{method}-b{budget}-s{seed}" / "summary.json"
    try:
        return float(json.loads(path.read_text())[metric])
    except FileNotFoundError:
        sys.exit(f"{path}: no such run (not finished?)")
    except (KeyError, ValueError) as e:
        sys.exit(f"{path}: no {metric!r} ({e})")


def bootstrap(diffs: list[float], resamples: int, seed: int) -> tuple[float, float, float]:
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(rng.choice(diffs) for _ in range(n)) / n for _ in range(resamples))
    lo, hi = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    return sum(diffs) / n, lo, hi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("method")
    ap.add_argument("other")
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--seeds", default="0-4", help="a range a-b or a list 0,1,2")
    ap.add_argument("--metric", default="AP")
    ap.add_argument("--resamples", type=int, default=10000)
    args = ap.parse_args()
    if "-" in args.seeds:
        a, b = args.seeds.split("-")
        seeds = list(range(int(a), int(b) + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    diffs = [
        final(args.runs, args.method, args.budget, s, args.metric)
        - final(args.runs, args.other, args.budget, s, args.metric)
        for s in seeds
    ]
    mean, lo, hi = bootstrap(diffs, args.resamples, 0)
    per_seed = ", ".join(f"{d:+.4f}" for d in diffs)
    print(f"{args.method} - {args.other} @ {args.budget}%: {mean:+.4f} [{lo:+.4f}, {hi:+.4f}] ({per_seed})")


if __name__ == "__main__":
    main()
