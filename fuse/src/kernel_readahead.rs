//! The kernel's readahead window for the mount.
//!
//! FUSE can only lower the kernel's readahead at `INIT` (the kernel starts
//! a mount's backing device at 128 KiB and takes the smaller of that and
//! what the filesystem asks), so a sequential read would arrive as 128 KiB
//! requests, one or two in flight. The window is raised afterwards through
//! the device's `read_ahead_kb` in sysfs, which only root may write; a
//! mount that cannot keeps the kernel's default and says so.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The sysfs file holding the readahead window of the filesystem whose
/// device number is `dev`.
pub fn bdi_read_ahead_file(dev: u64) -> PathBuf {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    PathBuf::from(format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb"))
}

/// Sets the readahead window of the filesystem mounted at `mountpoint` to
/// `kib` KiB, from a thread of its own: looking at the mountpoint waits
/// for the kernel's `INIT` exchange, which must be over before the window
/// is set (it would lower it again).
pub fn raise_in_background(mountpoint: &Path, kib: u64) {
    let mountpoint = mountpoint.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("cairn-readahead".into())
        .spawn(move || match raise(&mountpoint, kib) {
            Ok(file) => tracing::debug!(file = %file.display(), kib, "kernel readahead set"),
            Err(e) => tracing::info!(
                mountpoint = %mountpoint.display(),
                error = %e,
                "kept the kernel's 128 KiB readahead (raising it needs root); sequential reads are slower"
            ),
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the readahead thread");
    }
}

fn raise(mountpoint: &Path, kib: u64) -> std::io::Result<PathBuf> {
    let dev = std::fs::metadata(mountpoint)?.dev();
    let file = bdi_read_ahead_file(dev);
    std::fs::write(&file, format!("{kib}\n"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_named_by_the_devices_major_and_minor() {
        // FUSE devices are anonymous: major 0.
        let dev = libc::makedev(0, 57);
        assert_eq!(
            bdi_read_ahead_file(dev),
            PathBuf::from("/sys/class/bdi/0:57/read_ahead_kb")
        );
        let dev = libc::makedev(259, 3);
        assert_eq!(
            bdi_read_ahead_file(dev),
            PathBuf::from("/sys/class/bdi/259:3/read_ahead_kb")
        );
    }
}
