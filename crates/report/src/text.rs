//! How the report writes numbers and cells: one place, so that every
//! table rounds, signs and brackets alike.

use isdet_eval::{FEW_SEEDS, PairedComparison, TInterval};

/// Escapes what would break a table cell.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A metric value, to four decimals.
pub fn metric(v: f64) -> String {
    format!("{v:.4}")
}

/// A count, without decimals.
pub fn count(v: f64) -> String {
    format!("{v:.0}")
}

/// A share as a percentage with one decimal, `–` when absent.
pub fn share(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |s| format!("{:.1}%", s * 100.0))
}

/// An interval as `[low, high]` through `fmt`, `–` when absent.
pub fn bracket(interval: Option<[f64; 2]>, fmt: impl Fn(f64) -> String) -> String {
    interval.map_or_else(
        || "–".into(),
        |[lo, hi]| format!("[{}, {}]", fmt(lo), fmt(hi)),
    )
}

/// The ends of a t-interval, when there is one.
pub fn ends(t: Option<&TInterval>) -> Option<[f64; 2]> {
    t.map(|t| [t.low, t.high])
}

/// A signed metric difference, to four decimals.
pub fn delta(v: f64) -> String {
    format!("{v:+.4}")
}

/// Whether a table of rows over these seed counts shows the bootstrap
/// columns: only where some row has at least [`FEW_SEEDS`] seeds.
pub fn shows_bootstrap(seed_counts: impl IntoIterator<Item = usize>) -> bool {
    seed_counts.into_iter().any(|n| n >= FEW_SEEDS)
}

/// The cells of a paired difference over `n` pairs: Δ, its t-interval,
/// and, when `bootstrap`, the bootstrap interval and P(better) (both `–`
/// for rows of fewer than [`FEW_SEEDS`] pairs, where they mislead).
pub fn paired_cells(p: &PairedComparison, n: usize, bootstrap: bool) -> String {
    let mut cells = format!(
        "{} | {}",
        delta(p.mean_difference),
        bracket(ends(p.t.as_ref()), delta)
    );
    if bootstrap {
        if n >= FEW_SEEDS {
            cells.push_str(&format!(
                " | {} | {:.3}",
                bracket(Some([p.low, p.high]), delta),
                p.prob_a_better
            ));
        } else {
            cells.push_str(" | – | –");
        }
    }
    cells
}

/// The header cells that [`paired_cells`] fills.
pub fn paired_header(what: &str, bootstrap: bool) -> String {
    let extra = if bootstrap {
        " | bootstrap 95% | P(better)"
    } else {
        ""
    };
    format!("{what} | 95% t-interval{extra}")
}

/// The sentence under a table of intervals: which interval it gives and,
/// when no row has enough seeds, that the bootstrap is left out and why.
pub fn interval_note(bootstrap: bool, paired: bool) -> String {
    let kind = if paired {
        "paired Student-t intervals of the mean difference"
    } else {
        "Student-t intervals of the mean over seeds"
    };
    let rest = match (bootstrap, paired) {
        (false, _) => format!(
            "No bootstrap interval{} is given: from fewer than {FEW_SEEDS} seeds it under-covers.",
            if paired { " or P(better)" } else { "" }
        ),
        (true, true) => format!(
            "Rows with at least {FEW_SEEDS} seeds also give the percentile-bootstrap interval \
             and P(better), the share of bootstrap resamples with Δ > 0 (\"–\" for rows with \
             fewer seeds, where they under-cover)."
        ),
        (true, false) => format!(
            "Rows with at least {FEW_SEEDS} seeds also give the percentile-bootstrap interval \
             (\"–\" for rows with fewer seeds, where it under-covers)."
        ),
    };
    format!("Intervals: 95% {kind} (n − 1 degrees of freedom). {rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paired(n: usize) -> PairedComparison {
        PairedComparison {
            mean_difference: 0.13,
            low: 0.1,
            high: 0.16,
            prob_a_better: 1.0,
            t: Some(TInterval {
                n,
                mean: 0.13,
                low: -0.2512,
                high: 0.5112,
            }),
        }
    }

    #[test]
    fn few_pairs_print_the_t_interval_and_no_certainty() {
        assert_eq!(
            paired_cells(&paired(2), 2, false),
            "+0.1300 | [-0.2512, +0.5112]"
        );
        assert_eq!(
            paired_cells(&paired(2), 2, true),
            "+0.1300 | [-0.2512, +0.5112] | – | –"
        );
        assert_eq!(
            paired_cells(&paired(12), 12, true),
            "+0.1300 | [-0.2512, +0.5112] | [+0.1000, +0.1600] | 1.000"
        );
        let one = PairedComparison {
            t: None,
            ..paired(1)
        };
        assert_eq!(paired_cells(&one, 1, false), "+0.1300 | –");
    }

    #[test]
    fn bootstrap_columns_only_with_enough_seeds() {
        assert!(!shows_bootstrap([2, 3, 9]));
        assert!(shows_bootstrap([2, 10]));
        assert!(!shows_bootstrap([]));
        assert_eq!(
            paired_header("Δ final AP", true),
            "Δ final AP | 95% t-interval | bootstrap 95% | P(better)"
        );
        assert!(interval_note(false, true).contains("or P(better) is given"));
        assert!(!interval_note(false, false).contains("P(better)"));
        assert!(interval_note(true, false).contains("at least 10 seeds"));
    }

    #[test]
    fn cells_escape_pipes() {
        assert_eq!(cell("a|b"), "a\\|b");
    }
}
