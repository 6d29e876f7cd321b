//! The Student-t quantile against table values, and the t-intervals the
//! reports print beside (or instead of) percentile-bootstrap intervals.

use isdet_eval::{
    paired_bootstrap, paired_t_interval, student_t_quantile, summarize_seeds, t_interval,
};
use rand::Rng;

/// (p, degrees of freedom, t): standard table values (R's `qt`); the two
/// at fractional df and p = 0.6 are Simpson integrations of the density.
const TABLE: [(f64, f64, f64); 12] = [
    (0.975, 1.0, 12.706_204_736),
    (0.975, 2.0, 4.302_652_730),
    (0.975, 3.0, 3.182_446_305),
    (0.975, 4.0, 2.776_445_105),
    (0.975, 9.0, 2.262_157_163),
    (0.975, 30.0, 2.042_272_456),
    (0.975, 1e6, 1.959_966_359),
    (0.95, 10.0, 1.812_461_123),
    (0.995, 5.0, 4.032_142_984),
    (0.9995, 1.0, 636.619_248_6),
    (0.75, 2.5, 0.785_013_683),
    (0.6, 100.0, 0.254_022_182),
];

#[test]
fn t_quantiles_match_the_tables() {
    for (p, df, want) in TABLE {
        let t = student_t_quantile(p, df).unwrap();
        assert!(
            ((t - want) / want).abs() < 1e-7,
            "t({p}, {df}) = {t}, table {want}"
        );
        // The distribution is symmetric about 0.
        let lower = student_t_quantile(1.0 - p, df).unwrap();
        assert!(
            (lower + t).abs() < 1e-9 * t,
            "t({}, {df}) = {lower}",
            1.0 - p
        );
    }
    assert_eq!(student_t_quantile(0.5, 3.0).unwrap(), 0.0);
}

/// One and two degrees of freedom have closed forms: tan(π(p − ½)) and
/// (2p − 1) / √(2p(1 − p)).
#[test]
fn t_quantiles_match_the_closed_forms() {
    for p in [0.01, 0.2, 0.55, 0.9, 0.999] {
        let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
        let two = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        let one_df = student_t_quantile(p, 1.0).unwrap();
        let two_df = student_t_quantile(p, 2.0).unwrap();
        assert!(
            (one_df - cauchy).abs() < 1e-9 * cauchy.abs().max(1.0),
            "{p}"
        );
        assert!((two_df - two).abs() < 1e-9 * two.abs().max(1.0), "{p}");
    }
}

#[test]
fn t_quantile_refuses_what_has_no_quantile() {
    for (p, df) in [
        (0.0, 3.0),
        (1.0, 3.0),
        (f64::NAN, 3.0),
        (0.9, 0.0),
        (0.9, -1.0),
        (0.9, f64::NAN),
        (0.9, f64::INFINITY),
    ] {
        let e = student_t_quantile(p, df).expect_err("no quantile");
        let text = e.to_string();
        assert!(text.contains("t quantile"), "{text}");
    }
}

#[test]
fn t_interval_is_the_mean_plus_minus_t_times_the_standard_error() {
    // Differences 1, 2, 3: mean 2, s = 1, half width t(0.975, 2) / √3.
    let i = paired_t_interval(&[3.0, 5.0, 7.0], &[2.0, 3.0, 4.0])
        .unwrap()
        .expect("three pairs");
    let half = 4.302_652_729_911_275 / 3f64.sqrt();
    assert_eq!(i.n, 3);
    assert!((i.mean - 2.0).abs() < 1e-12);
    assert!((i.low - (2.0 - half)).abs() < 1e-9, "{i:?}");
    assert!((i.high - (2.0 + half)).abs() < 1e-9, "{i:?}");
    // Equal differences have no spread: a point.
    let flat = t_interval(&[0.5, 0.5, 0.5]).unwrap().unwrap();
    assert_eq!((flat.low, flat.high), (0.5, 0.5));
}

#[test]
fn t_interval_needs_two_values_and_equal_lengths() {
    assert_eq!(t_interval(&[0.3]).unwrap(), None);
    assert_eq!(t_interval(&[]).unwrap(), None);
    assert_eq!(paired_t_interval(&[0.3], &[0.2]).unwrap(), None);
    assert!(paired_t_interval(&[0.3, 0.4], &[0.2]).is_err());
    assert!(t_interval(&[0.3, f64::NAN]).is_err());
    assert!(paired_t_interval(&[0.3, 0.4], &[0.2, f64::INFINITY]).is_err());
}

/// Two seeds whose differences agree in sign: the bootstrap says "P(better)
/// 1.0" with an interval spanning only the two values, while the t-interval
/// (t = 12.7 at one degree of freedom) spans zero, as two draws should.
#[test]
fn two_seeds_give_a_wide_t_interval_where_the_bootstrap_is_sure() {
    let (a, b) = ([0.46, 0.50], [0.30, 0.40]);
    let p = paired_bootstrap(&a, &b, 2_000, 0).unwrap();
    assert_eq!(p.prob_a_better, 1.0);
    assert!((p.low - 0.10).abs() < 1e-12 && (p.high - 0.16).abs() < 1e-12);
    let t = p.t.expect("two pairs give a t-interval");
    // Differences 0.16 and 0.10: s = 0.0424, standard error 0.03.
    let half = 12.706_204_736_174_7 * 0.03;
    assert!((t.low - (0.13 - half)).abs() < 1e-9, "{t:?}");
    assert!((t.high - (0.13 + half)).abs() < 1e-9, "{t:?}");
    assert!(t.low < 0.0);
    assert_eq!(Some(t), paired_t_interval(&a, &b).unwrap());
    let s = summarize_seeds(&[0.4, 0.5], 2_000, 0).unwrap();
    let t = s.t.expect("two seeds");
    assert!((t.high - t.low - 2.0 * 12.706_204_736_174_7 * 0.05).abs() < 1e-9);
    assert_eq!(summarize_seeds(&[0.4], 10, 0).unwrap().t, None);
}

/// Over many seeded experiments of three normal draws, the 95% t-interval
/// covers the true mean about 95% of the time; the percentile bootstrap
/// of the same draws covers far less (why reports prefer t below ten
/// seeds).
#[test]
fn t_intervals_cover_at_their_level_where_the_bootstrap_does_not() {
    let mut rng = isdet_base::seed::rng_for(&[35, 3]);
    let mut normal = move || {
        // Box–Muller.
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let v: f64 = rng.random();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let trials = 4_000;
    let (mut t_hits, mut boot_hits) = (0, 0);
    for k in 0..trials {
        let draws: Vec<f64> = (0..3).map(|_| 1.0 + normal()).collect();
        let t = t_interval(&draws).unwrap().unwrap();
        t_hits += usize::from(t.low <= 1.0 && 1.0 <= t.high);
        let b = summarize_seeds(&draws, 200, k).unwrap();
        boot_hits += usize::from(b.low <= 1.0 && 1.0 <= b.high);
    }
    let t_cover = t_hits as f64 / trials as f64;
    let boot_cover = boot_hits as f64 / trials as f64;
    assert!((0.935..=0.965).contains(&t_cover), "t covers {t_cover}");
    assert!(boot_cover < 0.85, "bootstrap covers {boot_cover}");
}
