//! The tree rows of `compare`: what developers do to a filesystem all day
//! — clone a repository, unpack a source tarball, delete that tree, make
//! a Python virtual environment. Each is one command, timed whole, and
//! reported as files per second (the files it leaves behind, or removes)
//! so that, like every other row, higher is better.
//!
//! The repository is the one this benchmark was built from; the tarball is
//! `git archive` of its HEAD, made once on local disk and unpacked on every
//! filesystem alike.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::timed;

/// What the tree rows start from, made once per run.
pub struct TreeSources {
    repo: PathBuf,
    tarball: PathBuf,
    /// Files (not directories) in the tarball.
    tarball_files: usize,
}

impl TreeSources {
    /// Installs git and Python's venv module if missing, and writes the
    /// tarball into `scratch` (local disk).
    pub fn prepare(scratch: &Path) -> anyhow::Result<TreeSources> {
        crate::packages::ensure("git", "--version", &["git"])?;
        crate::packages::ensure_venv()?;
        let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let repo = repo
            .canonicalize()
            .with_context(|| format!("the repository this bench was built from ({repo:?})"))?;
        let top = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "--show-toplevel"])
            .output()
            .context("running git")?;
        if !top.status.success() {
            bail!(
                "{} is not a git repository: the tree rows clone it",
                repo.display()
            );
        }
        let tarball = scratch.join("source.tar");
        let mut archive = Command::new("git");
        archive
            .arg("-C")
            .arg(&repo)
            .args(["archive", "--format=tar", "-o"])
            .arg(&tarball)
            .arg("HEAD");
        timed(archive)?;
        let listing = Command::new("tar")
            .arg("-tf")
            .arg(&tarball)
            .output()
            .context("listing the tarball")?;
        let tarball_files = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .filter(|l| !l.ends_with('/'))
            .count();
        Ok(TreeSources {
            repo,
            tarball,
            tarball_files,
        })
    }

    /// `git clone --no-local` of the repository into `root/clone` (a pack
    /// received and indexed, then a checkout): files/s.
    pub fn git_clone(&self, root: &Path) -> anyhow::Result<f64> {
        let dst = root.join("clone");
        let mut c = Command::new("git");
        c.args(["clone", "-q", "--no-local"])
            .arg(&self.repo)
            .arg(&dst);
        let t = timed(c)?;
        let files = count_files(&dst)?;
        std::fs::remove_dir_all(&dst).with_context(|| format!("removing {}", dst.display()))?;
        Ok(files as f64 / t.as_secs_f64())
    }

    /// `tar -x` of the source tarball into `root/tree`: files/s. The tree
    /// stays for [`TreeSources::remove_tree`].
    pub fn untar(&self, root: &Path) -> anyhow::Result<f64> {
        let dst = root.join("tree");
        std::fs::create_dir(&dst).with_context(|| format!("creating {}", dst.display()))?;
        let mut c = Command::new("tar");
        c.arg("-xf").arg(&self.tarball).arg("-C").arg(&dst);
        let t = timed(c)?;
        let files = count_files(&dst)?;
        if files != self.tarball_files {
            bail!(
                "tar left {files} files in {}, the tarball holds {}",
                dst.display(),
                self.tarball_files
            );
        }
        Ok(files as f64 / t.as_secs_f64())
    }

    /// `rm -rf` of the tree [`TreeSources::untar`] left: files/s.
    pub fn remove_tree(&self, root: &Path) -> anyhow::Result<f64> {
        let dst = root.join("tree");
        let mut c = Command::new("rm");
        c.arg("-rf").arg(&dst);
        let t = timed(c)?;
        if dst.exists() {
            bail!("rm -rf left {}", dst.display());
        }
        Ok(self.tarball_files as f64 / t.as_secs_f64())
    }

    pub fn files(&self) -> usize {
        self.tarball_files
    }
}

/// `python3 -m venv root/venv` (which installs pip into it): files/s.
pub fn venv(root: &Path) -> anyhow::Result<f64> {
    let dst = root.join("venv");
    let mut c = Command::new("python3");
    c.args(["-m", "venv"]).arg(&dst);
    let t = timed(c)?;
    let files = count_files(&dst)?;
    std::fs::remove_dir_all(&dst).with_context(|| format!("removing {}", dst.display()))?;
    Ok(files as f64 / t.as_secs_f64())
}

/// Everything under `dir` that is not a directory (files and symlinks).
fn count_files(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let e = e?;
            if e.file_type()?.is_dir() {
                todo.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    Ok(n)
}
