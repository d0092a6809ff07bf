//! A `cairn mount` of a [`DevCluster`] in a temporary directory, unmounted
//! when dropped — even if the test panics or the mount process died: the
//! process gets SIGTERM (it unmounts and exits), then SIGKILL, and a mount
//! still left behind is detached with `fusermount3 -u -z`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{cairn_bin, signal, DevCluster};

/// How long a mount may take to appear.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the mount process may take to unmount and exit on SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct FuseMount {
    child: Option<Child>,
    mountpoint: PathBuf,
    log: PathBuf,
    // Last: removed only after the unmount in `drop`.
    _dir: tempfile::TempDir,
}

impl FuseMount {
    /// Mounts `cluster` with extra `cairn mount` options. Unless they say
    /// otherwise, the mount gets the runtime threads `cairn dev` gives each
    /// of the cluster's servers (it shares their machine).
    pub fn start(cluster: &DevCluster, opts: &[&str]) -> anyhow::Result<Self> {
        let processes = cluster.meta_names().len() + cluster.chunkserver_names().len() + 1;
        let threads = cairn_proto::runtime::threads_per_process(
            cairn_proto::runtime::available_cores(),
            processes,
        )
        .to_string();
        let default_threads = ["--threads", threads.as_str()];
        let threads_opt: &[&str] = if opts.contains(&"--threads") {
            &[]
        } else {
            &default_threads
        };
        let dir = tempfile::Builder::new().prefix("cairn-mnt-").tempdir()?;
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint)?;
        let mountpoint = mountpoint.canonicalize()?;
        let log = dir.path().join("mount.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(cairn_bin())
            .arg("mount")
            .arg(cluster.client_config())
            .arg(&mountpoint)
            .args(threads_opt)
            .args(opts)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawning cairn mount")?;
        let mut m = FuseMount {
            child: Some(child),
            mountpoint,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        while !is_mounted(&m.mountpoint) {
            if let Some(c) = m.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!("cairn mount exited ({status}):\n{}", m.log_text());
                }
            }
            if Instant::now() > deadline {
                bail!("not mounted within {MOUNT_TIMEOUT:?}:\n{}", m.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(m)
    }

    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// `name` under the mountpoint.
    pub fn join(&self, name: &str) -> PathBuf {
        self.mountpoint.join(name)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM: the mount unmounts and exits; fails if it does not exit
    /// cleanly in time or the mount stays.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("cairn mount did not exit within {STOP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            bail!("cairn mount exited with {status}:\n{}", self.log_text());
        }
        if is_mounted(&self.mountpoint) {
            bail!(
                "{} still mounted after cairn mount exited",
                self.mountpoint.display()
            );
        }
        Ok(())
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("[fuse mount] {e}");
        }
        if is_mounted(&self.mountpoint) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(&self.mountpoint)
                .status();
        }
    }
}

/// True if `dir` (canonical) is a mount point.
pub fn is_mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}
