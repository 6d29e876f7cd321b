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
/// before it writes them. Units that write every element of their part
/// should use [`fill_parts_uninit`], which skips the zeroing.
pub(crate) fn fill_parts(
    len: usize,
    capacity: usize,
    part_len: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    fill_parts_uninit_static(len, capacity, part_len, |u, part| {
        let part = zeroed(part);
        f(u, part);
        part
    })
}

/// [`fill_parts`] for units that write every element of their part: unit
/// `u` gets its part uninitialised and returns the same memory as
/// initialised floats, written through [`write_all`], [`init_chunks`],
/// [`zeroed`] or another writer that initialises all of it. No part is
/// zeroed first, which saves one pass of memory writes over the buffer.
/// The units are not fixed per thread: a thread that is ahead takes the
/// next one (the parts are disjoint, so the result does not depend on
/// which thread wrote which).
///
/// # Panics
///
/// If a unit returns a slice other than its own part.
pub(crate) fn fill_parts_uninit(
    len: usize,
    capacity: usize,
    part_len: usize,
    f: impl for<'p> Fn(usize, &'p mut [MaybeUninit<f32>]) -> &'p mut [f32] + Sync,
) -> Vec<f32> {
    fill_parts_scheduled(len, capacity, part_len, false, f)
}

/// [`fill_parts_uninit`] with the units fixed per thread, as
/// [`run_units_static`] runs them (for units that accumulate into a
/// per-thread sum through [`pool_thread`]). [`fill_parts_uninit`] lets a
/// thread that is ahead take the next unit instead, so that no thread
/// waits at the end for one that started late.
pub(crate) fn fill_parts_uninit_static(
    len: usize,
    capacity: usize,
    part_len: usize,
    f: impl for<'p> Fn(usize, &'p mut [MaybeUninit<f32>]) -> &'p mut [f32] + Sync,
) -> Vec<f32> {
    fill_parts_scheduled(len, capacity, part_len, true, f)
}

fn fill_parts_scheduled(
    len: usize,
    capacity: usize,
    part_len: usize,
    fixed: bool,
    f: impl for<'p> Fn(usize, &'p mut [MaybeUninit<f32>]) -> &'p mut [f32] + Sync,
) -> Vec<f32> {
    let mut buf: Vec<f32> = Vec::with_capacity(capacity.max(len));
    let spare = &mut buf.spare_capacity_mut()[..len];
    let parts: Vec<Mutex<&mut [MaybeUninit<f32>]>> =
        spare.chunks_mut(part_len.max(1)).map(Mutex::new).collect();
    let done: Vec<AtomicBool> = parts.iter().map(|_| AtomicBool::new(false)).collect();
    let unit = |u: usize| {
        let mut part = lock(&parts[u]);
        let (at, n) = (part.as_ptr() as *const f32, part.len());
        let filled = f(u, &mut part);
        // A `&mut [f32]` over exactly this memory means that every element
        // of the part is initialised.
        assert!(
            filled.as_ptr() == at && filled.len() == n,
            "unit {u} returned another slice than its part"
        );
        done[u].store(true, Ordering::Release);
    };
    if fixed {
        run_units_static(parts.len(), unit);
    } else {
        run_units(parts.len(), unit);
    }
    // Every unit runs (a panic in one propagates before this point), but
    // initialising a part the pool skipped keeps this sound regardless.
    for (part, done) in parts.iter().zip(&done) {
        if !done.load(Ordering::Acquire) {
            zeroed(&mut lock(part));
        }
    }
    drop(parts);
    // SAFETY: the parts cover `spare` (the first `len` elements of the
    // spare capacity) and each is initialised: its unit returned a
    // `&mut [f32]` over exactly its memory, or the loop above zeroed it.
    #[allow(unsafe_code)]
    unsafe {
        buf.set_len(len)
    };
    buf
}

/// Writes zeros over `part` and returns it as initialised floats.
pub(crate) fn zeroed(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    part.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just written.
    unsafe_assume_init(part)
}

/// Writes `src` over `dst` (of the same length) and returns `dst` as
/// initialised floats.
///
/// # Panics
///
/// If `src` does not have exactly `dst.len()` items.
pub(crate) fn write_all(
    dst: &mut [MaybeUninit<f32>],
    src: impl ExactSizeIterator<Item = f32>,
) -> &mut [f32] {
    assert_eq!(src.len(), dst.len(), "write_all: lengths differ");
    let mut written = 0;
    for (d, v) in dst.iter_mut().zip(src) {
        d.write(v);
        written += 1;
    }
    assert_eq!(written, dst.len(), "write_all: the source ended early");
    // SAFETY: the loop wrote all `dst.len()` elements (counted).
    unsafe_assume_init(dst)
}

/// Initialises `dst` chunk by chunk (of `chunk` elements, the last may be
/// shorter): `f(i, chunk_i)` must return chunk `i` itself, initialised.
///
/// # Panics
///
/// If `f` returns a slice other than the chunk it was given.
pub(crate) fn init_chunks(
    dst: &mut [MaybeUninit<f32>],
    chunk: usize,
    mut f: impl for<'c> FnMut(usize, &'c mut [MaybeUninit<f32>]) -> &'c mut [f32],
) -> &mut [f32] {
    for (i, c) in dst.chunks_mut(chunk.max(1)).enumerate() {
        let (at, n) = (c.as_ptr() as *const f32, c.len());
        let filled = f(i, c);
        assert!(
            filled.as_ptr() == at && filled.len() == n,
            "init_chunks: chunk {i} not returned"
        );
    }
    // SAFETY: every chunk was returned as a `&mut [f32]` over its own
    // memory, so each is initialised, and the chunks cover `dst`.
    unsafe_assume_init(dst)
}

/// `dst[2i] = a[i]`, `dst[2i + 1] = b[i]`, returning `dst` initialised.
///
/// # Panics
///
/// Unless `dst` is exactly twice as long as `a` and `b`.
pub(crate) fn interleave2<'d>(
    dst: &'d mut [MaybeUninit<f32>],
    a: &[f32],
    b: &[f32],
) -> &'d mut [f32] {
    assert!(
        a.len() == b.len() && dst.len() == 2 * a.len(),
        "interleave2: lengths"
    );
    for ((pair, &x), &y) in dst.chunks_exact_mut(2).zip(a).zip(b) {
        pair[0].write(x);
        pair[1].write(y);
    }
    // SAFETY: `dst` has `2·a.len()` elements and the loop wrote both of
    // each of its `a.len()` pairs.
    unsafe_assume_init(dst)
}

/// The view of `dst` as a buffer to overwrite, for a writer that takes
/// uninitialised memory (the values are kept until it writes).
///
/// # Safety
///
/// Nothing may write an uninitialised value (`MaybeUninit::uninit()`)
/// through the view: `dst` must stay initialised. The writers of this
/// module only write values.
#[allow(unsafe_code)]
pub(crate) unsafe fn as_uninit(dst: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; the caller keeps
    // every element initialised.
    unsafe { &mut *(dst as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// `part` as initialised floats. Callers state why every element was
/// written; it is the one place where that claim turns into a type.
fn unsafe_assume_init(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: every caller has written every element of `part` (see the
    // comment at each call), and `MaybeUninit<f32>` has the size,
    // alignment and layout of `f32`.
    #[allow(unsafe_code)]
    unsafe {
        &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_parts_uninit_keeps_what_every_unit_wrote() {
        for (len, part) in [(0, 4), (1, 4), (10, 3), (100_000, 16_384)] {
            let buf = fill_parts_uninit(len, len, part, |u, p| {
                let at = u * part;
                write_all(p, (at..at + p.len()).map(|i| i as f32))
            });
            assert_eq!(buf.len(), len);
            assert!(buf.iter().enumerate().all(|(i, &v)| v == i as f32));
        }
    }

    #[test]
    #[should_panic(expected = "returned another slice than its part")]
    fn fill_parts_uninit_rejects_a_unit_that_returns_another_slice() {
        // Another buffer of the right length must be refused, not trusted.
        // One part, so that the unit runs on this thread: a panic inside
        // candle's worker pool would poison the pool for the other tests
        // of this binary.
        fill_parts_uninit(4, 4, 4, |_, _| Box::leak(vec![0f32; 4].into_boxed_slice()));
    }

    /// An iterator whose `len` says more items than it yields.
    struct Lying(std::ops::Range<usize>);

    impl Iterator for Lying {
        type Item = f32;
        fn next(&mut self) -> Option<f32> {
            self.0.next().map(|i| i as f32)
        }
    }

    impl ExactSizeIterator for Lying {
        fn len(&self) -> usize {
            self.0.len() + 1
        }
    }

    #[test]
    #[should_panic(expected = "write_all")]
    fn write_all_refuses_a_source_shorter_than_it_claims() {
        let mut buf = vec![MaybeUninit::<f32>::uninit(); 4];
        write_all(&mut buf, Lying(0..3));
    }

    #[test]
    fn init_chunks_and_interleave2_write_every_element() {
        let mut buf = vec![MaybeUninit::<f32>::uninit(); 10];
        let (a, b) = ([1.0, 3.0, 5.0, 7.0, 9.0], [2.0, 4.0, 6.0, 8.0, 10.0]);
        let out = init_chunks(&mut buf, 4, |i, c| {
            let n = c.len() / 2;
            interleave2(c, &a[2 * i..][..n], &b[2 * i..][..n])
        });
        assert_eq!(out, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
    }

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
