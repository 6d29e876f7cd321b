//! The one error type of `isdet-heuristics`.

/// Everything that can go wrong while scoring a batch.
///
/// Every variant names the input field, parameter or sample it is about, so
/// that a training loop can report the defect without a debugger. No function
/// of this crate panics on bad input: it returns one of these instead.
#[derive(Debug, thiserror::Error)]
pub enum HeuristicsError {
    /// An input has the wrong shape or length.
    #[error("{field}: expected shape {expected}, found {found}")]
    ShapeMismatch {
        /// The input field, as named in [`ForwardOutputs`](crate::ForwardOutputs).
        field: &'static str,
        /// The shape required, e.g. `[16, 189, 5]`.
        expected: String,
        /// The shape given.
        found: String,
    },
    /// An input value is NaN, infinite or outside its valid range.
    #[error("{field}[{index}] = {value} is invalid: expected {expected}")]
    InvalidValue {
        /// The input field the value comes from.
        field: &'static str,
        /// The flat index of the value in that field.
        index: usize,
        /// The rejected value.
        value: f64,
        /// The valid range, in words.
        expected: &'static str,
    },
    /// A configuration parameter is outside its valid range.
    #[error(transparent)]
    InvalidParameter(#[from] isdet_base::InvalidParameter),
    /// The heuristic needs an input the caller did not give.
    #[error("heuristic `{heuristic}` needs `{field}`: {why}")]
    MissingInput {
        /// The heuristic's name.
        heuristic: &'static str,
        /// The missing input field.
        field: &'static str,
        /// What the input is needed for.
        why: &'static str,
    },
    /// The heuristic is not defined for these outputs.
    #[error("heuristic `{heuristic}` is not defined for {activation} outputs: {why}")]
    Unsupported {
        /// The heuristic's name.
        heuristic: &'static str,
        /// The activation of the outputs (`softmax` or `sigmoid`).
        activation: &'static str,
        /// Why, and what to use instead.
        why: &'static str,
    },
    /// A sample id is not below the number of samples the state was made for.
    #[error("sample id {id} is out of range for a state over {len} samples")]
    IdOutOfRange {
        /// The rejected id.
        id: usize,
        /// The number of samples.
        len: usize,
    },
    /// Reading a tensor failed (e.g. a dtype that cannot become `f32`).
    #[error("reading tensor `{field}` failed: {source}")]
    Tensor {
        /// The input field of the tensor.
        field: &'static str,
        /// candle's error.
        source: candle_core::Error,
    },
}

/// The result type of `isdet-heuristics`.
pub type Result<T, E = HeuristicsError> = std::result::Result<T, E>;

/// The range check of a configuration parameter (one implementation, in
/// isdet-base).
pub(crate) use isdet_base::require;
