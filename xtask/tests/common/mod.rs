//! What the end-to-end tests of the `xtask` binary share: running it, and
//! reading what it said.
#![allow(dead_code)] // each test binary uses its own part of this

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The built `xtask` binary.
pub fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

/// Everything a run of it printed, stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `cmd` and fails the test, with what it said, unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// Starts `xtask train --quiet --config CONFIG --out OUT EXTRA…` in the
/// background, its output discarded.
pub fn spawn_train(config: &Path, out: &Path, extra: &[&str]) -> Child {
    xtask()
        .args(["train", "--quiet", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
