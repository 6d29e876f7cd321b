//! The score table: compact records, exact statistics, rejected bad scores.

use isdet_sampler::{SamplerError, ScoreField, ScoreRecord, ScoreTable};

#[test]
fn record_fits_in_32_bytes() {
    assert!(std::mem::size_of::<ScoreRecord>() <= 32);
    assert_eq!(std::mem::size_of::<ScoreRecord>(), 24);
}

#[test]
fn update_tracks_last_mean_ema_visits_and_age() {
    let mut table = ScoreTable::with_ema_momentum(3, 0.5).unwrap();
    table.update(&[1], &[2.0], 4).unwrap();
    table.update(&[1], &[4.0], 6).unwrap();
    table.update(&[1], &[0.0], 9).unwrap();
    let r = table.get(1).unwrap();
    assert_eq!(r.last(), 0.0);
    assert_eq!(r.mean(), 2.0);
    // EMA: 2 → 0.5·2 + 0.5·4 = 3 → 0.5·3 + 0.5·0 = 1.5
    assert_eq!(r.ema(), 1.5);
    assert_eq!(r.visits(), 3);
    assert_eq!(r.last_step(), Some(9));
    assert_eq!(table.age(1, 20), Some(11));
    assert_eq!(
        (
            r.get(ScoreField::Last),
            r.get(ScoreField::Mean),
            r.get(ScoreField::Ema)
        ),
        (0.0, 2.0, 1.5)
    );
    assert_eq!(table.seen(), 1);
    assert!(!table.get(0).unwrap().is_seen());
    assert_eq!(table.age(0, 20), None);
}

#[test]
fn invalid_scores_name_the_sample_and_change_nothing() {
    let mut table = ScoreTable::new(5).unwrap();
    table.update(&[0], &[1.0], 0).unwrap();
    let before = table.clone();
    for bad in [f32::NAN, -0.5, f32::INFINITY, f32::NEG_INFINITY] {
        let err = table.update(&[0, 3], &[2.0, bad], 1).unwrap_err();
        assert!(
            matches!(err, SamplerError::InvalidScore { id: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("sample 3"), "{err}");
        assert_eq!(table, before, "a rejected update must change nothing");
    }
}

#[test]
fn out_of_range_ids_and_length_mismatches_are_errors() {
    let mut table = ScoreTable::new(5).unwrap();
    assert_eq!(
        table.update(&[5], &[1.0], 0),
        Err(SamplerError::IdOutOfRange { id: 5, len: 5 })
    );
    assert!(matches!(
        table.update(&[0, 1], &[1.0], 0),
        Err(SamplerError::LengthMismatch {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert_eq!(table.seen(), 0);
}

#[test]
fn invalid_table_parameters_are_errors() {
    assert!(matches!(
        ScoreTable::new(0),
        Err(SamplerError::InvalidParameter(
            isdet_sampler::InvalidParameter { name: "len", .. }
        ))
    ));
    for momentum in [1.0, -0.1, f32::NAN] {
        assert!(matches!(
            ScoreTable::with_ema_momentum(4, momentum),
            Err(SamplerError::InvalidParameter(
                isdet_sampler::InvalidParameter {
                    name: "ema_momentum",
                    ..
                }
            ))
        ));
    }
}
