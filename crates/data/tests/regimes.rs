//! mnist-det data regimes: every knob makes the shares it asks for, to the
//! rounding of the counts; clip frames stay on their first frame's boxes;
//! validation and the all-off set are byte-identical to the sets made
//! before the knobs existed; the tags file agrees with the annotations.

use std::path::Path;

use isdet_data::{
    BBox, BatchRequest, CocoDataset, CocoOptions, Dataset, DetAugment, DetectionPipeline,
    DetectionSample, LabelledImages, MnistDetConfig, Regime, RegimeFrames, RegimeTags,
    SPLIT_HOLDOUT, SPLIT_TRAIN, SPLIT_VAL, collate, mnist_det_scene, tags_path, write_mnist_det,
};

/// Digests of the files `cargo xtask data mnist-det` wrote before the
/// regimes existed (train 40, val 20, default scene shape, seed 0, from
/// `fake_digits(120)` and `fake_digits(50)`), computed with the code of
/// commit 3eb4db5 (`CocoWriter::add_generated` over `mnist_det_scene`, as
/// xtask wrote the splits then): the whole folder, `val/` (paths relative
/// to it), and `instances_val.json`.
const BEFORE_ALL: u64 = 0x32b2_203b_b4ae_be4c;
const BEFORE_VAL_IMAGES: u64 = 0x1193_ee92_b499_285c;
const BEFORE_VAL_JSON: u64 = 0x8c3d_cc66_2fd0_2cd1;

/// Stand-in digits: a lit rectangle of varying size and texture, classes
/// cycling with stride 7 (so every class is present and each class mixes
/// shapes).
fn fake_digits(n: usize) -> LabelledImages {
    let mut pixels = vec![0u8; n * 784];
    for i in 0..n {
        let img = &mut pixels[i * 784..(i + 1) * 784];
        let (x0, x1) = (6 + i % 5, 16 + i % 7);
        let (y0, y1) = (4 + i % 3, 20 + i % 5);
        for y in y0..y1 {
            for x in x0..x1 {
                img[y * 28 + x] = (120 + (x * 7 + y * 3 + i) % 136) as u8;
            }
        }
    }
    LabelledImages {
        rows: 28,
        cols: 28,
        pixels,
        labels: (0..n).map(|i| ((i * 7) % 10) as u8).collect(),
    }
}

/// Stand-in digits with strokes from 1 to 12 source pixels wide, thin
/// ones like a digit 1 among them.
fn stroke_digits(n: usize) -> LabelledImages {
    let mut set = fake_digits(n);
    for i in 0..n {
        let img = &mut set.pixels[i * 784..(i + 1) * 784];
        img.fill(0);
        let width = 1 + i % 12;
        let x0 = 14 - width / 2;
        for y in 4..24 {
            for x in x0..x0 + width {
                img[y * 28 + x] = 255;
            }
        }
    }
    set
}

fn config(train: usize, regime: Regime) -> MnistDetConfig {
    MnistDetConfig {
        train,
        val: 20,
        regime,
        ..MnistDetConfig::default()
    }
}

/// FNV-1a over every file's relative path and bytes, in path order.
fn digest(path: &Path, root: &Path) -> u64 {
    let mut files = Vec::new();
    collect(path, &mut files);
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        for b in rel.bytes().chain(std::fs::read(&f).unwrap()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn collect(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for e in std::fs::read_dir(path).unwrap() {
        collect(&e.unwrap().path(), out);
    }
}

fn file_digest(path: &Path) -> u64 {
    std::fs::read(path)
        .unwrap()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
}

fn write(dir: &Path, config: &MnistDetConfig, threads: usize) -> isdet_data::MnistDetWritten {
    write_mnist_det(
        dir,
        config,
        &fake_digits(120),
        &fake_digits(50),
        threads,
        |_, _| {},
    )
    .unwrap()
}

#[test]
fn all_knobs_off_gives_the_bytes_of_before() {
    for threads in [1, 2, 5] {
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path(), &config(40, Regime::default()), threads);
        assert_eq!(
            digest(dir.path(), dir.path()),
            BEFORE_ALL,
            "{threads} threads"
        );
        assert_eq!((written.train_tags, written.holdout), (None, None));
    }
    // In memory too: an all-off frame is the plain scene.
    let (source, cfg) = (fake_digits(120), config(40, Regime::default()));
    for split in [SPLIT_TRAIN, SPLIT_HOLDOUT] {
        let frames = RegimeFrames::new(&cfg, &source, split, 40, 2).unwrap();
        for i in 0..40 {
            let plain = mnist_det_scene(&cfg, &source, split, i as u64);
            assert_eq!(frames.frame(i).unwrap(), plain, "split {split}, frame {i}");
        }
    }
    // Holdout frames add a split and change nothing else.
    let dir = tempfile::tempdir().unwrap();
    let cfg = MnistDetConfig {
        holdout: 7,
        ..config(40, Regime::default())
    };
    let written = write(dir.path(), &cfg, 2);
    let holdout = written.holdout.unwrap();
    assert_eq!(holdout, dir.path().join("instances_holdout.json"));
    std::fs::remove_file(holdout).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("holdout"))
            .unwrap()
            .count(),
        7
    );
    std::fs::remove_dir_all(dir.path().join("holdout")).unwrap();
    assert_eq!(digest(dir.path(), dir.path()), BEFORE_ALL);
}

fn regimes() -> Vec<Regime> {
    vec![
        Regime {
            clip_frames: 4,
            ..Regime::default()
        },
        Regime {
            empty_share: 0.3,
            ..Regime::default()
        },
        Regime {
            label_noise: 0.25,
            missing_share: 0.15,
            ..Regime::default()
        },
        Regime {
            long_tail: 20.0,
            ..Regime::default()
        },
        Regime {
            clip_frames: 3,
            empty_share: 0.5,
            label_noise: 0.4,
            missing_share: 0.2,
            long_tail: 5.0,
        },
    ]
}

#[test]
fn validation_is_the_same_bytes_for_every_regime() {
    for regime in regimes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = MnistDetConfig {
            holdout: 5,
            ..config(40, regime.clone())
        };
        let written = write(dir.path(), &cfg, 2);
        assert_eq!(
            digest(&dir.path().join("val"), &dir.path().join("val")),
            BEFORE_VAL_IMAGES,
            "{regime:?}"
        );
        assert_eq!(file_digest(&written.val), BEFORE_VAL_JSON, "{regime:?}");
        // The knobs do reach the train split.
        assert_ne!(digest(dir.path(), dir.path()), BEFORE_ALL, "{regime:?}");
    }
}

fn frames<'a>(
    cfg: &'a MnistDetConfig,
    source: &'a LabelledImages,
    len: usize,
) -> Vec<DetectionSample> {
    let frames = RegimeFrames::new(cfg, source, SPLIT_TRAIN, len, 2).unwrap();
    (0..len).map(|i| frames.frame(i).unwrap()).collect()
}

/// `count` is `share × total` to the rounding of the counts.
fn assert_share(what: &str, count: usize, share: f32, total: usize) {
    let exact = share as f64 * total as f64;
    assert!(
        (count as f64 - exact).abs() <= 0.5 + 1e-4,
        "{what}: {count} of {total}, asked {share}"
    );
}

#[test]
fn each_knob_makes_the_shares_it_asks_for() {
    let source = fake_digits(300);
    // (clip frames, frames, empty share, label noise, missing share)
    let cases = [
        (1, 300, 0.2, 0.0, 0.0),
        (1, 301, 0.35, 0.1, 0.3),
        (4, 200, 0.25, 0.3, 0.0),
        (5, 250, 0.5, 0.05, 0.5),
        (2, 100, 0.0, 1.0, 0.0),
        (3, 90, 1.0, 0.0, 0.0),
    ];
    for (clip_frames, len, empty_share, label_noise, missing_share) in cases {
        let regime = Regime {
            clip_frames,
            empty_share,
            label_noise,
            missing_share,
            ..Regime::default()
        };
        let cfg = config(len, regime.clone());
        // The same frames with every box annotated truly: what was drawn.
        let truth_cfg = config(
            len,
            Regime {
                label_noise: 0.0,
                missing_share: 0.0,
                ..regime.clone()
            },
        );
        let (made, truth) = (frames(&cfg, &source, len), frames(&truth_cfg, &source, len));
        let (mut empty, mut drawn, mut missing, mut noisy) = (0, 0, 0, 0);
        for (m, t) in made.iter().zip(&truth) {
            assert_eq!(m.image, t.image, "noise and missing boxes leave the pixels");
            let black = m.image.data.iter().all(|&v| v == 0);
            assert_eq!(black, t.annotations.is_empty(), "image {}", m.image_id);
            empty += usize::from(black);
            drawn += t.annotations.len();
            for a in &t.annotations {
                match m.annotations.iter().find(|b| b.bbox == a.bbox) {
                    None => missing += 1,
                    Some(b) => noisy += usize::from(b.class != a.class),
                }
            }
        }
        let what = format!("{regime:?}");
        assert_share(
            &format!("empty clips, {what}"),
            empty / clip_frames,
            empty_share,
            len / clip_frames,
        );
        assert_eq!(empty % clip_frames, 0, "whole clips are empty: {what}");
        assert_share(&format!("missing, {what}"), missing, missing_share, drawn);
        assert_share(
            &format!("noisy, {what}"),
            noisy,
            label_noise,
            drawn - missing,
        );
    }
}

#[test]
fn long_tail_gives_geometric_class_counts() {
    let source = fake_digits(400);
    for (ratio, clip_frames, empty_share) in [(10.0, 1, 0.0), (4.0, 3, 0.3), (50.0, 2, 0.0)] {
        let regime = Regime {
            long_tail: ratio,
            clip_frames,
            empty_share,
            ..Regime::default()
        };
        // Small digits, at most three a scene: every slot finds a place.
        let cfg = MnistDetConfig {
            max_digits: 3,
            max_size: 24,
            ..config(0, regime)
        };
        let len = 600;
        let mut counts = [0usize; 10];
        for f in frames(&cfg, &source, len) {
            for a in &f.annotations {
                counts[a.class as usize] += 1;
            }
        }
        // Each digit of a clip is in all of its frames.
        assert!(counts.iter().all(|n| n % clip_frames == 0), "{counts:?}");
        let digits: Vec<f64> = counts.iter().map(|&n| (n / clip_frames) as f64).collect();
        let total: f64 = digits.iter().sum();
        let weights: Vec<f64> = (0..10)
            .map(|c| (ratio as f64).powf(-(c as f64) / 9.0))
            .collect();
        let sum: f64 = weights.iter().sum();
        for (c, (&n, w)) in digits.iter().zip(&weights).enumerate() {
            let quota = total * w / sum;
            assert!(
                (n - quota).abs() < 1.0,
                "class {c}: {n} digits, quota {quota:.2} at ratio {ratio}"
            );
        }
        assert!(digits.windows(2).all(|w| w[0] >= w[1]), "{digits:?}");
    }
}

/// The IoU bounds the docs state for clip frames against frame 0: boxes at
/// least 3 px on each side keep IoU ≥ 0.5; thinner ones (a small upright
/// 1, one or two pixels wide) can gain or lose a pixel of width, and keep
/// IoU ≥ 0.35.
const CLIP_IOU: f32 = 0.5;
const CLIP_IOU_THIN: f32 = 0.35;

#[test]
fn clip_frames_stay_on_their_first_frames_boxes() {
    for source in [fake_digits(200), stroke_digits(240)] {
        let k = 6;
        let cfg = config(
            0,
            Regime {
                clip_frames: k,
                ..Regime::default()
            },
        );
        let made = frames(&cfg, &source, 100 * k);
        let (mut boxes, mut moved, mut drifted, mut copies) = (0, 0, 0, 0);
        for clip in made.chunks(k) {
            let first = &clip[0];
            for f in &clip[1..] {
                assert_eq!(f.annotations.len(), first.annotations.len());
                copies += usize::from(f.image == first.image);
                for (a, b) in first.annotations.iter().zip(&f.annotations) {
                    assert_eq!(a.class, b.class);
                    let thin = a.bbox.width().min(a.bbox.height()) < 3.0;
                    let bound = if thin { CLIP_IOU_THIN } else { CLIP_IOU };
                    let iou = a.bbox.iou(&b.bbox);
                    assert!(iou >= bound, "IoU {iou} of {:?} and {:?}", a.bbox, b.bbox);
                    assert!(tight(f, b.bbox), "box {:?} of image {}", b.bbox, f.image_id);
                    boxes += 1;
                    moved += usize::from(a.bbox != b.bbox);
                    let centre = |b: BBox| (b.x0 + b.x1, b.y0 + b.y1);
                    let (ca, cb) = (centre(a.bbox), centre(b.bbox));
                    // Doubled centres: a shift of 2 is one pixel of drift.
                    drifted +=
                        usize::from((ca.0 - cb.0).abs() >= 2.0 || (ca.1 - cb.1).abs() >= 2.0);
                }
            }
        }
        // Near-duplicates, not copies: most boxes move or change size.
        assert!(moved * 2 > boxes, "only {moved} of {boxes} boxes moved");
        assert!(
            drifted * 5 > boxes,
            "only {drifted} of {boxes} boxes drifted"
        );
        assert!(copies * 50 < made.len(), "{copies} frames copy their first");
    }
}

/// Every edge row and column of the box holds a lit pixel.
fn tight(f: &DetectionSample, b: BBox) -> bool {
    let (x0, y0, x1, y1) = (b.x0 as usize, b.y0 as usize, b.x1 as usize, b.y1 as usize);
    let lit = |x: usize, y: usize| f.image.get(x, y, 0) > 0;
    (x0..x1).any(|x| lit(x, y0))
        && (x0..x1).any(|x| lit(x, y1 - 1))
        && (y0..y1).any(|y| lit(x0, y))
        && (y0..y1).any(|y| lit(x1 - 1, y))
}

#[test]
fn frames_are_pure_functions_of_their_index() {
    let source = fake_digits(200);
    let cfg = config(0, regimes()[4].clone());
    let one = RegimeFrames::new(&cfg, &source, SPLIT_TRAIN, 60, 1).unwrap();
    let many = RegimeFrames::new(&cfg, &source, SPLIT_TRAIN, 60, 7).unwrap();
    assert_eq!(one.tags().unwrap(), many.tags().unwrap());
    for i in (0..60).rev() {
        assert_eq!(one.frame(i).unwrap(), many.frame(i).unwrap(), "frame {i}");
    }
    let holdout = RegimeFrames::new(&cfg, &source, SPLIT_HOLDOUT, 60, 2).unwrap();
    let train_images: Vec<_> = (0..60).map(|i| one.frame(i).unwrap().image).collect();
    let shared = (0..60)
        .map(|i| holdout.frame(i).unwrap().image)
        .filter(|im| im.data.iter().any(|&v| v > 0) && train_images.contains(im))
        .count();
    assert_eq!(shared, 0, "holdout scenes are not train scenes");
    assert!(one.frame(60).is_err());
    let err = RegimeFrames::new(&cfg, &source, SPLIT_VAL, 5, 1).unwrap_err();
    assert!(err.to_string().contains("validation"), "{err}");
}

#[test]
fn tags_round_trip_and_agree_with_the_annotations() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = MnistDetConfig {
        holdout: 12,
        ..config(45, regimes()[4].clone())
    };
    let written = write(dir.path(), &cfg, 2);
    for (json, tags, split, len) in [
        (
            &written.train,
            written.train_tags.clone().unwrap(),
            "train",
            45,
        ),
        (
            written.holdout.as_ref().unwrap(),
            written.holdout_tags.clone().unwrap(),
            "holdout",
            12,
        ),
    ] {
        assert_eq!(tags, tags_path(json));
        let read = RegimeTags::read(&tags).unwrap();
        let text = std::fs::read_to_string(&tags).unwrap();
        assert!(
            text.contains(r#""label_noise":0.4,"#),
            "knobs as written: {}",
            &text[..200]
        );
        let regime: Regime = serde_json::from_value(read.regime.clone()).unwrap();
        assert_eq!(regime, cfg.regime);
        let source = fake_digits(120);
        let split_no = if split == "train" {
            SPLIT_TRAIN
        } else {
            SPLIT_HOLDOUT
        };
        let frames = RegimeFrames::new(&cfg, &source, split_no, len, 1).unwrap();
        assert_eq!(read, frames.tags().unwrap());
        let set =
            CocoDataset::open(json, &dir.path().join(split), CocoOptions { strict: true }).unwrap();
        assert_eq!(read.images.len(), set.len());
        let (mut noisy, mut missing) = (0, 0);
        for (i, t) in read.images.iter().enumerate() {
            let sample = set.get(i).unwrap();
            assert_eq!(t.id, sample.image_id);
            assert_eq!((t.clip, t.frame), ((i / 3) as u64, (i % 3) as u32));
            assert_eq!(t.boxes as usize, sample.annotations.len(), "image {}", t.id);
            assert_eq!(t.empty, sample.image.data.iter().all(|&v| v == 0));
            assert!(!t.empty || t.boxes + t.missing + t.noisy == 0);
            assert!(t.noisy <= t.boxes);
            (noisy, missing) = (noisy + t.noisy, missing + t.missing);
        }
        assert!(
            noisy > 0 && missing > 0,
            "{split}: {noisy} noisy, {missing} missing"
        );
    }
    // A later all-off set in the same folder leaves no stale tags behind.
    let written = write(dir.path(), &config(40, Regime::default()), 2);
    assert!(written.train_tags.is_none());
    assert!(!tags_path(&written.train).exists());
}

#[test]
fn bad_regimes_fail_naming_the_knob() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            Regime {
                empty_share: 1.2,
                ..Regime::default()
            },
            "empty_share",
        ),
        (
            Regime {
                label_noise: -0.5,
                ..Regime::default()
            },
            "label_noise",
        ),
        (
            Regime {
                missing_share: 2.0,
                ..Regime::default()
            },
            "missing_share",
        ),
        (
            Regime {
                long_tail: 0.9,
                ..Regime::default()
            },
            "long_tail",
        ),
    ];
    for (regime, knob) in cases {
        let err = write_mnist_det(
            dir.path(),
            &config(10, regime),
            &fake_digits(60),
            &fake_digits(20),
            1,
            |_, _| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(knob), "{err}");
    }
    // A long tail needs digits of every class.
    let mut source = fake_digits(60);
    source
        .labels
        .iter_mut()
        .filter(|l| **l == 7)
        .for_each(|l| *l = 3);
    let cfg = config(
        10,
        Regime {
            long_tail: 3.0,
            ..Regime::default()
        },
    );
    let err = RegimeFrames::new(&cfg, &source, SPLIT_TRAIN, 10, 1).unwrap_err();
    assert!(err.to_string().contains("class 7"), "{err}");
}

#[test]
fn config_reads_and_writes_as_json_and_names_unknown_fields() {
    let cfg = MnistDetConfig {
        holdout: 3,
        ..config(50, regimes()[4].clone())
    };
    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(serde_json::from_value::<MnistDetConfig>(json).unwrap(), cfg);
    let partial: MnistDetConfig =
        serde_json::from_str(r#"{"train": 50, "regime": {"clip_frames": 4}}"#).unwrap();
    assert_eq!(partial.regime.long_tail, 1.0);
    assert_eq!((partial.train, partial.val), (50, 1000));
    let err = serde_json::from_str::<MnistDetConfig>(r#"{"regime": {"emty_share": 0.1}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("emty_share"), "{err}");
}

#[test]
fn empty_frames_load_and_collate_to_empty_targets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        24,
        Regime {
            empty_share: 0.5,
            ..Regime::default()
        },
    );
    let written = write(dir.path(), &cfg, 2);
    let set = CocoDataset::open(
        &written.train,
        &dir.path().join("train"),
        CocoOptions::default(),
    )
    .unwrap();
    let empty: Vec<usize> = (0..set.len())
        .filter(|&i| set.annotations(i).unwrap().is_empty())
        .collect();
    assert_eq!(empty.len(), 12);
    for augment in [DetAugment::eval(96), DetAugment::train(96)] {
        let pipeline = DetectionPipeline::new(set.clone(), augment, 3).unwrap();
        let request = BatchRequest {
            epoch: 0,
            ids: empty.clone(),
        };
        let batch = collate(&pipeline, 0, &request).unwrap();
        assert_eq!(batch.targets.len(), empty.len());
        assert!(batch.images.iter().all(|v| v.is_finite()));
        // A mosaic takes partners' boxes; an empty image alone has none.
        let alone = batch.targets.iter().filter(|t| !t.mosaic);
        assert!(alone.clone().count() > 0);
        assert!(alone.clone().all(|t| t.annotations.is_empty()));
    }
}
