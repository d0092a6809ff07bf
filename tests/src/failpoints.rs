//! For the tests that name failpoints: the `cairn` under test must carry
//! them (`scripts/test` builds it with `--features cairn/failpoints`).

use std::process::Command;

use crate::cairn_bin;

/// Panics, saying how to build it, unless `cairn` has failpoints.
pub fn require_failpoint_build() {
    let version = Command::new(cairn_bin())
        .arg("--version")
        .output()
        .expect("cairn --version");
    assert!(
        String::from_utf8_lossy(&version.stdout).contains("failpoints"),
        "{} was built without failpoints: build it with \
         `cargo build --release --bin cairn --features cairn/failpoints` (scripts/test does)",
        cairn_bin().display()
    );
}

/// `FAILPOINTS` naming one crash point.
pub fn crash_at(point: &str) -> String {
    format!("{point}=return")
}
