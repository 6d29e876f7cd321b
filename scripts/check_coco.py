#!/usr/bin/env python3
"""Loads COCO annotation files with pycocotools and checks every box lies
inside its image. Used to confirm that isdet's COCO output is readable by the
reference tools: `python3 scripts/check_coco.py DIR/instances_*.json`.
Needs `pip install pycocotools`."""
import sys
import warnings

from pycocotools.coco import COCO

warnings.simplefilter("error")  # any pycocotools warning is a failure
bad = 0
for path in sys.argv[1:]:
    coco = COCO(path)
    for ann in coco.dataset["annotations"]:
        img = coco.imgs[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        if not (x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= img["width"] and y + h <= img["height"]):
            print(f"{path}: annotation {ann['id']} box {ann['bbox']} outside image {img['id']}")
            bad += 1
    print(f"{path}: {len(coco.imgs)} images, {len(coco.anns)} annotations, {len(coco.cats)} categories")
sys.exit(1 if bad else 0)
