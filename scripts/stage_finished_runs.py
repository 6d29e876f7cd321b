#!/usr/bin/env python3
"""Stages the small records of every finished run under the given run
folders for a commit: `config.json`, `metrics.jsonl`, `summary.json` and,
where it exists, `sampling.json` (`cargo xtask sampling` writes it for runs
made before the trainer did),
with the machine-specific `val_annotations` path taken out of the summary
(reports do not read it). Unfinished runs (no `summary.json`) are left
alone. Prints one line per staged run.

    python3 scripts/stage_finished_runs.py docs/results/detection-study/runs
"""
import json
import os
import subprocess
import sys

for root in sys.argv[1:]:
    for name in sorted(os.listdir(root)):
        run = os.path.join(root, name)
        summary_path = os.path.join(run, "summary.json")
        if not os.path.isfile(summary_path):
            continue
        with open(summary_path) as f:
            summary = json.load(f)
        if summary.pop("val_annotations", None) is not None:
            tmp = summary_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(summary, f, separators=(",", ":"))
            os.replace(tmp, summary_path)
        names = ["config.json", "metrics.jsonl", "summary.json", "sampling.json"]
        files = [os.path.join(run, f) for f in names if os.path.isfile(os.path.join(run, f))]
        subprocess.run(["git", "add", "--", *files], check=True)
        metric = summary.get("primary_metric", "AP")
        print(f"{run}: {metric} {summary.get(metric, float('nan')):.4f}, {summary.get('steps')} steps")
