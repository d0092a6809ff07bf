//! `cairn mount` (foreground or `--daemon`) and `cairn umount`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cairn_client::{Client, ClientConfig};
use cairn_fuse::MountOptions;

use crate::signals::Termination;

/// How long an unmount may take (open files flushing) before the mount
/// process gives up waiting and exits.
const UNMOUNT_WAIT: Duration = Duration::from_secs(30);
/// How long `--daemon` waits for the background mount to appear.
const DAEMON_START_WAIT: Duration = Duration::from_secs(30);

/// The client config of CLUSTER: the file itself, or `client.toml` in it.
fn cluster_config(cluster: &Path) -> anyhow::Result<ClientConfig> {
    let path = if cluster.is_dir() {
        cluster.join("client.toml")
    } else {
        cluster.to_path_buf()
    };
    if !path.exists() {
        bail!(
            "no client config at {} (CLUSTER is a client config file, or a directory holding client.toml)",
            path.display()
        );
    }
    ClientConfig::load(&path).with_context(|| format!("loading {}", path.display()))
}

fn check_mountpoint(mountpoint: &Path) -> anyhow::Result<PathBuf> {
    let dir = mountpoint
        .canonicalize()
        .with_context(|| format!("mountpoint {}", mountpoint.display()))?;
    if !dir.is_dir() {
        bail!("mountpoint {} is not a directory", dir.display());
    }
    if is_mounted(&dir) {
        bail!(
            "something is already mounted at {} (unmount it first: cairn umount {})",
            dir.display(),
            dir.display()
        );
    }
    Ok(dir)
}

pub async fn mount(cluster: &Path, mountpoint: &Path, opts: MountOptions) -> anyhow::Result<()> {
    let mut termination = Termination::install()?;
    let config = cluster_config(cluster)?;
    let dir = check_mountpoint(mountpoint)?;
    let client = Client::connect(config)
        .await
        .context("connecting to the cluster")?;
    // SAFETY: plain syscall without arguments.
    let root = unsafe { libc::geteuid() } == 0;
    let opts = MountOptions {
        allow_other: root,
        ..opts
    };
    let mounted = tokio::task::block_in_place(|| cairn_fuse::mount(client, &dir, &opts))
        .with_context(|| format!("mounting on {}", dir.display()))?;
    eprintln!(
        "cairn: mounted at {} (Ctrl-C, or `cairn umount {}`, unmounts)",
        dir.display(),
        dir.display()
    );
    loop {
        tokio::select! {
            _ = termination.wait() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if mounted.is_finished() {
                    eprintln!("cairn: {} was unmounted", dir.display());
                    return tokio::task::spawn_blocking(move || mounted.unmount())
                        .await?
                        .context("ending the session");
                }
            }
        }
    }
    eprintln!("cairn: unmounting {}", dir.display());
    let unmount = tokio::task::spawn_blocking(move || mounted.unmount());
    match tokio::time::timeout(UNMOUNT_WAIT, unmount).await {
        Ok(r) => r?.context("unmounting"),
        Err(_) => bail!(
            "files on {} stayed open for {UNMOUNT_WAIT:?}; detached it and exiting",
            dir.display()
        ),
    }
}

/// Starts this same `cairn mount` without `--daemon` in the background
/// (its own session, logging to a file) and returns once it is mounted.
pub async fn daemonize(mountpoint: &Path, log_file: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = check_mountpoint(mountpoint)?;
    let log = log_file.unwrap_or_else(|| {
        let name: String = dir
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::env::temp_dir().join(format!("cairn-mount{name}.log"))
    });
    let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut args: Vec<String> = Vec::new();
    let mut skip_value = false;
    for a in std::env::args().skip(1) {
        if skip_value {
            skip_value = false;
        } else if a == "--daemon" || a.starts_with("--log-file=") {
        } else if a == "--log-file" {
            skip_value = true;
        } else {
            args.push(a);
        }
    }
    let exe = std::env::current_exe().context("finding the cairn binary")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: setsid() is async-signal-safe; it detaches the child from
    // this terminal so that closing it does not stop the mount.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the background mount")?;
    let pid = child.id().unwrap_or(0);
    let deadline = Instant::now() + DAEMON_START_WAIT;
    while Instant::now() < deadline {
        if is_mounted(&dir) {
            println!(
                "cairn: mounted at {} (pid {pid}, log {})",
                dir.display(),
                log.display()
            );
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("the mount exited ({status}): {}", text.trim());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "not mounted after {DAEMON_START_WAIT:?} (pid {pid} still running; see {})",
        log.display()
    )
}

pub async fn umount(mountpoint: &Path, lazy: bool) -> anyhow::Result<()> {
    let dir = mountpoint
        .canonicalize()
        .with_context(|| format!("mountpoint {}", mountpoint.display()))?;
    if !is_mounted(&dir) {
        bail!("nothing is mounted at {}", dir.display());
    }
    let mut cmd = tokio::process::Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd
        .arg(&dir)
        .output()
        .await
        .context("running fusermount3 (install the fuse3 package)")?;
    if !out.status.success() {
        bail!(
            "unmounting {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// True if `dir` (canonical) is a mount point, per /proc/self/mountinfo.
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mountinfo(m) == want)
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digits = b.get(i + 1..i + 4);
        if b[i] == b'\\' && digits.is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c))) {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/x\"), r"/x\");
    }
}
