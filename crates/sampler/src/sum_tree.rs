//! A sum tree: weighted draws and weight updates in O(log N).

use rand::Rng;

use crate::error::{Result, SamplerError};

/// Non-negative weights over `len` slots, in an implicit binary tree whose
/// every inner node holds the sum of its two children: a weighted draw
/// descends from the root by prefix sums, an update recomputes the leaf's
/// ancestors; both touch O(log N) nodes.
///
/// Layout: node 1 is the root, node `i` has children `2i` and `2i + 1`, and
/// the leaves are nodes `len..2·len` (so any `len`, not only powers of two,
/// and 16 bytes per slot), numbered left to right. Inner nodes are recomputed from their children
/// on every update, never adjusted by differences, so rounding errors do not
/// accumulate however many updates are made. A slot of weight 0 is never
/// drawn.
///
/// The batched calls ([`SumTree::set_many`], [`SumTree::find_many`]) walk
/// all their paths one tree level at a time, so that the memory accesses of
/// different paths overlap instead of waiting on each other.
///
/// ```
/// use isdet_sampler::SumTree;
///
/// let mut tree = SumTree::from_weights(&[1.0, 0.0, 3.0])?;
/// assert_eq!(tree.total(), 4.0);
/// assert_eq!(tree.find(0.5), Some(0));
/// assert_eq!(tree.find(1.5), Some(2));
/// tree.set(1, 4.0)?;
/// assert_eq!(tree.find(1.5), Some(1));
/// # Ok::<(), isdet_sampler::SamplerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SumTree {
    nodes: Vec<f64>,
    len: usize,
    scratch: Vec<usize>,
}

impl SumTree {
    /// A tree of `len` slots, all of weight 0.
    pub fn new(len: usize) -> Self {
        Self {
            nodes: vec![0.0; 2 * len],
            len,
            scratch: Vec::new(),
        }
    }

    /// A tree holding `weights`, built in O(N).
    pub fn from_weights(weights: &[f64]) -> Result<Self> {
        let len = weights.len();
        let mut tree = Self::new(len);
        for (slot, &w) in weights.iter().enumerate() {
            check_weight(slot, w)?;
            tree.nodes[leaf_node(len, slot)] = w;
        }
        for i in (1..len).rev() {
            tree.nodes[i] = tree.nodes[2 * i] + tree.nodes[2 * i + 1];
        }
        Ok(tree)
    }

    /// The number of slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree has no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sum of all weights.
    pub fn total(&self) -> f64 {
        match self.len {
            0 => 0.0,
            _ => self.nodes[1],
        }
    }

    /// The weight of `slot`, `None` when out of range.
    pub fn weight(&self, slot: usize) -> Option<f64> {
        (slot < self.len).then(|| self.nodes[leaf_node(self.len, slot)])
    }

    /// Sets the weight of `slot` (finite, non-negative) in O(log N).
    pub fn set(&mut self, slot: usize, weight: f64) -> Result<()> {
        self.set_many(&[slot], &[weight])
    }

    /// Sets `weights[k]` on `slots[k]`, then recomputes every ancestor once
    /// per level. Everything is checked before anything changes.
    pub fn set_many(&mut self, slots: &[usize], weights: &[f64]) -> Result<()> {
        if slots.len() != weights.len() {
            return Err(SamplerError::LengthMismatch {
                what: "weights for the slots set",
                expected: slots.len(),
                found: weights.len(),
            });
        }
        for (&slot, &w) in slots.iter().zip(weights) {
            if slot >= self.len {
                return Err(SamplerError::IdOutOfRange {
                    id: slot,
                    len: self.len,
                });
            }
            check_weight(slot, w)?;
        }
        self.write_many(slots, weights);
        Ok(())
    }

    /// [`SumTree::set_many`] for slots and weights the caller has checked.
    pub(crate) fn write_many(&mut self, slots: &[usize], weights: &[f64]) {
        for (&slot, &w) in slots.iter().zip(weights) {
            self.nodes[leaf_node(self.len, slot)] = w;
        }
        self.recompute_ancestors(slots);
    }

    fn recompute_ancestors(&mut self, slots: &[usize]) {
        let mut level = std::mem::take(&mut self.scratch);
        level.clear();
        level.extend(slots.iter().map(|&s| leaf_node(self.len, s)));
        loop {
            level.retain_mut(|node| {
                *node /= 2;
                *node > 0
            });
            if level.is_empty() {
                break;
            }
            for &node in &level {
                self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1];
            }
        }
        self.scratch = level;
    }

    /// The slot whose cumulative weight range holds `target`: the smallest
    /// slot `i` with `target < w_0 + … + w_i`, for `target` in
    /// `[0, total)`. Targets beyond the total land on the last slot of
    /// positive weight. `None` when the total is 0.
    pub fn find(&self, target: f64) -> Option<usize> {
        let mut out = Vec::with_capacity(1);
        self.find_many(&[target], &mut out);
        out.pop()
    }

    /// [`SumTree::find`] for every target, written to `out` (cleared first;
    /// left empty when the total is 0). The descents advance together one
    /// level at a time.
    pub fn find_many(&self, targets: &[f64], out: &mut Vec<usize>) {
        out.clear();
        if self.total() <= 0.0 {
            return;
        }
        let mut rest = targets.to_vec();
        out.resize(targets.len(), 1);
        let mut active = true;
        while active {
            active = false;
            for (node, target) in out.iter_mut().zip(rest.iter_mut()) {
                if *node < self.len {
                    self.descend(node, target);
                    active = true;
                }
            }
        }
        for node in out.iter_mut() {
            *node = slot_of_leaf(self.len, *node);
        }
    }

    /// One step down from `node`: left when the target falls in the left
    /// subtree's mass, right otherwise; never into a subtree of mass 0.
    #[inline]
    fn descend(&self, node: &mut usize, target: &mut f64) {
        let left = self.nodes[2 * *node];
        let right = self.nodes[2 * *node + 1];
        if (*target < left || right <= 0.0) && left > 0.0 {
            *node *= 2;
        } else {
            *target -= left;
            *node = 2 * *node + 1;
        }
    }

    /// One slot drawn with probability `weight / total`, `None` when the
    /// total is 0.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        self.find(rng.random::<f64>() * self.total())
    }
}

/// The node of leaf `slot` in a tree of `len` leaves. Leaves are nodes
/// `len..2·len`; when `len` is not a power of two they sit on two levels,
/// and their left-to-right order starts with the deeper level (nodes
/// `p..2·len`, `p` the next power of two) followed by the shallower one
/// (nodes `len..p`). Slots are numbered in that left-to-right order, so
/// that descending by prefix sums follows slot order.
#[inline]
fn leaf_node(len: usize, slot: usize) -> usize {
    let deep = 2 * len - len.next_power_of_two();
    if slot < deep {
        len.next_power_of_two() + slot
    } else {
        len + slot - deep
    }
}

/// The slot of leaf node `node` (inverse of [`leaf_node`]).
#[inline]
fn slot_of_leaf(len: usize, node: usize) -> usize {
    let (p, deep) = (len.next_power_of_two(), 2 * len - len.next_power_of_two());
    if node >= p {
        node - p
    } else {
        node - len + deep
    }
}

fn check_weight(slot: usize, weight: f64) -> Result<()> {
    if weight.is_finite() && weight >= 0.0 {
        Ok(())
    } else {
        Err(SamplerError::InvalidWeight {
            position: slot,
            weight: weight as f32,
        })
    }
}

/// The maximum over `len` slots, in the same implicit layout as
/// [`SumTree`]: updates in O(log N), the maximum in O(1).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MaxTree {
    nodes: Vec<f64>,
    len: usize,
}

impl MaxTree {
    /// A tree holding `values`, built in O(N).
    pub(crate) fn from_values(values: impl ExactSizeIterator<Item = f64>) -> Self {
        let len = values.len();
        let mut nodes = vec![0.0; 2 * len];
        for (slot, v) in values.enumerate() {
            nodes[leaf_node(len, slot)] = v;
        }
        for i in (1..len).rev() {
            nodes[i] = nodes[2 * i].max(nodes[2 * i + 1]);
        }
        Self { nodes, len }
    }

    /// The largest value (0 for an empty tree).
    pub(crate) fn max(&self) -> f64 {
        self.nodes.get(1).copied().unwrap_or(0.0)
    }

    /// Sets one slot's value (the caller checks the range).
    pub(crate) fn set(&mut self, slot: usize, value: f64) {
        let mut node = leaf_node(self.len, slot);
        self.nodes[node] = value;
        while node > 1 {
            node /= 2;
            self.nodes[node] = self.nodes[2 * node].max(self.nodes[2 * node + 1]);
        }
    }
}
