#!/usr/bin/env python3
"""Runs isdet's convnet-ref training-step bench and its PyTorch twin
(`../shared/bench/convnet_ref.py`) back to back at several batch sizes,
image sizes and widths, for several rounds, and prints one JSON line per
pair (both medians, the ratio isdet / PyTorch, /proc/loadavg before and
after) and then one summary line per setting (medians over the rounds, the
median ratio and its range).

Builds nothing: it runs `target/release/xtask` (build it first with
`cargo build --release -p xtask`), so that a change in the checkout cannot
start a rebuild in the middle of a measurement.

Usage (from the repository root; this driver itself needs no torch):
  python3 bench/compare_convnet.py [--threads 2] [--rounds 5] [--steps 20]
      [--settings 32x64:16,32,64,128 16x64:16,32,64,128 ...]
      [--python /tmp/venv/bin/python]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWIN = os.path.join(os.path.dirname(ROOT), "shared", "bench", "convnet_ref.py")
DEFAULT_SETTINGS = [
    "32x64:16,32,64,128",
    "16x64:16,32,64,128",
    "64x64:16,32,64,128",
    "32x32:32,64,128,256",
    "8x128:16,32,64,128",
]


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def last_json(cmd):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    for line in reversed(p.stdout.splitlines()):
        if line.strip().startswith("{"):
            return json.loads(line)
    raise SystemExit(f"no JSON from {' '.join(cmd)}:\n{p.stdout}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, help="BATCHxSIZE:WIDTHS")
    default_py = "/tmp/venv/bin/python" if os.path.exists("/tmp/venv/bin/python") else sys.executable
    ap.add_argument("--python", default=default_py, help="a Python with torch")
    ap.add_argument("--twin", default=TWIN, help="path of convnet_ref.py")
    a = ap.parse_args()
    xtask = os.path.join(ROOT, "target", "release", "xtask")
    if not os.path.exists(xtask):
        raise SystemExit(f"{xtask} is missing: cargo build --release -p xtask")
    results = {}
    for r in range(a.rounds):
        for setting in a.settings:
            shape, widths = setting.split(":")
            batch, size = shape.split("x")
            common = ["--batch", batch, "--size", size, "--channels", widths, "--steps", str(a.steps)]
            l0 = loadavg()
            isdet = last_json([xtask, "bench", "train-step", "--net", "convnet-ref", *common,
                               "--conv", "fast", "--threads", str(a.threads), "--json"])["train_step_ms_median"]
            torch = last_json([a.python, a.twin, *common, "--threads", str(a.threads)])["median_ms"]
            results.setdefault(setting, []).append((isdet, torch))
            print(json.dumps({"round": r + 1, "setting": setting, "threads": a.threads,
                              "isdet_ms": round(isdet, 1), "pytorch_ms": round(torch, 1),
                              "ratio": round(isdet / torch, 2), "load": [l0, loadavg()]}), flush=True)
    for setting, pairs in results.items():
        ratios = [i / t for i, t in pairs]
        print(json.dumps({"setting": setting, "threads": a.threads, "rounds": len(pairs),
                          "isdet_median_ms": round(statistics.median(i for i, _ in pairs), 1),
                          "pytorch_median_ms": round(statistics.median(t for _, t in pairs), 1),
                          "ratio_median": round(statistics.median(ratios), 2),
                          "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)]}))


if __name__ == "__main__":
    main()
