//! User and group names for numeric owners, as `ls -l` shows them: looked
//! up in this machine's account database (passwd, group, or whatever NSS
//! serves), the number itself when there is no such account.
//!
//! Cairn stores owners as numbers, as NFS and every POSIX filesystem do;
//! the names are this host's, so two hosts with different accounts show
//! different names for the same file, exactly as `ls -l` on a shared
//! mount would.

use std::collections::HashMap;
use std::ffi::CStr;

/// Remembers each lookup: a listing asks for the same few owners over and
/// over, and each NSS call may read a file or ask a directory service.
#[derive(Default)]
pub struct OwnerNames {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl OwnerNames {
    pub fn user(&mut self, uid: u32) -> &str {
        self.users
            .entry(uid)
            .or_insert_with(|| user_name(uid).unwrap_or_else(|| uid.to_string()))
    }

    pub fn group(&mut self, gid: u32) -> &str {
        self.groups
            .entry(gid)
            .or_insert_with(|| group_name(gid).unwrap_or_else(|| gid.to_string()))
    }
}

/// Big enough for any ordinary passwd or group record; a larger one (a
/// group with thousands of members) grows the buffer, up to `MAX_BUF`.
const START_BUF: usize = 1024;
const MAX_BUF: usize = 1 << 20;

fn user_name(uid: u32) -> Option<String> {
    // SAFETY: `pwd` and `buf` outlive the call; getpwuid_r writes only
    // into them and sets `found` to null or to `&mut pwd`, whose pw_name
    // then points at a NUL-terminated string in `buf`.
    lookup_name(|buf, found: &mut *mut libc::passwd| unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), found);
        (rc, (!found.is_null()).then_some(pwd.pw_name))
    })
}

fn group_name(gid: u32) -> Option<String> {
    // SAFETY: as in `user_name`, for getgrgid_r.
    lookup_name(|buf, found: &mut *mut libc::group| unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let rc = libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr().cast(), buf.len(), found);
        (rc, (!found.is_null()).then_some(grp.gr_name))
    })
}

/// Runs a reentrant NSS lookup (`call` answers its return code and, if
/// found, the name pointer into the buffer), growing the buffer while the
/// record does not fit; the name, if there is one.
fn lookup_name<R>(
    mut call: impl FnMut(&mut [u8], &mut *mut R) -> (libc::c_int, Option<*mut libc::c_char>),
) -> Option<String> {
    let mut buf = vec![0u8; START_BUF];
    loop {
        let mut found: *mut R = std::ptr::null_mut();
        let (rc, name) = call(&mut buf, &mut found);
        if rc == libc::ERANGE && buf.len() < MAX_BUF {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        let name = name.filter(|p| rc == 0 && !p.is_null())?;
        // SAFETY: a non-null name from a successful lookup is a
        // NUL-terminated string in `buf`, which is still alive here.
        let name = unsafe { CStr::from_ptr(name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name_and_an_unknown_id_shows_its_number() {
        let mut names = OwnerNames::default();
        // uid and gid 0 are "root" on every Linux system this runs on.
        assert_eq!(names.user(0), "root");
        assert_eq!(names.group(0), "root");
        // No account has this id (it is (uid_t)-2, "nobody" on a few
        // systems, so use one below it that nothing allocates).
        assert_eq!(names.user(4_000_000_123), "4000000123");
        assert_eq!(names.group(4_000_000_123), "4000000123");
    }
}
