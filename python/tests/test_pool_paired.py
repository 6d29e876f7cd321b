"""scripts/pool_paired.py: pairs each method with uniform sampling at the
same budget by (folder, seed), pools folders, and refuses a seed that a
folder holds twice."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "pool_paired.py"


def write(root, name, method, budget, seed, ap):
    run = root / name
    run.mkdir(parents=True)
    summary = {"method": method, "budget": budget, "seed": seed, "primary_metric": "AP", "AP": ap}
    (run / "summary.json").write_text(json.dumps(summary))


def pool(*folders):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, folders), "--resamples", "2000"],
        capture_output=True,
        text=True,
    )


def row(out, method):
    line = next(l for l in out.splitlines() if l.startswith(f"| {method} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_pairs_by_folder_and_seed_and_pools_the_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    # Folder a: loss 0.02 above uniform on both seeds; folder b: 0.04
    # below on its one seed (and a 100% uniform run, which pairs with
    # nothing at 30%).
    for seed, ap in [(0, 0.10), (1, 0.20)]:
        write(a, f"uniform-s{seed}", "uniform", 0.3, seed, ap)
        write(a, f"loss-s{seed}", "loss", 0.3, seed, ap + 0.02)
    write(b, "uniform-s0", "uniform", 0.3, 0, 0.15)
    write(b, "loss-s0", "loss", 0.3, 0, 0.11)
    write(b, "uniform-b100-s0", "uniform", 1.0, 0, 0.30)
    one = pool(a)
    assert one.returncode == 0, one.stderr
    method, budget, pairs, delta, interval, better, above = row(one.stdout, "loss")
    assert (budget, pairs, delta, better, above) == ("30%", "2", "+0.0200", "1.00", "2/2")
    assert interval == "[+0.0200, +0.0200]"
    both = pool(a, b)
    assert both.returncode == 0, both.stderr
    _, _, pairs, delta, interval, _, above = row(both.stdout, "loss")
    # (0.02 + 0.02 − 0.04) / 3 = 0.
    assert (pairs, delta, above) == ("3", "+0.0000", "2/3")
    lo, hi = (float(x) for x in interval.strip("[]").split(","))
    assert lo < 0 < hi


def test_a_seed_twice_in_one_folder_is_an_error(tmp_path):
    write(tmp_path, "uniform-s0", "uniform", 0.3, 0, 0.1)
    write(tmp_path, "uniform-s0-again", "uniform", 0.3, 0, 0.1)
    out = pool(tmp_path)
    assert out.returncode != 0
    assert "seed 0 of uniform twice" in out.stderr
