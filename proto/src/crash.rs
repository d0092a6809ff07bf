//! The crash of a failpoint: crash tests build the servers with
//! `--features failpoints` and name a point with `return` in `FAILPOINTS`;
//! the process ends there at once, as if killed, leaving its files as
//! they are.

/// Ends the process at failpoint `name`.
pub fn crash(name: &str) -> ! {
    eprintln!("failpoint {name}: crashing");
    std::process::abort()
}

/// A failpoint where the process crashes when `FAILPOINTS` says `NAME=return`
/// (and does nothing in a build without failpoints). The calling crate
/// depends on `fail`.
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {
        fail::fail_point!($name, |_| $crate::crash::crash($name))
    };
}
