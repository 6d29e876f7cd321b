//! # isdet-heuristics
//!
//! Turns one forward pass's outputs into one importance score per sample.
#![deny(missing_docs)]
