//! Augmentation: determinism, box correctness (letterbox, flip, jitter,
//! mosaic) and label correctness (mixup, cutmix, RICAP).

use std::sync::Arc;

use isdet_data::{
    Annotation, BBox, ClassNames, ClsAugment, DataError, Dataset, DetAugment, DetectionSample,
    ImageBuffer, Mixing, augment_classification, augment_detection, mix_batch,
};

/// Images of varied sizes, each black with one white rectangle whose box is
/// its annotation: pixels tell where the boxes must be.
struct Rects {
    classes: ClassNames,
}

impl Rects {
    fn new() -> Self {
        Rects {
            classes: ClassNames::new(vec!["rect".into(), "other".into()]),
        }
    }
    fn rect(index: usize) -> (usize, usize, [usize; 4]) {
        let w = 40 + (index * 13) % 50;
        let h = 30 + (index * 29) % 60;
        let x0 = (index * 7) % (w / 2);
        let y0 = (index * 5) % (h / 2);
        let x1 = (x0 + 8 + (index * 3) % (w / 2)).min(w);
        let y1 = (y0 + 8 + (index * 11) % (h / 2)).min(h);
        (w, h, [x0, y0, x1, y1])
    }
}

impl Dataset for Rects {
    type Sample = DetectionSample;
    fn len(&self) -> usize {
        32
    }
    fn get(&self, index: usize) -> isdet_data::Result<DetectionSample> {
        let (w, h, [x0, y0, x1, y1]) = Rects::rect(index);
        let mut image = ImageBuffer::new(w, h, 3);
        for y in y0..y1 {
            for x in x0..x1 {
                for c in 0..3 {
                    image.data[(y * w + x) * 3 + c] = 255;
                }
            }
        }
        Ok(DetectionSample {
            image_id: index as u64 + 1,
            image,
            annotations: vec![Annotation {
                bbox: BBox::new(x0 as f32, y0 as f32, x1 as f32, y1 as f32),
                class: (index % 2) as u32,
                crowd: false,
            }],
        })
    }
    fn class_names(&self) -> &ClassNames {
        &self.classes
    }
}

fn run(aug: &DetAugment, seed: u64, epoch: u64, id: usize) -> (Vec<f32>, isdet_data::DetTarget) {
    let data = Rects::new();
    let mut out = vec![0.0; 3 * aug.size * aug.size];
    let t =
        augment_detection(aug, seed, epoch, id, data.len(), &|i| data.get(i), &mut out).unwrap();
    (out, t)
}

/// White pixels (value > 0.9 in every channel) of a 3×S×S buffer.
fn white(buf: &[f32], size: usize) -> Vec<(usize, usize)> {
    let plane = size * size;
    (0..plane)
        .filter(|&i| (0..3).all(|c| buf[c * plane + i] > 0.9))
        .map(|i| (i % size, i / size))
        .collect()
}

fn inside(b: &BBox, x: usize, y: usize, slack: f32) -> bool {
    let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
    fx >= b.x0 - slack && fx <= b.x1 + slack && fy >= b.y0 - slack && fy <= b.y1 + slack
}

/// Every white pixel lies in some box, and every box is mostly white.
fn assert_boxes_match_pixels(buf: &[f32], size: usize, t: &isdet_data::DetTarget, what: &str) {
    let px = white(buf, size);
    for &(x, y) in &px {
        assert!(
            t.annotations.iter().any(|a| inside(&a.bbox, x, y, 1.0)),
            "{what}: white pixel ({x},{y}) outside every box {:?}",
            t.annotations
        );
    }
    for a in &t.annotations {
        let b = a.bbox;
        assert!(
            b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= size as f32 && b.y1 <= size as f32,
            "{what}: {b:?}"
        );
        // The interior, shrunk by 1.5 px for bilinear edges, is white.
        let (x0, y0) = ((b.x0 + 1.5).ceil() as usize, (b.y0 + 1.5).ceil() as usize);
        let (x1, y1) = ((b.x1 - 1.5).floor() as usize, (b.y1 - 1.5).floor() as usize);
        let mut total = 0;
        let mut lit = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                total += 1;
                lit += usize::from(px.contains(&(x, y)));
            }
        }
        assert!(
            lit == total,
            "{what}: box {b:?} has {lit}/{total} white interior pixels"
        );
    }
}

#[test]
fn detection_augmentation_is_a_pure_function_of_seed_epoch_and_id() {
    let aug = DetAugment::train(64);
    for id in [0, 5, 17] {
        assert_eq!(run(&aug, 1, 2, id), run(&aug, 1, 2, id));
    }
    let differs = (0..8)
        .filter(|&id| run(&aug, 1, 2, id).0 != run(&aug, 1, 3, id).0)
        .count();
    assert!(
        differs >= 6,
        "epochs should change the augmentation ({differs}/8 differ)"
    );
    let differs = (0..8)
        .filter(|&id| run(&aug, 1, 2, id).0 != run(&aug, 9, 2, id).0)
        .count();
    assert!(
        differs >= 6,
        "seeds should change the augmentation ({differs}/8 differ)"
    );
}

#[test]
fn eval_letterbox_is_centred_and_inverts_to_original_boxes() {
    let aug = DetAugment::eval(64);
    for id in 0..12 {
        let (buf, t) = run(&aug, 0, 0, id);
        let (w, h, r) = Rects::rect(id);
        assert_eq!(t.original_size, (w, h));
        assert!(!t.mosaic && !t.flipped);
        let lb = t.letterbox;
        assert!((lb.scale - 64.0 / w.max(h) as f32).abs() < 1e-6);
        // Centred: equal padding on both sides of the short axis.
        assert!((2.0 * lb.pad_x + w as f32 * lb.scale - 64.0).abs() < 1e-4);
        assert!((2.0 * lb.pad_y + h as f32 * lb.scale - 64.0).abs() < 1e-4);
        let back = lb.to_original(t.annotations[0].bbox);
        let want = [r[0] as f32, r[1] as f32, r[2] as f32, r[3] as f32];
        for (g, w) in [back.x0, back.y0, back.x1, back.y1].iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "id {id}: {back:?} vs {want:?}");
        }
        assert_eq!(t.annotations[0].class, (id % 2) as u32);
        assert_boxes_match_pixels(&buf, 64, &t, &format!("eval {id}"));
        // Padding is grey.
        if lb.pad_x >= 1.0 {
            assert!((buf[0] - isdet_data::augment::PAD_VALUE).abs() < 1e-6);
        }
    }
}

#[test]
fn flip_and_jitter_keep_boxes_on_their_pixels() {
    let aug = DetAugment {
        mosaic: 0.0,
        colour_jitter: 0.0,
        min_box_size: 0.0,
        min_visible: 0.0,
        ..DetAugment::train(64)
    };
    let mut flipped = 0;
    for id in 0..32 {
        let (buf, t) = run(&aug, 4, 1, id);
        flipped += usize::from(t.flipped);
        assert_boxes_match_pixels(&buf, 64, &t, &format!("jitter/flip {id}"));
    }
    assert!(
        (8..=24).contains(&flipped),
        "flip probability 0.5 gave {flipped}/32"
    );
}

#[test]
fn mosaic_boxes_are_clipped_to_quadrants_and_match_pixels() {
    let aug = DetAugment {
        mosaic: 1.0,
        colour_jitter: 0.0,
        hflip: 0.5,
        min_box_size: 0.0,
        min_visible: 0.0,
        ..DetAugment::train(64)
    };
    let mut boxes = 0;
    for id in 0..32 {
        let (buf, t) = run(&aug, 8, 0, id);
        assert!(t.mosaic);
        assert_eq!(t.sources.len(), 4);
        assert_eq!(t.sources[0], id);
        assert!(t.annotations.len() <= 4);
        boxes += t.annotations.len();
        assert_boxes_match_pixels(&buf, 64, &t, &format!("mosaic {id}"));
    }
    assert!(boxes >= 32, "mosaics kept only {boxes} boxes");
}

#[test]
fn mosaic_drops_boxes_left_too_small() {
    let strict = DetAugment {
        mosaic: 1.0,
        min_box_size: 6.0,
        min_visible: 0.6,
        ..DetAugment::train(64)
    };
    let lax = DetAugment {
        min_box_size: 0.0,
        min_visible: 0.0,
        ..strict.clone()
    };
    let (mut kept_strict, mut kept_lax) = (0, 0);
    for id in 0..32 {
        let (_, t) = run(&strict, 2, 0, id);
        for a in &t.annotations {
            assert!(a.bbox.width() >= 6.0 && a.bbox.height() >= 6.0, "{a:?}");
        }
        kept_strict += t.annotations.len();
        kept_lax += run(&lax, 2, 0, id).1.annotations.len();
    }
    assert!(kept_strict < kept_lax, "{kept_strict} vs {kept_lax}");
}

#[test]
fn a_failing_partner_fails_the_sample() {
    let aug = DetAugment {
        mosaic: 1.0,
        ..DetAugment::train(32)
    };
    let data = Rects::new();
    let mut out = vec![0.0; 3 * 32 * 32];
    let fetch = |i: usize| {
        if i == 0 {
            data.get(0)
        } else {
            Err(DataError::IndexOutOfRange { index: i, len: 1 })
        }
    };
    assert!(augment_detection(&aug, 0, 0, 0, 32, &fetch, &mut out).is_err());
}

fn constant_batch(n: usize, size: usize) -> Vec<f32> {
    // Image k is filled with the value k + 1, so each pixel names its source.
    (0..n)
        .flat_map(|k| std::iter::repeat_n(k as f32 + 1.0, size * size))
        .collect()
}

#[test]
fn ricap_weights_are_the_area_shares_of_their_sources() {
    let (n, size) = (32, 16);
    let aug = ClsAugment {
        mixing: Mixing::Ricap { beta: 0.3 },
        mix_prob: 1.0,
        ..ClsAugment::eval(size, 1)
    };
    let ids: Vec<usize> = (100..100 + n).collect();
    let labels: Vec<u32> = (0..n as u32).map(|k| k % 3).collect();
    let mut images = constant_batch(n, size);
    let targets = mix_batch(&aug, 5, 1, &ids, &labels, &mut images).unwrap();
    let mut mixed = 0;
    for (k, t) in targets.iter().enumerate() {
        let img = &images[k * size * size..(k + 1) * size * size];
        let total: f32 = t.parts.iter().map(|p| p.weight).sum();
        assert!((total - 1.0).abs() < 1e-5, "weights sum to {total}");
        mixed += usize::from(t.parts.len() > 1);
        for p in &t.parts {
            let source = p.sample - 100;
            assert_eq!(p.label, labels[source], "label of part {p:?}");
            let share = img.iter().filter(|&&v| v == source as f32 + 1.0).count() as f32
                / (size * size) as f32;
            assert!(
                (share - p.weight).abs() < 1e-5,
                "sample {k}: part {p:?} covers {share}"
            );
        }
        let soft = t.soft_label(3);
        assert!((soft.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    // Beta(0.3, 0.3) puts the corner near an edge often; still, most
    // images have several sources.
    assert!(
        mixed >= 16,
        "only {mixed}/{n} RICAP images had several sources"
    );
    // Same seed, same batch: same result.
    let mut again = constant_batch(n, size);
    assert_eq!(
        mix_batch(&aug, 5, 1, &ids, &labels, &mut again).unwrap(),
        targets
    );
    assert_eq!(again, images);
}

#[test]
fn cutmix_weights_are_area_shares_and_mixup_blends_linearly() {
    let (n, size) = (6, 16);
    let ids: Vec<usize> = (0..n).collect();
    let labels: Vec<u32> = (0..n as u32).collect();
    let cutmix = ClsAugment {
        mixing: Mixing::Cutmix { alpha: 1.0 },
        mix_prob: 1.0,
        ..ClsAugment::eval(size, 1)
    };
    let mut images = constant_batch(n, size);
    let targets = mix_batch(&cutmix, 3, 0, &ids, &labels, &mut images).unwrap();
    for (k, t) in targets.iter().enumerate() {
        let img = &images[k * size * size..(k + 1) * size * size];
        for p in &t.parts {
            let share = img.iter().filter(|&&v| v == p.sample as f32 + 1.0).count() as f32
                / (size * size) as f32;
            assert!(
                (share - p.weight).abs() < 1e-5,
                "cutmix {k}: {p:?} covers {share}"
            );
            assert_eq!(p.label, p.sample as u32);
        }
    }
    let mixup = ClsAugment {
        mixing: Mixing::Mixup { alpha: 0.3 },
        ..cutmix
    };
    let mut images = constant_batch(n, size);
    let targets = mix_batch(&mixup, 3, 0, &ids, &labels, &mut images).unwrap();
    for (k, t) in targets.iter().enumerate() {
        let want: f32 = t
            .parts
            .iter()
            .map(|p| p.weight * (p.sample as f32 + 1.0))
            .sum();
        for &v in &images[k * size * size..(k + 1) * size * size] {
            assert!((v - want).abs() < 1e-4, "mixup {k}: pixel {v} vs {want}");
        }
        assert!((t.parts.iter().map(|p| p.weight).sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn no_mixing_gives_one_part_of_weight_one() {
    let aug = ClsAugment::standard(8, 1);
    let mut images = constant_batch(3, 8);
    let before = images.clone();
    let t = mix_batch(&aug, 0, 0, &[4, 5, 6], &[1, 2, 3], &mut images).unwrap();
    assert_eq!(images, before);
    for (k, t) in t.iter().enumerate() {
        assert_eq!(t.parts.len(), 1);
        assert_eq!(
            (t.parts[0].sample, t.parts[0].label, t.parts[0].weight),
            (4 + k, 1 + k as u32, 1.0)
        );
    }
}

#[test]
fn crop_flip_and_cutout_follow_their_rules() {
    // A 28x28 ramp image into a 32x32 canvas, no crop: centred with 2 px of
    // zeros on each side.
    let mut img = ImageBuffer::new(28, 28, 1);
    for y in 0..28 {
        for x in 0..28 {
            img.data[y * 28 + x] = (x * 9) as u8 + 1;
        }
    }
    let mut out = vec![0.0; 32 * 32];
    augment_classification(&ClsAugment::eval(32, 1), 0, 0, 0, &img, &mut out);
    assert_eq!(out[0], 0.0);
    assert_eq!(out[2 * 32 + 2], 1.0 / 255.0);
    assert_eq!(out[2 * 32 + 29], (27.0 * 9.0 + 1.0) / 255.0);
    // Crop with padding 4: the content shifts by at most 4 pixels.
    let crop = ClsAugment {
        crop_padding: 4,
        ..ClsAugment::eval(28, 1)
    };
    let mut shifts = std::collections::HashSet::new();
    for id in 0..40 {
        augment_classification(&crop, 1, 0, id, &img, &mut out[..28 * 28]);
        let row = &out[14 * 28..15 * 28];
        let first = row.iter().position(|&v| v > 0.0).unwrap_or(28);
        let shift = if first > 0 {
            first as i64
        } else {
            -(((row[0] * 255.0 - 1.0) / 9.0).round() as i64)
        };
        assert!(shift.abs() <= 4, "shift {shift}");
        shifts.insert(shift);
    }
    assert!(shifts.len() >= 5, "crops should vary: {shifts:?}");
    // Flip mirrors rows.
    let flip = ClsAugment {
        hflip: true,
        ..ClsAugment::eval(28, 1)
    };
    let mut plain = vec![0.0; 28 * 28];
    augment_classification(&ClsAugment::eval(28, 1), 0, 0, 0, &img, &mut plain);
    let mut seen_flip = false;
    for id in 0..10 {
        augment_classification(&flip, 0, 0, id, &img, &mut out[..28 * 28]);
        if out[0] != plain[0] {
            seen_flip = true;
            for y in 0..28 {
                for x in 0..28 {
                    assert_eq!(out[y * 28 + x], plain[y * 28 + 27 - x]);
                }
            }
        }
    }
    assert!(seen_flip);
    // Cutout zeroes a square of at most 8x8 and nothing else.
    let cut = ClsAugment {
        cutout: 8,
        ..ClsAugment::eval(28, 1)
    };
    for id in 0..10 {
        augment_classification(&cut, 0, 0, id, &img, &mut out[..28 * 28]);
        let zeroed: Vec<usize> = (0..28 * 28).filter(|&i| out[i] == 0.0).collect();
        assert!(
            !zeroed.is_empty() && zeroed.len() <= 64,
            "{} zeroed",
            zeroed.len()
        );
        let (xs, ys): (Vec<usize>, Vec<usize>) = zeroed.iter().map(|&i| (i % 28, i / 28)).unzip();
        let w = xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1;
        let h = ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1;
        assert_eq!(w * h, zeroed.len(), "cutout is a rectangle");
    }
}

#[test]
fn invalid_augmentation_settings_are_rejected() {
    let bad_det = DetAugment {
        scale_jitter: [1.5, 1.0],
        ..DetAugment::train(64)
    };
    assert!(bad_det.validate().is_err());
    let bad_cls = ClsAugment {
        mixing: Mixing::Ricap { beta: 0.0 },
        mix_prob: 1.0,
        ..ClsAugment::eval(8, 1)
    };
    assert!(bad_cls.validate().is_err());
    let data = Arc::new(Rects::new());
    assert!(isdet_data::DetectionPipeline::new(data, bad_det, 0).is_err());
}
