//! Budget-aware learning rates: the schedule is stretched or shrunk so
//! that it ends exactly at the budget's last optimiser step.

use crate::config::{LrConfig, LrSchedule};

/// The learning rate of optimiser step `step` (from 0) of `total`.
pub fn learning_rate(config: &LrConfig, step: u64, total: u64) -> f64 {
    let warmup = isdet_detector::warmup_factor(step, config.warmup_steps, config.warmup_start);
    // Progress runs from 0 at the first step to 1 at the last, so the last
    // step uses exactly the final rate.
    let t = if total <= 1 {
        1.0
    } else {
        (step as f64 / (total - 1) as f64).min(1.0)
    };
    let floor = config.final_fraction;
    let shape = match config.schedule {
        LrSchedule::Linear => 1.0 - (1.0 - floor) * t,
        LrSchedule::Cosine => {
            floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
        LrSchedule::Step => config
            .milestones
            .iter()
            .filter(|&&m| t >= m)
            .fold(1.0, |f, _| f * config.gamma),
        LrSchedule::Constant => 1.0,
    };
    config.base * warmup * shape
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(schedule: LrSchedule) -> LrConfig {
        LrConfig {
            base: 1.0,
            schedule,
            warmup_steps: 0,
            warmup_start: 0.1,
            final_fraction: 0.0,
            milestones: vec![0.5],
            gamma: 0.1,
        }
    }

    #[test]
    fn linear_decays_to_the_final_fraction_at_the_budget_end() {
        let c = cfg(LrSchedule::Linear);
        assert_eq!(learning_rate(&c, 0, 11), 1.0);
        assert!((learning_rate(&c, 5, 11) - 0.5).abs() < 1e-12);
        assert_eq!(learning_rate(&c, 10, 11), 0.0);
        // The same schedule shrunk to a 30% budget also ends at 0.
        assert_eq!(learning_rate(&c, 2, 3), 0.0);
    }

    #[test]
    fn cosine_step_constant_and_warmup() {
        assert!((learning_rate(&cfg(LrSchedule::Cosine), 5, 11) - 0.5).abs() < 1e-12);
        let step = cfg(LrSchedule::Step);
        assert_eq!(learning_rate(&step, 4, 11), 1.0);
        assert!((learning_rate(&step, 5, 11) - 0.1).abs() < 1e-12);
        assert_eq!(learning_rate(&cfg(LrSchedule::Constant), 9, 11), 1.0);
        let warm = LrConfig {
            warmup_steps: 10,
            ..cfg(LrSchedule::Constant)
        };
        assert!((learning_rate(&warm, 0, 100) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&warm, 5, 100) - 0.55).abs() < 1e-12);
        assert_eq!(learning_rate(&warm, 10, 100), 1.0);
    }
}
