#!/usr/bin/env python3
"""Regenerates the broken-file corpus (needs Pillow). Run from this folder."""
import io
import json

from PIL import Image

# A valid 32x24 RGB PNG and a valid 32x24 JPEG.
img = Image.new("RGB", (32, 24), (10, 200, 30))
img.save("images/ok.png")
img.save("images/ok.jpg", quality=90)
# A truncated PNG: the first half of a valid one.
b = io.BytesIO()
Image.new("RGB", (32, 24), (200, 10, 30)).save(b, format="PNG")
open("images/truncated.png", "wb").write(b.getvalue()[: len(b.getvalue()) // 2])
# Not an image at all, and an empty file.
open("images/garbage.png", "wb").write(b"this is not a png file\n")
open("images/empty.png", "wb").write(b"")
# A valid PNG whose size differs from what the JSON says.
Image.new("RGB", (16, 16), (0, 0, 0)).save("images/small.png")


def ann(i, img, cat, bbox):
    return {"id": i, "image_id": img, "category_id": cat, "bbox": bbox, "area": 1.0, "iscrowd": 0}


defects = {
    "images": [
        {"id": 1, "file_name": "ok.png", "width": 32, "height": 24},
        {"id": 2, "file_name": "ok.jpg", "width": 32, "height": 24},
        {"id": 3, "file_name": "truncated.png", "width": 32, "height": 24},
        {"id": 4, "file_name": "garbage.png", "width": 32, "height": 24},
        {"id": 5, "file_name": "empty.png", "width": 32, "height": 24},
        {"id": 6, "file_name": "missing.png", "width": 32, "height": 24},
        {"id": 7, "file_name": "small.png", "width": 32, "height": 24},
        {"id": 1, "file_name": "ok.png", "width": 32, "height": 24},
    ],
    "categories": [{"id": 3, "name": "cat"}, {"id": 9, "name": "dog"}, {"id": 9, "name": "dog again"}],
    "annotations": [
        ann(1, 1, 3, [2, 2, 10, 10]),  # fine
        ann(2, 1, 9, [25, 20, 20, 10]),  # partly outside the image
        ann(3, 2, 3, [4, 4, 0, 5]),  # zero width
        ann(4, 2, 3, [4, 4, 5, -3]),  # negative height
        ann(5, 2, 42, [1, 1, 5, 5]),  # unknown category id
        ann(6, 99, 3, [1, 1, 5, 5]),  # unknown image id
        ann(6, 1, 3, [3, 3, 4, 4]),  # duplicate annotation id
        ann(8, 1, 3, [40, 40, 5, 5]),  # entirely outside
        {"id": 9, "image_id": 1, "category_id": 3, "area": 0, "iscrowd": 0},  # no bbox
    ],
}
json.dump(defects, open("defects.json", "w"), indent=1)
open("malformed.json", "w").write(
    '{"images": [{"id": 1, "file_name": "ok.png",\n  "width": 32 "height": 24}], "annotations": [], "categories": []}\n'
)
open("nan_box.json", "w").write(
    '{"images": [{"id": 1, "file_name": "ok.png", "width": 32, "height": 24}],\n'
    ' "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [NaN, 1, 2, 3]}],\n'
    ' "categories": [{"id": 1, "name": "a"}]}\n'
)
open("wrong_schema.json", "w").write(
    '{"images": [{"id": 1, "file_name": "ok.png", "width": 32, "height": 24}],\n'
    ' "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": "10 10 5 5"}],\n'
    ' "categories": [{"id": 1, "name": "a"}]}\n'
)
open("truncated.json", "w").write('{"images": [{"id": 1, "file_name": "ok.png"')
# Valid images, one box partly outside (clipped), one of zero width (dropped).
fixable = {
    "images": [
        {"id": 1, "file_name": "ok.png", "width": 32, "height": 24},
        {"id": 2, "file_name": "ok.jpg", "width": 32, "height": 24},
    ],
    "categories": [{"id": 3, "name": "cat"}, {"id": 9, "name": "dog"}],
    "annotations": [
        ann(1, 1, 3, [2, 2, 10, 10]),
        ann(2, 1, 9, [25, 20, 20, 10]),
        ann(3, 2, 3, [4, 4, 0, 5]),
        ann(4, 2, 9, [4, 4, 6, 6]),
    ],
}
json.dump(fixable, open("fixable.json", "w"), indent=1)
# Broken IDX files.
open("bad_magic-idx3-ubyte", "wb").write(bytes([1, 2, 8, 3]) + bytes(12))
open("truncated-idx3-ubyte", "wb").write(bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(5))
open("wrong_type-idx1-ubyte", "wb").write(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + bytes(4))
open("corrupt.gz", "wb").write(bytes([0x1F, 0x8B, 8, 0]) + b"garbage" * 4)
open("short", "wb").write(b"\x00\x00")
open("not_a_tarball.tgz", "wb").write(b"definitely not gzip")
