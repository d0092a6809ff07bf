//! A throwaway MooseFS (Debian packages) for the side-by-side benchmark:
//! 1 master and 3 chunkservers on 127.0.0.1 in a temporary directory,
//! mounted with FUSE, goal 3 and trash time 0 — the same replication as
//! Cairn's default and deletes that free space at once. Its chunkservers
//! run with MooseFS's default of no fsync before a chunk is closed, or
//! (`Durability::Fsync`) with `HDD_FSYNC_BEFORE_CLOSE = 1`. Everything is
//! stopped and unmounted on drop, even when the benchmark fails.
//!
//! MooseFS refuses 127/8 addresses for the master and chunkservers; the
//! master remaps 127.0.0.1 to 0.0.0.0 and chunkservers dial 0.0.0.0,
//! which Linux routes to 127.0.0.1, so all traffic stays on loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const PACKAGES: &[&str] = &[
    "moosefs-master",
    "moosefs-chunkserver",
    "moosefs-client",
    "moosefs-cli",
];
/// The ports of the first instance: the master's for metaloggers,
/// chunkservers and clients (MooseFS's defaults), then its chunkservers'.
/// A second instance running beside it takes the next hundred.
const FIRST_PORT: u16 = 9419;

/// Whether MooseFS's chunkservers fsync a chunk before closing it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Durability {
    /// MooseFS's default (`HDD_FSYNC_BEFORE_CLOSE = 0`).
    Default,
    /// `HDD_FSYNC_BEFORE_CLOSE = 1`.
    Fsync,
}

pub struct MooseFs {
    /// Removed (after everything stopped) on drop.
    _dir: tempfile::TempDir,
    mnt: PathBuf,
    /// The master's client port.
    client_port: u16,
    started: Vec<PathBuf>,
    master_cfg: Option<PathBuf>,
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl MooseFs {
    /// Starts MooseFS under `base` and mounts it; `instance` 0 on
    /// MooseFS's default ports, 1 on the hundred after them.
    pub fn start(base: &Path, durability: Durability, instance: u16) -> anyhow::Result<Self> {
        let first = FIRST_PORT + 100 * instance;
        let (ml_port, cs_port, client_port) = (first, first + 1, first + 2);
        crate::packages::ensure("mfsmaster", "-v", PACKAGES)?;
        let dir = tempfile::Builder::new().prefix("mfs-").tempdir_in(base)?;
        // The daemons run as user mfs: it must reach its directories.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let b = dir.path().to_path_buf();
        let mnt = b.join("mnt");
        std::fs::create_dir_all(b.join("master"))?;
        std::fs::create_dir_all(&mnt)?;
        std::fs::copy(
            "/var/lib/mfs/metadata.mfs.empty",
            b.join("master/metadata.mfs"),
        )
        .context("the empty MooseFS metadata file (moosefs-master)")?;
        std::fs::write(
            b.join("mfsexports.cfg"),
            "127.0.0.1\t/\trw,alldirs,admin,maproot=0:0\n",
        )?;
        std::fs::write(b.join("mfstopology.cfg"), "")?;
        let master_cfg = b.join("mfsmaster.cfg");
        std::fs::write(
            &master_cfg,
            format!(
                "WORKING_USER = mfs\nWORKING_GROUP = mfs\nDATA_PATH = {b}/master\n\
                 EXPORTS_FILENAME = {b}/mfsexports.cfg\nTOPOLOGY_FILENAME = {b}/mfstopology.cfg\n\
                 NICE_LEVEL = 0\nMATOML_LISTEN_HOST = 127.0.0.1\nMATOCS_LISTEN_HOST = 127.0.0.1\n\
                 MATOCL_LISTEN_HOST = 127.0.0.1\nMATOML_LISTEN_PORT = {ml_port}\n\
                 MATOCS_LISTEN_PORT = {cs_port}\nMATOCL_LISTEN_PORT = {client_port}\n\
                 REPLICATIONS_DELAY_INIT = 0\nREMAP_BITS = 32\n\
                 REMAP_SOURCE_IP_CLASS = 127.0.0.1\nREMAP_DESTINATION_IP_CLASS = 0.0.0.0\n",
                b = b.display()
            ),
        )?;
        let mut cs_cfgs = Vec::new();
        for i in 1..=3u16 {
            let cs = b.join(format!("cs{i}"));
            std::fs::create_dir_all(cs.join("data"))?;
            std::fs::create_dir_all(cs.join("meta"))?;
            std::fs::write(
                cs.join("mfshdd.cfg"),
                format!("{}\n", cs.join("data").display()),
            )?;
            let cfg = cs.join("mfschunkserver.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "WORKING_USER = mfs\nWORKING_GROUP = mfs\n\
                     SYSLOG_IDENT = mfschunkserver{instance}-{i}\n\
                     NICE_LEVEL = 0\nDATA_PATH = {cs}/meta\nHDD_CONF_FILENAME = {cs}/mfshdd.cfg\n\
                     HDD_LEAVE_SPACE_DEFAULT = 1GiB\nBIND_HOST = 127.0.0.1\nMASTER_HOST = 0.0.0.0\n\
                     MASTER_PORT = {cs_port}\nCSSERV_LISTEN_HOST = 127.0.0.1\n\
                     CSSERV_LISTEN_PORT = {port}\nHDD_FSYNC_BEFORE_CLOSE = {fsync}\n",
                    cs = cs.display(),
                    port = client_port + i,
                    fsync = u8::from(durability == Durability::Fsync),
                ),
            )?;
            cs_cfgs.push(cfg);
        }
        run(Command::new("chown").args(["-R", "mfs:mfs"]).arg(&b))?;
        let mut m = MooseFs {
            _dir: dir,
            mnt,
            client_port,
            started: Vec::new(),
            master_cfg: None,
        };
        run(Command::new("mfsmaster")
            .arg("-c")
            .arg(&master_cfg)
            .arg("start"))?;
        m.master_cfg = Some(master_cfg);
        for cfg in cs_cfgs {
            run(Command::new("mfschunkserver")
                .arg("-c")
                .arg(&cfg)
                .arg("start"))?;
            m.started.push(cfg);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let cs = run(Command::new("mfscli").args([
                "-H",
                "127.0.0.1",
                "-P",
                &client_port.to_string(),
                "-SCS",
            ]))
            .unwrap_or_default();
            if cs
                .lines()
                .filter(|l| l.starts_with("chunk servers:"))
                .count()
                >= 3
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("MooseFS chunkservers did not all connect within 60 s:\n{cs}");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        m.mount()?;
        run(Command::new("mfssetgoal").args(["-r", "3"]).arg(&m.mnt))?;
        run(Command::new("mfssettrashtime")
            .args(["-r", "0"])
            .arg(&m.mnt))?;
        Ok(m)
    }

    fn mount(&self) -> anyhow::Result<()> {
        run(Command::new("mfsmount")
            .args(["-H", "127.0.0.1", "-P", &self.client_port.to_string()])
            .arg(&self.mnt))?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.mnt
    }

    /// Unmounts and mounts again: the client's caches start empty.
    pub fn remount(&self) -> anyhow::Result<()> {
        run(Command::new("umount").arg(&self.mnt))?;
        self.mount()
    }
}

impl Drop for MooseFs {
    fn drop(&mut self) {
        if cairn_tests::fuse_mount::is_mounted(&self.mnt) {
            let _ = Command::new("umount").arg(&self.mnt).status();
            if cairn_tests::fuse_mount::is_mounted(&self.mnt) {
                let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            }
        }
        for cfg in &self.started {
            let _ = Command::new("mfschunkserver")
                .arg("-c")
                .arg(cfg)
                .arg("stop")
                .output();
        }
        if let Some(cfg) = &self.master_cfg {
            let _ = Command::new("mfsmaster")
                .arg("-c")
                .arg(cfg)
                .arg("stop")
                .output();
        }
    }
}
