//! RandAugment: each op against hand-computed results, the magnitude table,
//! determinism, composition with crop/flip/cutout, and validation.

use std::collections::HashSet;

use isdet_data::{ClsAugment, ImageBuffer, RandAugment, RandOp, augment_classification};

/// A 1-channel image from rows of values.
fn gray(rows: &[&[u8]]) -> ImageBuffer {
    let (h, w) = (rows.len(), rows[0].len());
    ImageBuffer {
        width: w,
        height: h,
        channels: 1,
        data: rows.concat(),
    }
}

fn applied(op: RandOp, mag: f32, img: &ImageBuffer) -> ImageBuffer {
    let mut out = img.clone();
    op.apply(mag, &mut out);
    out
}

/// A textured `w × h × c` image with every level in use.
fn texture(w: usize, h: usize, c: usize) -> ImageBuffer {
    ImageBuffer {
        width: w,
        height: h,
        channels: c,
        data: (0..w * h * c)
            .map(|i| ((i * 37 + (i / w) * 11) % 256) as u8)
            .collect(),
    }
}

/// 4×4 with distinct values 1..=16, row-major.
fn counting() -> ImageBuffer {
    ImageBuffer {
        width: 4,
        height: 4,
        channels: 1,
        data: (1..=16).collect(),
    }
}

#[test]
fn magnitudes_follow_torchvisions_bins() {
    let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
    assert!(close(RandOp::ShearX.magnitude(30, 28, 28), 0.3));
    assert!(close(RandOp::ShearY.magnitude(4, 28, 28), 0.04));
    assert!(close(RandOp::Rotate.magnitude(4, 28, 28), 4.0));
    assert!(close(RandOp::Rotate.magnitude(30, 28, 28), 30.0));
    assert!(close(RandOp::Brightness.magnitude(4, 28, 28), 0.12));
    assert!(close(RandOp::Sharpness.magnitude(30, 28, 28), 0.9));
    // 150/331 of the side at m = 30; 1.69 px at m = 4 on 28 px.
    assert!(close(
        RandOp::TranslateX.magnitude(30, 28, 10),
        150.0 / 331.0 * 28.0
    ));
    assert!(close(
        RandOp::TranslateY.magnitude(30, 28, 10),
        150.0 / 331.0 * 10.0
    ));
    assert!(close(
        RandOp::TranslateX.magnitude(4, 28, 28),
        150.0 / 331.0 * 28.0 * 4.0 / 30.0
    ));
    // Posterize: 8 - round(m / 7.5).
    let bits: Vec<f32> = [0, 3, 4, 11, 12, 26, 30]
        .iter()
        .map(|&m| RandOp::Posterize.magnitude(m, 28, 28))
        .collect();
    assert_eq!(bits, [8.0, 8.0, 7.0, 7.0, 6.0, 5.0, 4.0]);
    // Solarize: linspace(255, 0, 31).
    assert_eq!(RandOp::Solarize.magnitude(0, 28, 28), 255.0);
    assert!(close(RandOp::Solarize.magnitude(4, 28, 28), 221.0));
    assert_eq!(RandOp::Solarize.magnitude(30, 28, 28), 0.0);
    // Bins above 30 count as 30; magnitude-free ops give 0.
    assert_eq!(
        RandOp::Rotate.magnitude(99, 28, 28),
        RandOp::Rotate.magnitude(30, 28, 28)
    );
    for op in [RandOp::Identity, RandOp::AutoContrast, RandOp::Equalize] {
        assert_eq!(op.magnitude(17, 28, 28), 0.0);
        assert!(!op.is_signed());
    }
    assert!(!RandOp::Posterize.is_signed() && !RandOp::Solarize.is_signed());
    assert!(RandOp::ShearX.is_signed() && RandOp::Contrast.is_signed());
}

#[test]
fn solarize_inverts_values_at_or_above_the_threshold() {
    let img = gray(&[&[0, 100, 220, 221, 255]]);
    let t = RandOp::Solarize.magnitude(4, 5, 1);
    assert_eq!(
        applied(RandOp::Solarize, t, &img).data,
        [0, 100, 220, 34, 0]
    );
    // At m = 0 only white flips (as torchvision: threshold 255).
    let t0 = RandOp::Solarize.magnitude(0, 5, 1);
    assert_eq!(
        applied(RandOp::Solarize, t0, &img).data,
        [0, 100, 220, 221, 0]
    );
    // At m = 30 everything flips.
    let t30 = RandOp::Solarize.magnitude(30, 5, 1);
    assert_eq!(
        applied(RandOp::Solarize, t30, &img).data,
        [255, 155, 35, 34, 0]
    );
}

#[test]
fn posterize_keeps_the_top_bits() {
    let img = gray(&[&[0x00, 0x0F, 0x10, 0x9F, 0xFF, 0x01]]);
    assert_eq!(
        applied(RandOp::Posterize, 4.0, &img).data,
        [0x00, 0x00, 0x10, 0x90, 0xF0, 0x00]
    );
    assert_eq!(
        applied(RandOp::Posterize, 7.0, &img).data,
        [0x00, 0x0E, 0x10, 0x9E, 0xFE, 0x00]
    );
    assert_eq!(applied(RandOp::Posterize, 8.0, &img), img);
    assert_eq!(applied(RandOp::Posterize, 0.0, &img).data, [0; 6]);
}

#[test]
fn translate_shifts_by_whole_pixels_with_zero_fill() {
    let img = counting();
    // Right by 1: column 0 is filled with 0.
    assert_eq!(
        applied(RandOp::TranslateX, 1.0, &img).data,
        [0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15]
    );
    // -2.7 truncates to left by 2, as torchvision's int().
    assert_eq!(
        applied(RandOp::TranslateX, -2.7, &img).data,
        [3, 4, 0, 0, 7, 8, 0, 0, 11, 12, 0, 0, 15, 16, 0, 0]
    );
    // Down by 1.
    assert_eq!(
        applied(RandOp::TranslateY, 1.9, &img).data,
        [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
    // Arazo's M = 4 on 28 px: 1.69 px, i.e. a 1-pixel shift.
    let mut digit = ImageBuffer::new(28, 28, 1);
    digit.data[14 * 28 + 10] = 255;
    let m = RandOp::TranslateX.magnitude(4, 28, 28);
    let moved = applied(RandOp::TranslateX, m, &digit);
    assert_eq!(moved.data[14 * 28 + 11], 255);
    assert_eq!(moved.data.iter().filter(|&&v| v > 0).count(), 1);
}

#[test]
fn shear_moves_rows_in_proportion_to_their_distance_from_the_top() {
    let img = counting();
    // Output (x, y) samples input (floor(x + 0.75 + 0.5 y), y): rows move
    // left by 0, 1, 1 and 2 pixels.
    assert_eq!(
        applied(RandOp::ShearX, 0.5, &img).data,
        [1, 2, 3, 4, 6, 7, 8, 0, 10, 11, 12, 0, 15, 16, 0, 0]
    );
    // ShearY is the same on columns: they move up by 0, 1, 1 and 2.
    assert_eq!(
        applied(RandOp::ShearY, 0.5, &img).data,
        [1, 6, 7, 12, 5, 10, 11, 16, 9, 14, 15, 0, 13, 0, 0, 0]
    );
}

#[test]
fn rotate_by_right_angles_permutes_pixels_and_small_angles_turn_counter_clockwise() {
    let img = counting();
    let r90 = applied(RandOp::Rotate, 90.0, &img);
    // Counter-clockwise: output (x, y) is input (3 - y, x); the top-right
    // corner comes to the top-left.
    for y in 0..4 {
        for x in 0..4 {
            assert_eq!(r90.data[y * 4 + x], img.data[x * 4 + (3 - y)], "({x},{y})");
        }
    }
    assert_eq!(&r90.data[..4], &[4, 8, 12, 16]);
    assert_eq!(applied(RandOp::Rotate, -90.0, &r90), img);
    let mut four = img.clone();
    for _ in 0..4 {
        RandOp::Rotate.apply(90.0, &mut four);
    }
    assert_eq!(four, img);
    let r180 = applied(RandOp::Rotate, 180.0, &img);
    let reversed: Vec<u8> = img.data.iter().rev().copied().collect();
    assert_eq!(r180.data, reversed);

    // 30° on 5×5: the centre stays, and a pixel 2 right of the centre moves
    // to (2 + 2 cos 30°, 2 - 2 sin 30°) ≈ (3.73, 1), i.e. pixel (4, 1), up
    // as counter-clockwise means with y pointing down.
    let mut small = ImageBuffer::new(5, 5, 1);
    small.data[2 * 5 + 2] = 200;
    small.data[2 * 5 + 4] = 100;
    let rot = applied(RandOp::Rotate, 30.0, &small);
    assert_eq!(rot.data[2 * 5 + 2], 200);
    assert_eq!(rot.data[5 + 4], 100);
    assert_eq!(rot.data[2 * 5 + 4], 0);
    let rot = applied(RandOp::Rotate, -30.0, &small);
    assert_eq!(rot.data[3 * 5 + 4], 100, "clockwise moves it down");
}

#[test]
fn geometric_and_enhance_ops_at_magnitude_zero_are_the_identity() {
    let img = texture(28, 28, 1);
    for op in [
        RandOp::Identity,
        RandOp::ShearX,
        RandOp::ShearY,
        RandOp::TranslateX,
        RandOp::TranslateY,
        RandOp::Rotate,
        RandOp::Brightness,
        RandOp::Contrast,
        RandOp::Sharpness,
        RandOp::Posterize,
    ] {
        let m = op.magnitude(0, 28, 28);
        assert_eq!(applied(op, m, &img), img, "{op:?}");
        if op.is_signed() {
            assert_eq!(applied(op, -m, &img), img, "{op:?} negated");
        }
    }
    let rgb = texture(9, 7, 3);
    assert_eq!(applied(RandOp::Color, 0.0, &rgb), rgb);
}

#[test]
fn brightness_contrast_and_sharpness_blend_as_torchvision() {
    let img = gray(&[&[0, 100, 200]]);
    assert_eq!(applied(RandOp::Brightness, 0.5, &img).data, [0, 150, 255]);
    assert_eq!(applied(RandOp::Brightness, -0.5, &img).data, [0, 50, 100]);
    // Contrast blends with the mean grey level, 100 here.
    let img = gray(&[&[50, 100], &[150, 100]]);
    assert_eq!(
        applied(RandOp::Contrast, 1.0, &img).data,
        [0, 100, 200, 100]
    );
    assert_eq!(
        applied(RandOp::Contrast, -0.5, &img).data,
        [75, 100, 125, 100]
    );
    // Sharpness: the centre's smoothed value is round(5·130/13) = 50; factor
    // 2 gives 2·130 - 50 = 210, factor 0 gives the smoothed 50; the border
    // is kept.
    let img = gray(&[&[0, 0, 0], &[0, 130, 0], &[0, 0, 0]]);
    assert_eq!(
        applied(RandOp::Sharpness, 1.0, &img).data,
        [0, 0, 0, 0, 210, 0, 0, 0, 0]
    );
    assert_eq!(
        applied(RandOp::Sharpness, -1.0, &img).data,
        [0, 0, 0, 0, 50, 0, 0, 0, 0]
    );
    // Too small to have an interior: unchanged.
    let tiny = gray(&[&[10, 200], &[30, 40]]);
    assert_eq!(applied(RandOp::Sharpness, 0.9, &tiny), tiny);
}

#[test]
fn color_desaturates_rgb_and_leaves_grayscale_alone() {
    let red = ImageBuffer {
        width: 1,
        height: 1,
        channels: 3,
        data: vec![255, 0, 0],
    };
    // Factor 0: the luma 0.2989 · 255 = 76.2 in every channel.
    assert_eq!(applied(RandOp::Color, -1.0, &red).data, [76, 76, 76]);
    // Factor 2: 2·v - luma, clamped.
    assert_eq!(applied(RandOp::Color, 1.0, &red).data, [255, 0, 0]);
    let img = texture(6, 6, 1);
    assert_eq!(applied(RandOp::Color, -0.9, &img), img);
    assert!(!RandOp::candidates(1).contains(&RandOp::Color));
    assert_eq!(RandOp::candidates(1).len(), 13);
    assert_eq!(RandOp::candidates(3), &RandOp::ALL[..]);
}

#[test]
fn autocontrast_stretches_each_channel_to_the_full_range() {
    let img = gray(&[&[51, 68], &[85, 102]]);
    assert_eq!(
        applied(RandOp::AutoContrast, 0.0, &img).data,
        [0, 85, 170, 255]
    );
    let flat = gray(&[&[7, 7], &[7, 7]]);
    assert_eq!(applied(RandOp::AutoContrast, 0.0, &flat), flat);
    // Per channel: R 10..20, G 0..255 (already full), B constant.
    let rgb = ImageBuffer {
        width: 2,
        height: 1,
        channels: 3,
        data: vec![10, 0, 5, 20, 255, 5],
    };
    assert_eq!(
        applied(RandOp::AutoContrast, 0.0, &rgb).data,
        [0, 0, 5, 255, 255, 5]
    );
}

#[test]
fn equalize_follows_pils_lookup_table() {
    // 32×32, half 50 and half 200: step = ⌊512 / 255⌋ = 2; 50 maps to
    // ⌊(0 + 1) / 2⌋ = 0 and 200 to min(255, ⌊(512 + 1) / 2⌋) = 255.
    let mut two = ImageBuffer::new(32, 32, 1);
    for (i, v) in two.data.iter_mut().enumerate() {
        *v = if i < 512 { 50 } else { 200 };
    }
    let eq = applied(RandOp::Equalize, 0.0, &two);
    assert!(eq.data[..512].iter().all(|&v| v == 0));
    assert!(eq.data[512..].iter().all(|&v| v == 255));
    // 28×28 with 300 × 10, 300 × 20, 184 × 30: step = ⌊600 / 255⌋ = 2;
    // 10 → 0, 20 → ⌊301 / 2⌋ = 150, 30 → min(255, ⌊601 / 2⌋) = 255.
    let mut three = ImageBuffer::new(28, 28, 1);
    for (i, v) in three.data.iter_mut().enumerate() {
        *v = match i {
            0..300 => 10,
            300..600 => 20,
            _ => 30,
        };
    }
    let eq = applied(RandOp::Equalize, 0.0, &three);
    assert_eq!((eq.data[0], eq.data[300], eq.data[600]), (0, 150, 255));
    // Fewer than 255 pixels below the top level: step 0, unchanged (PIL).
    let small = gray(&[&[10, 20], &[30, 40]]);
    assert_eq!(applied(RandOp::Equalize, 0.0, &small), small);
}

#[test]
fn draws_are_n_ops_from_the_candidates_and_apply_composes_them() {
    let ra = RandAugment { n: 3, m: 9 };
    let img = texture(28, 28, 1);
    let mut seen = HashSet::new();
    let mut signs = HashSet::new();
    for id in 0..200 {
        let ops = ra.draw(5, 0, id, 28, 28, 1);
        assert_eq!(ops.len(), 3);
        for &(op, mag) in &ops {
            assert!(RandOp::candidates(1).contains(&op));
            let unsigned = op.magnitude(9, 28, 28);
            assert!(mag == unsigned || (op.is_signed() && mag == -unsigned));
            seen.insert(op);
            if op.is_signed() {
                signs.insert(mag > 0.0);
            }
        }
        if id < 20 {
            let mut manual = img.clone();
            for &(op, mag) in &ops {
                op.apply(mag, &mut manual);
            }
            assert_eq!(ra.apply(5, 0, id, &img), manual);
        }
    }
    assert_eq!(seen.len(), 13, "every grayscale op is drawn: {seen:?}");
    assert_eq!(signs.len(), 2, "both signs are drawn");
    let rgb_ops: HashSet<RandOp> = (0..300)
        .flat_map(|id| ra.draw(5, 0, id, 8, 8, 3))
        .map(|(op, _)| op)
        .collect();
    assert_eq!(rgb_ops.len(), 14);
}

#[test]
fn rand_augment_is_a_pure_function_of_seed_epoch_and_id() {
    let aug = ClsAugment {
        rand_augment: Some(RandAugment::ARAZO),
        ..ClsAugment::standard(28, 1)
    };
    let img = texture(28, 28, 1);
    let run = |seed, epoch, id| {
        let mut out = vec![0.0; 28 * 28];
        augment_classification(&aug, seed, epoch, id, &img, &mut out);
        out
    };
    let mut differ = 0;
    for id in 0..16 {
        assert_eq!(run(3, 1, id), run(3, 1, id));
        let ra = RandAugment::ARAZO;
        assert_eq!(ra.draw(3, 1, id, 28, 28, 1), ra.draw(3, 1, id, 28, 28, 1));
        differ += usize::from(ra.draw(3, 1, id, 28, 28, 1) != ra.draw(3, 2, id, 28, 28, 1));
        differ += usize::from(run(3, 1, id) != run(3, 2, id));
    }
    assert!(differ >= 28, "epochs should draw differently ({differ}/32)");
}

#[test]
fn rand_augment_runs_before_unchanged_crop_flip_and_cutout() {
    // Its own stream: with RandAugment on, the output is the old pipeline
    // applied to the RandAugment-ed image, crop, flip and cutout included.
    for channels in [1, 3] {
        let plain = ClsAugment {
            cutout: 6,
            ..ClsAugment::standard(32, channels)
        };
        let ra = RandAugment { n: 2, m: 12 };
        let with = ClsAugment {
            rand_augment: Some(ra),
            ..plain.clone()
        };
        let img = texture(28, 28, channels);
        let n = channels * 32 * 32;
        for id in 0..12 {
            let mut a = vec![0.0; n];
            let mut b = vec![0.0; n];
            augment_classification(&with, 9, 4, id, &img, &mut a);
            augment_classification(&plain, 9, 4, id, &ra.apply(9, 4, id, &img), &mut b);
            assert_eq!(a, b);
            assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}

#[test]
fn outputs_stay_in_the_unit_interval_at_full_strength() {
    let aug = ClsAugment {
        rand_augment: Some(RandAugment { n: 4, m: 30 }),
        ..ClsAugment::eval(28, 3)
    };
    let img = texture(28, 28, 3);
    let mut out = vec![0.0; 3 * 28 * 28];
    for id in 0..50 {
        augment_classification(&aug, 1, 0, id, &img, &mut out);
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)), "id {id}");
    }
}

#[test]
fn bad_inputs_do_not_panic() {
    // A buffer that does not match its shape, an empty image, wild and
    // non-finite magnitudes.
    let broken = ImageBuffer {
        width: 5,
        height: 5,
        channels: 1,
        data: vec![1, 2, 3],
    };
    let empty = ImageBuffer::new(0, 0, 1);
    let img = texture(6, 5, 1);
    for op in RandOp::ALL {
        assert_eq!(applied(op, 0.3, &broken), broken);
        assert_eq!(applied(op, 0.3, &empty), empty);
        assert_eq!(applied(op, f32::NAN, &img), img);
        for mag in [1e30, -1e30, 300.0, -300.0] {
            let out = applied(op, mag, &img);
            assert_eq!(out.data.len(), img.data.len());
        }
    }
    let aug = ClsAugment {
        rand_augment: Some(RandAugment { n: 3, m: 30 }),
        ..ClsAugment::eval(8, 1)
    };
    let mut out = vec![0.5; 64];
    augment_classification(&aug, 0, 0, 0, &empty, &mut out);
    assert!(out.iter().all(|&v| v == 0.0));
}

#[test]
fn validate_rejects_bad_n_and_m() {
    assert!(RandAugment::ARAZO.validate().is_ok());
    assert_eq!(RandAugment::ARAZO, RandAugment { n: 2, m: 4 });
    assert!(RandAugment { n: 1, m: 0 }.validate().is_ok());
    assert!(RandAugment { n: 16, m: 30 }.validate().is_ok());
    for bad in [
        RandAugment { n: 0, m: 4 },
        RandAugment { n: 17, m: 4 },
        RandAugment { n: 2, m: 31 },
        RandAugment {
            n: usize::MAX,
            m: u32::MAX,
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        let aug = ClsAugment {
            rand_augment: Some(bad),
            ..ClsAugment::standard(28, 1)
        };
        assert!(aug.validate().is_err(), "{bad:?}");
    }
    assert_eq!(ClsAugment::eval(28, 1).rand_augment, None);
    assert_eq!(ClsAugment::standard(28, 3).rand_augment, None);
    let ok = ClsAugment {
        rand_augment: Some(RandAugment::ARAZO),
        ..ClsAugment::standard(28, 1)
    };
    assert!(ok.validate().is_ok());
}
