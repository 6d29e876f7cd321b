//! The one thread fan-out of this crate: a slice cut into one part per
//! thread, each part mapped on its own scoped thread, results in order.

/// `f` of every item, on up to `threads` scoped threads (one contiguous
/// part each), in item order; `None` when a thread panicked.
pub(crate) fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Option<Vec<R>> {
    let part = items.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(part)
            .map(|chunk| {
                let f = &f;
                scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>())
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().ok()?);
        }
        Some(out)
    })
}

#[cfg(test)]
mod tests {
    use super::map_in_order;

    #[test]
    fn results_come_back_in_item_order_on_any_thread_count() {
        let items: Vec<u32> = (0..37).collect();
        for threads in [1, 2, 3, 8, 64] {
            let out = map_in_order(&items, threads, |&i| i * 2).unwrap();
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert_eq!(map_in_order(&[] as &[u32], 2, |&i| i), Some(vec![]));
    }

    #[test]
    fn a_panicking_thread_gives_none() {
        let items: Vec<u32> = (0..8).collect();
        let out = map_in_order(&items, 2, |&i| {
            assert!(i != 5, "item 5");
            i
        });
        assert!(out.is_none());
    }
}
