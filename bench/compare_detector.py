#!/usr/bin/env python3
"""Runs isdet's detector training-step bench and its PyTorch twin
(`bench/fcos_tiny.py`) one after the other with the same batch, size, steps
and threads, and prints both medians and the ratio isdet / PyTorch as JSON
(one line per round), with /proc/loadavg at the start and end of each round.

Builds nothing: it runs the release binary that `cargo xtask` runs
(`target/release/xtask`; build it first with `cargo build --release -p
xtask`), so that a source change in the checkout cannot start a rebuild in
the middle of a measurement. `--cargo` runs `cargo xtask …` instead.

Usage (from the repository root; this driver itself needs no torch):
  python3 bench/compare_detector.py [--batch 16] [--size 96] [--threads 2]
      [--steps 10] [--rounds 1] [--conv fast|winograd]
      [--python /tmp/venv/bin/python] [--cargo]

isdet's thread count: `--threads N` of the bench, which re-runs itself with
RAYON_NUM_THREADS=N (candle sizes its pool from it). PyTorch's:
torch.set_num_threads(N).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def last_json(text, what):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"{what} printed no JSON:\n{text}")


def run(cmd, what, env=None):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{what} failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
    return last_json(p.stdout, what)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1, help="pairs run back to back")
    ap.add_argument("--conv", default="fast", help="isdet's convolutions: fast or winograd")
    default_py = "/tmp/venv/bin/python" if os.path.exists("/tmp/venv/bin/python") else sys.executable
    ap.add_argument("--python", default=default_py, help="a Python with torch")
    ap.add_argument("--cargo", action="store_true", help="run `cargo xtask` (may build)")
    a = ap.parse_args()

    bench_args = [
        "bench", "train-step", "--net", "detector", "--preset", "tiny",
        "--batch", str(a.batch), "--size", str(a.size), "--steps", str(a.steps),
        "--threads", str(a.threads), "--conv", a.conv, "--json",
    ]
    if a.cargo:
        isdet_cmd = ["cargo", "xtask"] + bench_args
    else:
        exe = os.path.join(ROOT, "target", "release", "xtask")
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"{exe} is missing: run `cargo build --release -p xtask` first")
        isdet_cmd = [exe] + bench_args
    torch_cmd = [
        a.python, "-W", "ignore", os.path.join(ROOT, "bench", "fcos_tiny.py"),
        "--batch", str(a.batch), "--size", str(a.size), "--steps", str(a.steps),
        "--threads", str(a.threads), "--json",
    ]
    env = dict(os.environ)
    env.pop("CANDLE_NUM_THREADS", None)

    for r in range(a.rounds):
        start = loadavg()
        isdet = run(isdet_cmd, "isdet bench", env)
        mid = loadavg()
        torch_ = run(torch_cmd, "PyTorch twin", env)
        end = loadavg()
        ratio = isdet["train_step_ms_median"] / torch_["train_step_ms_median"]
        print(json.dumps({
            "round": r + 1,
            "batch": a.batch,
            "size": a.size,
            "threads": a.threads,
            "steps": a.steps,
            "loadavg_start": start,
            "loadavg_between": mid,
            "loadavg_end": end,
            "isdet": {
                "train_step_ms_median": round(isdet["train_step_ms_median"], 1),
                "parameters": isdet["parameters"],
                "threads": isdet["threads"],
                "conv": isdet["conv"],
            },
            "pytorch": {
                "train_step_ms_median": round(torch_["train_step_ms_median"], 1),
                "parameters": torch_["parameters"],
                "threads": torch_["threads"],
                "torch": torch_["torch"],
                "assign": torch_["assign"],
            },
            "ratio_isdet_over_pytorch": round(ratio, 2),
        }), flush=True)


if __name__ == "__main__":
    main()
