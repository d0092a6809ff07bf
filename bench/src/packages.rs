//! Debian packages the benchmarks drive (fio, MooseFS), installed with apt
//! when their command is missing: a fresh machine needs no setup by hand.

use std::process::Command;

use anyhow::{bail, Context};

/// Installs `packages` unless `command` runs (with `probe` as its
/// argument, such as `--version`).
pub fn ensure(command: &str, probe: &str, packages: &[&str]) -> anyhow::Result<()> {
    if Command::new(command).arg(probe).output().is_ok() {
        return Ok(());
    }
    apt_install(packages)
}

fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    eprintln!("installing {} from Debian ...", packages.join(" "));
    // A fresh machine (a new container) may have no package lists yet:
    // install from the lists there are, and only if that fails fetch them
    // and try once more.
    if apt_get(&["install", "-y", "-qq"], packages).is_ok() {
        return Ok(());
    }
    apt_get(&["update", "-qq"], &[])?;
    apt_get(&["install", "-y", "-qq"], packages)
}

fn apt_get(args: &[&str], packages: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("apt-get")
        .args(args)
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("running apt-get (the benchmarks install what they drive; run as root)")?;
    if !out.status.success() {
        bail!(
            "apt-get {} {} failed: {}{}",
            args.join(" "),
            packages.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// fio, for the random-I/O rows.
pub fn ensure_fio() -> anyhow::Result<()> {
    ensure("fio", "--version", &["fio"])
}

/// Python with its venv module (Debian ships `ensurepip`, which venv
/// needs to install pip, in a package of its own).
pub fn ensure_venv() -> anyhow::Result<()> {
    let ready = Command::new("python3")
        .args(["-m", "ensurepip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return Ok(());
    }
    apt_install(&["python3-venv"])
}
