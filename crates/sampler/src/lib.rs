//! # isdet-sampler
//!
//! Turns per-sample importance scores into step plans: which samples to
//! train on, with what weight. No candle dependency.
#![deny(missing_docs)]
