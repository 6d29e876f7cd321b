//! The score journal: every score the sampler recorded, step by step.
//! Replaying it rebuilds the sampler's exact state on resume, whatever the
//! strategy keeps inside (sum trees, loss histories, τ estimates), without
//! a serialisation format per strategy.
//!
//! Format: per sampler step, little-endian `u64 step`, `u32 n`, `n × u32`
//! ids, `n × f32` scores. An entry with n = 0 is a step whose batch was
//! skipped (non-finite loss).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use isdet_sampler::{Planned, Sampler, StepPlan, Strategy};

use crate::error::{Result, TrainerError, io_err};

/// One step's recorded scores.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalEntry {
    /// The sampler step.
    pub step: u64,
    /// The ids scored.
    pub ids: Vec<usize>,
    /// Their scores.
    pub scores: Vec<f32>,
}

/// An append-only journal file.
pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
}

impl Journal {
    /// Opens `path`, keeping its first `keep` bytes (the length at the last
    /// checkpoint; 0 for a new run), and returns the entries they hold.
    pub fn open(path: &Path, keep: u64) -> Result<(Self, Vec<JournalEntry>)> {
        let io = io_err(path);
        let mut bytes = Vec::new();
        if keep > 0 {
            File::open(path)
                .map_err(&io)?
                .take(keep)
                .read_to_end(&mut bytes)
                .map_err(&io)?;
            if (bytes.len() as u64) < keep {
                return Err(TrainerError::Journal {
                    path: path.to_path_buf(),
                    message: format!("{} bytes, but the checkpoint expects {keep}", bytes.len()),
                });
            }
        }
        let entries = parse(path, &bytes)?;
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(path)
            .map_err(&io)?;
        file.set_len(keep).map_err(&io)?;
        let mut out = BufWriter::new(file);
        std::io::Seek::seek(&mut out, std::io::SeekFrom::End(0)).map_err(&io)?;
        Ok((
            Journal {
                path: path.to_path_buf(),
                out,
                len: keep,
            },
            entries,
        ))
    }

    /// Appends one step's scores.
    pub fn append(&mut self, step: u64, ids: &[usize], scores: &[f32]) -> Result<()> {
        let mut buf = Vec::with_capacity(12 + 8 * ids.len());
        buf.extend_from_slice(&step.to_le_bytes());
        buf.extend_from_slice(&(ids.len() as u32).to_le_bytes());
        for &id in ids {
            buf.extend_from_slice(&(id as u32).to_le_bytes());
        }
        for &s in scores {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        self.out.write_all(&buf).map_err(io_err(&self.path))?;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Flushes to disk and returns the length in bytes (what a checkpoint
    /// records).
    pub fn sync(&mut self) -> Result<u64> {
        self.out.flush().map_err(io_err(&self.path))?;
        self.out.get_ref().sync_data().map_err(io_err(&self.path))?;
        Ok(self.len)
    }
}

/// The error for a journal at `path` that does not read or replay.
pub(crate) fn journal_error(path: &Path, message: String) -> TrainerError {
    TrainerError::Journal {
        path: path.to_path_buf(),
        message,
    }
}

/// Every entry of the journal at `path`.
pub(crate) fn read_all(path: &Path) -> Result<Vec<JournalEntry>> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    parse(path, &bytes)
}

/// Feeds the entries of the journal at `path` back through `sampler`: the
/// same calls in the same order rebuild its exact state. `on_step` sees
/// each step's plan (the selected one after candidates were scored) once
/// its scores are recorded.
pub(crate) fn replay<S: Strategy>(
    sampler: &mut Sampler<S>,
    entries: &[JournalEntry],
    path: &Path,
    mut on_step: impl FnMut(&Sampler<S>, &StepPlan),
) -> Result<()> {
    let bad = |message: String| journal_error(path, message);
    for e in entries {
        let Some(planned) = sampler.plan()? else {
            return Err(bad(format!(
                "entry for step {} but the budget is already spent",
                e.step
            )));
        };
        let expected: &[usize] = match &planned {
            Planned::Train(plan) => plan.train(),
            Planned::ScoreFirst(candidates) => candidates,
        };
        // Mixed images credit their sources, so the recorded ids are
        // a subset of the plan's, in any order.
        if e.ids.iter().any(|id| !expected.contains(id)) {
            return Err(bad(format!(
                "step {} scored {:?} but the sampler plans {:?}: the run's data or code changed",
                e.step, e.ids, expected
            )));
        }
        if !e.ids.is_empty() {
            sampler.record(&e.ids, &e.scores)?;
        }
        let plan = match planned {
            Planned::Train(plan) => plan,
            Planned::ScoreFirst(_) => sampler.select()?,
        };
        on_step(sampler, &plan);
    }
    Ok(())
}

fn parse(path: &Path, mut bytes: &[u8]) -> Result<Vec<JournalEntry>> {
    let bad = |message: String| journal_error(path, message);
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 12 {
            return Err(bad(format!(
                "truncated entry after {} entries",
                entries.len()
            )));
        }
        let step = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        let n = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let need = 12 + 8 * n;
        if bytes.len() < need {
            return Err(bad(format!("truncated entry for step {step}")));
        }
        let word = |k: usize| -> [u8; 4] { bytes[k..k + 4].try_into().expect("4 bytes") };
        let ids = (0..n)
            .map(|i| u32::from_le_bytes(word(12 + 4 * i)) as usize)
            .collect();
        let scores = (0..n)
            .map(|i| f32::from_le_bytes(word(12 + 4 * n + 4 * i)))
            .collect();
        entries.push(JournalEntry { step, ids, scores });
        bytes = &bytes[need..];
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_are_cut_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.bin");
        let (mut j, old) = Journal::open(&path, 0).unwrap();
        assert!(old.is_empty());
        j.append(0, &[3, 1], &[0.5, 1.25]).unwrap();
        let kept = j.sync().unwrap();
        j.append(1, &[], &[]).unwrap();
        j.append(2, &[7], &[f32::MIN_POSITIVE]).unwrap();
        let all = j.sync().unwrap();
        drop(j);
        let (_, entries) = Journal::open(&path, all).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].scores, vec![f32::MIN_POSITIVE]);
        let (_, entries) = Journal::open(&path, kept).unwrap();
        assert_eq!(
            entries,
            vec![JournalEntry {
                step: 0,
                ids: vec![3, 1],
                scores: vec![0.5, 1.25]
            }]
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), kept);
        assert!(Journal::open(&path, kept + 4).is_err());
    }
}
