"""torchvision's FCOS on mnist-det, trained with uniform and with entropy
sampling through isdet, logged as isdet run directories and compared by
`cargo xtask report` — an example, kept short, not a benchmark.

    cargo xtask data mnist-det --out data/mnist-det     # once
    pip install ./python torch torchvision pycocotools
    python3 python/examples/torchvision_fcos.py --out runs/torch-fcos
    cargo xtask report runs/torch-fcos

Each run directory gets what the report's sections read: per-class AP in
the summary, the final validation predictions (the gallery), and the
sampler's per-image counts and scores (the "what the budget was spent on"
section). The subsets trained and scored on are written as COCO files
under `<out>/data/` and named in each run's `config.json`, so the report
opens exactly those images.

The model is torchvision's FCOS on a small backbone (MobileNetV3-small's
first blocks, one feature map at stride 8), trained from scratch on a
subset of mnist-det.
One batched forward pass per step gives each image's loss (torchvision's
FCOS loss, computed image by image on that pass's outputs) and, from the
same pass, the classification head's probabilities, which isdet's Rust
heuristics (`isdet.score`) turn into entropy scores.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator

import isdet


def load_split(root: Path, split: str, limit: int):
    """The first ``limit`` scenes of ``split``: image tensors, FCOS
    targets, and their COCO ground truth."""
    coco = json.loads((root / f"instances_{split}.json").read_text())
    images = coco["images"][:limit]
    keep = {im["id"] for im in images}
    boxes = {im["id"]: [] for im in images}
    for a in coco["annotations"]:
        if a["image_id"] in keep:
            boxes[a["image_id"]].append(a)
    tensors, targets = [], []
    for im in images:
        pixels = np.asarray(Image.open(root / split / im["file_name"]).convert("RGB"), np.float32)
        tensors.append(torch.from_numpy(pixels / 255.0).permute(2, 0, 1))
        anns = boxes[im["id"]]
        xyxy = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        targets.append({
            "boxes": torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
        })
    gt = {"images": images, "categories": coco["categories"],
          "annotations": [a for im in images for a in boxes[im["id"]]]}
    return tensors, targets, gt


def make_model(num_classes: int, size: int) -> FCOS:
    # MobileNetV3-small's first blocks: one feature map at stride 8 (12 × 12
    # at 96 px), fine enough for digits of 10–30 px.
    # (widened to 64 channels: the FCOS head's GroupNorm takes 32 groups).
    backbone = torch.nn.Sequential(
        torchvision.models.mobilenet_v3_small(weights=None).features[:4],
        torch.nn.Conv2d(24, 64, 1),
    )
    backbone.out_channels = 64
    anchors = AnchorGenerator(sizes=((8,),), aspect_ratios=((1.0,),))
    return FCOS(backbone, num_classes=num_classes, anchor_generator=anchors,
                min_size=size, max_size=size, score_thresh=0.05)


def forward_per_image(model, images, targets):
    """One batched forward pass, then the loss of each image on its own
    (torchvision's FCOS reduces over the batch), and the classification
    head's logits of the same pass, for scoring."""
    batch, targets = model.transform(images, targets)
    features = [model.backbone(batch.tensors)]
    head = model.head(features)
    anchors = model.anchor_generator(batch, features)
    per_level = [f.size(2) * f.size(3) for f in features]
    losses = []
    for i, target in enumerate(targets):
        mine = {name: out[i:i + 1] for name, out in head.items()}
        parts = model.compute_loss([target], mine, [anchors[i]], per_level)
        losses.append(sum(parts.values()))
    return torch.stack(losses), head["cls_logits"].detach()


def entropy_scores(logits, losses):
    """isdet's entropy heuristic on the sigmoid probabilities of the
    training pass (every location counts; top-10 mean per image)."""
    probs = torch.sigmoid(logits)
    mask = torch.ones(probs.shape[:2])
    parts = torch.zeros(len(losses), 3)
    return isdet.score({"kind": "entropy"}, losses, probs, parts=parts, mask=mask)


def write_subsets(root: Path, out: Path, train_gt, val_gt):
    """The subsets as COCO files, and isdet's data configuration naming
    them (with the original image folders), for each run's config.json."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, gt in (("train", train_gt), ("val", val_gt)):
        path = out / f"instances_{split}.json"
        path.write_text(json.dumps(gt))
        paths[split] = path
    return {"kind": "coco",
            "train_json": str(paths["train"]), "train_images": str(root / "train"),
            "val_json": str(paths["val"]), "val_images": str(root / "val")}


@torch.no_grad()
def coco_eval(model, images, gt):
    """The model's COCO metrics on the validation subset (``isdet.coco_metrics``:
    the 12 statistics and per-class AP) and its predictions."""
    model.eval()
    results = []
    for k in range(0, len(images), 32):
        for im, det in zip(gt["images"][k:k + 32], model(images[k:k + 32])):
            for (x0, y0, x1, y1), label, score in zip(
                det["boxes"].tolist(), det["labels"].tolist(), det["scores"].tolist()
            ):
                results.append({"image_id": im["id"], "category_id": label,
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": score})
    model.train()
    if not results:
        return {"AP": 0.0}, results
    return isdet.coco_metrics(gt, results), results


def run(method, strategy, data, args):
    train_images, train_targets, val_images, val_gt, data_config = data
    torch.manual_seed(args.seed)
    model = make_model(num_classes=11, size=96)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sampler = isdet.Sampler(len(train_images), args.batch_size, args.epochs, args.budget,
                            strategy=strategy, seed=args.seed)
    log = isdet.RunLog(Path(args.out) / f"{method}-b{round(args.budget * 100)}-s{args.seed}",
                       method=method, budget=args.budget, seed=args.seed,
                       strategy=strategy["kind"], heuristic="entropy" if method != "uniform" else "",
                       data=data_config)
    seconds, step = 0.0, 0
    log.evaluation(step=0, metrics=coco_eval(model, val_images, val_gt)[0],
                   sampler=sampler, seconds=0.0)
    model.train()
    for plan in sampler:
        start = time.perf_counter()
        images = [train_images[i] for i in plan.ids]
        targets = [train_targets[i] for i in plan.ids]
        losses, logits = forward_per_image(model, images, targets)
        weights = torch.tensor(plan.weights)
        (weights * losses).mean().backward()
        optimiser.step()
        optimiser.zero_grad()
        detached = losses.detach()
        scores = detached if method == "uniform" else entropy_scores(logits, detached)
        sampler.record(plan.ids, scores)
        seconds += time.perf_counter() - start
        step += 1
        if step % args.eval_every == 0 or sampler.budget["optimiser_steps"] == sampler.budget["limit_steps"]:
            metrics, results = coco_eval(model, val_images, val_gt)
            log.evaluation(step=step, metrics=metrics, sampler=sampler, seconds=seconds,
                           lr=args.lr, train_loss=float(detached.mean()))
            print(f"{method}: step {step}, AP {metrics['AP']:.4f}, {seconds:.0f} s", flush=True)
    log.predictions(results, val_gt)
    return log.finish()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/mnist-det")
    p.add_argument("--out", default="runs/torch-fcos")
    p.add_argument("--train", type=int, default=1000, help="training images (the first N)")
    p.add_argument("--val", type=int, default=200, help="validation images (the first N)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--budget", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    root = Path(args.data)
    train_images, train_targets, train_gt = load_split(root, "train", args.train)
    val_images, _, val_gt = load_split(root, "val", args.val)
    data_config = write_subsets(root, Path(args.out) / "data", train_gt, val_gt)
    data = (train_images, train_targets, val_images, val_gt, data_config)
    for method, strategy in [
        ("uniform", {"kind": "uniform"}),
        ("entropy", {"kind": "weighted_without_replacement", "epsilon": 0.1}),
    ]:
        summary = run(method, strategy, data, args)
        print(f"{method}: AP {summary['AP']:.4f} after {summary['steps']} steps, "
              f"{summary['seconds']:.0f} s of training")


if __name__ == "__main__":
    main()
