//! How much room the filesystem under a server's data directory has: what
//! a chunkserver announces and judges itself full by, and what keeps a
//! metadata node from filling its disk.

use std::path::Path;

/// Total and available bytes of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_a_size_and_a_missing_one_none() {
        let dir = std::env::temp_dir();
        let (total, free) = disk_space(&dir).expect("statvfs of the temp dir");
        assert!(total > 0 && free <= total);
        assert!(disk_space(Path::new("/no/such/dir/anywhere")).is_none());
    }
}
