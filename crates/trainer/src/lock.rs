//! The run-directory lock: an advisory lock on `RUN_DIR/run.lock`, held
//! for as long as a process trains in the directory, so that two processes
//! never train one run at once (their files would interleave).
//!
//! The lock is the operating system's (`flock` on Linux), taken on the
//! open file: it is released when the process ends however it ends, so a
//! run killed with SIGKILL never blocks the resume after it. The file
//! holds the holder's pid and host, for the error a second process gets.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, TrainerError, io_err};
use crate::records::files;

/// A held run-directory lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

/// Takes the lock of run directory `dir` (which exists), or fails at once
/// with [`TrainerError::Busy`] naming the directory and the holder.
pub(crate) fn acquire(dir: &Path) -> Result<RunLock> {
    let path = dir.join(files::LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => {
            let holder = format!("pid {} on {}", std::process::id(), host());
            file.set_len(0).map_err(io_err(&path))?;
            file.write_all(holder.as_bytes()).map_err(io_err(&path))?;
            Ok(RunLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let holder = holder_of(&path);
            Err(TrainerError::Busy {
                dir: dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "a process that has not yet said which".into()
                } else {
                    holder
                },
            })
        }
        Err(TryLockError::Error(e)) => Err(io_err(&path)(e)),
    }
}

/// This machine's name, for the holder line.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}

/// Who holds the lock of run directory `dir` (`pid N on HOST`), or `None`
/// when no process is training in it. Probing takes the lock for an
/// instant when it is free.
pub fn run_lock_holder(dir: &Path) -> Option<String> {
    let path = dir.join(files::LOCK);
    let file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match file.try_lock() {
        Err(TryLockError::WouldBlock) => Some(holder_of(&path)),
        _ => None,
    }
}

/// What the lock file at `path` says of its holder (`pid N on HOST`);
/// empty while the holder has not written it yet.
fn holder_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.trim().to_string()
}
