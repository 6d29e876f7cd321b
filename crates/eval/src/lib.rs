//! # isdet-eval
#![deny(missing_docs)]
