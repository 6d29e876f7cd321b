#!/usr/bin/env python3
"""Scores a COCO results file against a ground-truth file with pycocotools
and prints the 12 statistics as JSON under isdet's names — the reference
that isdet's own evaluation must match:

    python3 scripts/coco_eval.py RUN/val_annotations.json RUN/predictions.json

Needs `pip install pycocotools`."""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2]) if json.load(open(sys.argv[2])) else COCO()
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
print(json.dumps(dict(zip(NAMES, [float(s) for s in ev.stats]))))
