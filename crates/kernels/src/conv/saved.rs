//! The forward's patch matrices, kept for the backward.
//!
//! The weight gradient `dW = dY · colᵀ` needs the same patch matrix the
//! forward built; building it again (im2col) was about a twelfth of a
//! training step. A training forward keeps each unit's patch matrix here
//! and the backward takes it, uses it for `dW`, writes the input gradient's
//! `Wᵀ · dY` over it and hands the buffer back to a process-wide pool, so
//! that the next step's forward refills the same memory instead of
//! allocating (and zeroing) it again. The numbers are the same either way:
//! im2col is a copy.

use std::sync::Mutex;

use crate::par::lock;

/// Buffers kept in the pool at most (a network has one per GEMM
/// convolution; more only after the shapes changed, and those are dropped
/// smallest first).
const POOL_BUFFERS: usize = 256;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of `len` floats whose contents are unspecified (the caller
/// writes every element it reads): the smallest pooled one that holds
/// `len`, or a new one.
pub(super) fn take(len: usize) -> Vec<f32> {
    let mut pool = lock(&POOL);
    let best = pool
        .iter()
        .enumerate()
        .filter(|(_, b)| b.capacity() >= len)
        .min_by_key(|(_, b)| b.capacity())
        .map(|(i, _)| i);
    let mut buf = match best {
        Some(i) => pool.swap_remove(i),
        None => Vec::new(),
    };
    drop(pool);
    buf.resize(len, 0.0);
    buf
}

/// Returns a buffer to the pool.
pub(super) fn give_back(buf: Vec<f32>) {
    if buf.capacity() == 0 {
        return;
    }
    let mut pool = lock(&POOL);
    pool.push(buf);
    if pool.len() > POOL_BUFFERS {
        let smallest = (0..pool.len())
            .min_by_key(|&i| pool[i].capacity())
            .unwrap_or(0);
        pool.swap_remove(smallest);
    }
}

/// One forward pass's patch matrices: the units' matrices one after the
/// other, unit `u` at `u · per · ckk · HWo` (the units of the backward are
/// the same). A buffer no backward took goes back to the pool when the op
/// is dropped.
#[derive(Debug, Default)]
pub(super) struct SavedCols(Mutex<Option<Vec<f32>>>);

impl SavedCols {
    /// Keeps the patch matrices (replacing any an earlier forward of the
    /// same op kept).
    pub(super) fn put(&self, cols: Vec<f32>) {
        if let Some(old) = lock(&self.0).replace(cols) {
            give_back(old);
        }
    }

    /// Takes the patch matrices if they were kept with `len` floats.
    pub(super) fn take(&self, len: usize) -> Option<Vec<f32>> {
        match lock(&self.0).take() {
            Some(cols) if cols.len() == len => Some(cols),
            Some(other) => {
                give_back(other);
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
impl SavedCols {
    /// Whether patch matrices are kept.
    pub(super) fn kept(&self) -> bool {
        lock(&self.0).is_some()
    }
}

impl Drop for SavedCols {
    fn drop(&mut self) {
        if let Some(cols) = lock(&self.0).take() {
            give_back(cols);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_matrices_are_taken_once_and_only_at_their_length() {
        let saved = SavedCols::default();
        assert_eq!(saved.take(0), None, "nothing kept");
        saved.put(vec![1.0; 6]);
        assert_eq!(saved.take(5), None, "wrong length");
        saved.put(vec![2.0; 6]);
        assert_eq!(saved.take(6), Some(vec![2.0; 6]));
        assert_eq!(saved.take(6), None, "taken twice");
    }

    #[test]
    fn the_pool_hands_out_buffers_of_the_asked_length() {
        give_back(vec![3.0; 1000]);
        let a = take(10);
        assert_eq!(a.len(), 10);
        let b = take(5000);
        assert_eq!(b.len(), 5000);
        give_back(a);
        give_back(b);
    }
}
