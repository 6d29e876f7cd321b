//! The set of samples never scored, with O(1) removal and uniform picks.

use rand::Rng;

use crate::table::ScoreTable;

const ABSENT: u32 = u32::MAX;

/// Ids with no score yet. `position[id]` is the index of `id` in `ids`, so
/// that a newly scored id is removed in O(1) (swap with the last); both
/// vectors are freed once every sample has been seen.
#[derive(Clone, Debug, Default)]
pub(crate) struct UnseenSet {
    ids: Vec<u32>,
    position: Vec<u32>,
}

impl UnseenSet {
    /// The ids of `table` never scored.
    pub(crate) fn from_table(table: &ScoreTable) -> Self {
        if table.seen() == table.len() {
            return Self::default();
        }
        let mut position = vec![ABSENT; table.len()];
        let mut ids = Vec::with_capacity(table.len() - table.seen());
        for (id, record) in table.records().iter().enumerate() {
            if !record.is_seen() {
                position[id] = ids.len() as u32;
                ids.push(id as u32);
            }
        }
        Self { ids, position }
    }

    /// How many ids are unseen.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether `id` is unseen.
    pub(crate) fn contains(&self, id: usize) -> bool {
        self.position.get(id).is_some_and(|&p| p != ABSENT)
    }

    /// The unseen id at `index` (below `len`).
    pub(crate) fn get(&self, index: usize) -> usize {
        self.ids[index] as usize
    }

    /// Removes `id` if it is in the set.
    pub(crate) fn remove(&mut self, id: usize) {
        let (true, Some(&last)) = (self.contains(id), self.ids.last()) else {
            return;
        };
        let index = self.position[id] as usize;
        self.ids.swap_remove(index);
        if last as usize != id {
            self.position[last as usize] = index as u32;
        }
        self.position[id] = ABSENT;
        if self.ids.is_empty() {
            *self = Self::default();
        }
    }

    /// `count` distinct unseen ids (at most `len`), uniformly at random.
    pub(crate) fn sample_distinct<R: Rng>(&self, rng: &mut R, count: usize) -> Vec<usize> {
        let count = count.min(self.len());
        rand::seq::index::sample(rng, self.len(), count)
            .iter()
            .map(|index| self.get(index))
            .collect()
    }
}
