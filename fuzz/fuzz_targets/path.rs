//! Path and name validation on arbitrary strings: what is accepted obeys
//! the rules (non-empty components of at most 255 bytes, no '/', no NUL,
//! not '.' or '..'), and splitting never panics.
#![no_main]

use cairn_proto::path::{split_path, validate_name, MAX_NAME_LEN, MAX_PATH_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if validate_name(&text).is_ok() {
        assert!(!text.is_empty() && text.len() <= MAX_NAME_LEN);
        assert!(!text.contains('/') && !text.contains('\0'));
        assert!(text != "." && text != "..");
    }
    if let Ok(parts) = split_path(&text) {
        assert!(text.len() <= MAX_PATH_LEN);
        for part in parts {
            assert!(validate_name(part).is_ok(), "{part:?} passed split_path");
        }
    }
});
