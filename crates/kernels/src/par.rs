//! Work splitting for the fast CPU kernels: units of work on candle's own
//! worker pool, output buffers filled part by part on the threads that
//! compute them, and the kernels' access to their f32 inputs.

use std::cell::Cell;
use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Layout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// Runs `f(0)`, …, `f(n − 1)` on candle's CPU worker pool (the barrier pool
/// its element-wise ops use, so that no second pool competes with it for
/// the cores).
pub(crate) fn run_units<F: Fn(usize) + Sync>(n: usize, f: F) {
    if n <= 1 || pool_threads() <= 1 {
        (0..n).for_each(f);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n, |r| r.for_each(&f));
    }
}

/// Runs `f(0)`, …, `f(n − 1)` on candle's CPU worker pool with the units
/// fixed per thread: thread `t` runs units `t·c .. (t + 1)·c` in order
/// (`c = ⌈n / threads⌉`), and [`pool_thread`] tells a unit which thread
/// runs it. The assignment does not depend on timing, so sums that each
/// thread accumulates over its units, then added in thread order, come out
/// the same on every run. For units of equal cost (the convolutions' units
/// of whole images); [`run_units`] balances uneven ones.
pub(crate) fn run_units_static<F: Fn(usize) + Sync>(n: usize, f: F) {
    let threads = pool_threads();
    if n <= 1 || threads <= 1 || POOL_THREAD.get().is_some() {
        (0..n).for_each(f);
        return;
    }
    let per = n.div_ceil(threads);
    candle_core::utils::barrier_pool().execute(|t| {
        POOL_THREAD.set(Some(t));
        (t * per..n.min((t + 1) * per)).for_each(&f);
        POOL_THREAD.set(None);
    });
}

thread_local! {
    /// The pool thread index while [`run_units_static`] runs a unit here.
    static POOL_THREAD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index (`0 .. pool_threads()`) of the pool thread running the
/// current unit of [`run_units_static`]; 0 outside one (serial runs).
pub(crate) fn pool_thread() -> usize {
    POOL_THREAD.get().unwrap_or(0)
}

/// Threads of candle's CPU worker pool (its workers and the caller).
pub(crate) fn pool_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| candle_core::utils::barrier_pool().n_workers() + 1)
}

/// Splits `data` into consecutive chunks of `len` (the last may be shorter),
/// each behind its own lock so that units on different threads can each
/// take their own.
pub(crate) fn split_mut(data: &mut [f32], len: usize) -> Vec<Mutex<&mut [f32]>> {
    data.chunks_mut(len.max(1)).map(Mutex::new).collect()
}

/// Locks a unit's chunk (a poisoned lock only means another unit panicked,
/// which the pool propagates anyway).
pub(crate) fn lock<'a, T: ?Sized>(m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The f32 elements of a contiguous CPU tensor; an error naming the op
/// `name` for another dtype or a non-contiguous layout.
pub(crate) fn f32_slice<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    name: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{name}: only f32 is supported");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{name}: expects contiguous inputs"),
    }
}

/// A new buffer of `len` floats (with room for `capacity`), cut into
/// consecutive parts of `part_len` (the last may be shorter); unit `u`
/// runs `f(u, part)` on part `u`, zeroed first on the thread that runs it
/// (units fixed per thread, as [`run_units_static`] runs them).
///
/// `vec![0.0; len]` would zero the whole buffer on the calling thread
/// (glibc's `calloc` clears reused heap memory with one `memset`) while the
/// pool's other threads wait; here every thread clears its own parts, just
/// before it writes them.
pub(crate) fn fill_parts(
    len: usize,
    capacity: usize,
    part_len: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut buf: Vec<f32> = Vec::with_capacity(capacity.max(len));
    let spare = &mut buf.spare_capacity_mut()[..len];
    let parts: Vec<Mutex<&mut [MaybeUninit<f32>]>> =
        spare.chunks_mut(part_len.max(1)).map(Mutex::new).collect();
    let done: Vec<AtomicBool> = parts.iter().map(|_| AtomicBool::new(false)).collect();
    run_units_static(parts.len(), |u| {
        let mut part = lock(&parts[u]);
        let zeroed = zero(&mut part);
        done[u].store(true, Ordering::Release);
        f(u, zeroed);
    });
    // Every unit runs (a panic in one propagates before this point), but
    // initialising a part the pool skipped keeps this sound regardless.
    for (part, done) in parts.iter().zip(&done) {
        if !done.load(Ordering::Acquire) {
            zero(&mut lock(part));
        }
    }
    drop(parts);
    // SAFETY: the parts cover `spare` (the first `len` elements of the
    // spare capacity) and each was written in full by `zero`, by its unit
    // or by the loop above, so the first `len` elements are initialised.
    #[allow(unsafe_code)]
    unsafe {
        buf.set_len(len)
    };
    buf
}

/// Writes zeros over `part` and returns it as initialised floats.
fn zero(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    part.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just written, and `MaybeUninit<f32>` has
    // the size, alignment and layout of `f32`.
    #[allow(unsafe_code)]
    unsafe {
        &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_parts_gives_every_unit_its_zeroed_part() {
        for (len, part) in [(0, 4), (1, 4), (10, 3), (100_000, 16_384), (7, 7)] {
            let buf = fill_parts(len, len + 5, part, |u, p| {
                assert!(p.iter().all(|&v| v == 0.0), "part {u} not zeroed");
                assert!(p.len() == part || (u + 1) * part >= len);
                for (i, v) in p.iter_mut().enumerate() {
                    *v = (u * part + i) as f32;
                }
            });
            assert_eq!(buf.len(), len);
            assert!(buf.capacity() >= len + 5);
            assert!(buf.iter().enumerate().all(|(i, &v)| v == i as f32));
        }
    }
}
