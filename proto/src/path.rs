//! Path components and paths as users type them.

use crate::error::{ErrorCode, RpcError};

/// Longest allowed path component, in bytes (as Linux `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;
/// Longest allowed path, in bytes (as Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;

/// Checks one path component: non-empty, at most 255 bytes, no `/`, no NUL,
/// and not `.` or `..`.
pub fn validate_name(name: &str) -> Result<(), RpcError> {
    let bad = |why: &str| {
        Err(RpcError::new(
            ErrorCode::InvalidName,
            format!("invalid name {:?}: {why}", truncate_for_message(name)),
        ))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 255 bytes");
    }
    if name.contains('/') {
        return bad("contains '/'");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not names");
    }
    Ok(())
}

/// Splits an absolute or relative cluster path into validated components.
/// `/`, `""` and `.` name the root; empty components (`a//b`) and `.` are
/// skipped; `..` is refused.
pub fn split_path(path: &str) -> Result<Vec<&str>, RpcError> {
    if path.len() > MAX_PATH_LEN {
        return Err(RpcError::new(
            ErrorCode::InvalidName,
            "path longer than 4096 bytes",
        ));
    }
    let mut out = Vec::new();
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        validate_name(part)?;
        out.push(part);
    }
    Ok(out)
}

fn truncate_for_message(name: &str) -> &str {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        assert!(validate_name("a").is_ok());
        assert!(validate_name(&"x".repeat(255)).is_ok());
        for bad in ["", "a/b", "a\0b", ".", ".."] {
            assert_eq!(
                validate_name(bad).unwrap_err().code,
                ErrorCode::InvalidName,
                "{bad:?}"
            );
        }
        assert!(validate_name(&"x".repeat(256)).is_err());
        // 255 bytes of multi-byte characters is fine; 256 is not.
        assert!(validate_name(&"é".repeat(127)).is_ok());
        assert!(validate_name(&"é".repeat(128)).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(split_path("/").unwrap(), Vec::<&str>::new());
        assert_eq!(split_path("/a//b/./c/").unwrap(), vec!["a", "b", "c"]);
        assert!(split_path("/a/../b").is_err());
    }

    proptest! {
        #[test]
        fn split_never_panics_and_yields_valid_names(s in ".{0,300}") {
            if let Ok(parts) = split_path(&s) {
                for p in parts {
                    prop_assert!(validate_name(p).is_ok());
                }
            }
        }
    }
}
