//! Where an object lives in the namespace: bucket `B` is the directory
//! `ROOT/B`, object key `a/b/c` the file `ROOT/B/a/b/c` (directories `a`
//! and `b` made as needed), so the mount and S3 see the same files.
//!
//! A key lives at its path when each `/`-separated segment is a name a
//! directory can hold (non-empty, not `.` or `..`, at most 255 bytes, no
//! NUL) and nothing is in the way. Every other key S3 allows — `a//b`,
//! `dir/`, `./x`, a segment over 255 bytes, `a/b` beside an object `a`,
//! `a` beside keys `a/...`, or one under [`STORE`] — is kept in the
//! bucket's key store instead: `B/.cairn-s3/keys/` + the key's bytes in
//! hex, cut into directories of [`HEX_SEGMENT`] characters, the last
//! part a file named with a `.` after it ([`stored_segments`]). Hex keeps
//! byte order, so a walk of the store yields its keys in order too.

use cairn_proto::path::MAX_NAME_LEN;

/// Longest key S3 allows, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// The bucket directory's entry that holds the gateway's own state (the
/// key store); never listed as keys itself.
pub const STORE: &str = ".cairn-s3";
/// The key store, under [`STORE`].
pub const KEYS: &str = "keys";
/// Hex characters per key-store directory (an even number, so each is
/// whole bytes; a leaf's name is at most this plus its `.`, within 255).
pub const HEX_SEGMENT: usize = 254;

/// A key S3 itself refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("the key is {0} bytes; S3 keys are at most {MAX_KEY_LEN}")]
    TooLong(usize),
}

/// Checks `key` is one S3 allows.
pub fn check(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong(key.len()));
    }
    Ok(())
}

/// The path segments of `key` if it can live at its path (see the
/// module docs); `None` if it must go to the key store.
pub fn segments(key: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = key.split('/').collect();
    let plain = |s: &&str| {
        !s.is_empty() && *s != "." && *s != ".." && s.len() <= MAX_NAME_LEN && !s.contains('\0')
    };
    (parts.iter().all(plain) && parts[0] != STORE).then_some(parts)
}

/// `key`'s path in the key store, below `B/.cairn-s3/keys`: directories
/// of [`HEX_SEGMENT`] hex characters, then the rest with a `.` after it.
pub fn stored_segments(key: &str) -> Vec<String> {
    let hex = hex::encode(key.as_bytes());
    // At least one character in the leaf: a key's hex is never empty.
    let dirs = (hex.len() - 1) / HEX_SEGMENT;
    let mut out: Vec<String> = (0..dirs)
        .map(|i| hex[i * HEX_SEGMENT..(i + 1) * HEX_SEGMENT].to_string())
        .collect();
    out.push(format!("{}.", &hex[dirs * HEX_SEGMENT..]));
    out
}

/// The key a key-store leaf stands for, from the hex of its directories
/// (`dirs_hex`, concatenated) and its own name; `None` for a name the
/// gateway did not write.
pub fn stored_key(dirs_hex: &str, leaf: &str) -> Option<String> {
    let leaf = leaf.strip_suffix('.')?;
    let bytes = hex::decode(format!("{dirs_hex}{leaf}")).ok()?;
    String::from_utf8(bytes).ok()
}

/// Where a key-store entry sorts among its siblings: a leaf `H.` as `H`,
/// a directory `D` (keys `D...` longer than it) as `D0`, below every
/// longer hex string that begins with `D` and above every leaf that does
/// not sort before them.
pub fn stored_sort_name(name: &str, is_dir: bool) -> String {
    if is_dir {
        format!("{name}0")
    } else {
        name.trim_end_matches('.').to_string()
    }
}

/// The namespace path of `bucket` under `root` (`/` or `/some/dir`).
pub fn bucket_path(root: &str, bucket: &str) -> String {
    format!("{}/{bucket}", root.trim_end_matches('/'))
}

/// The namespace path of object `key` at its own path (one
/// [`segments`] accepts) in `bucket` under `root`.
pub fn object_path(root: &str, bucket: &str, key: &str) -> String {
    format!("{}/{key}", bucket_path(root, bucket))
}

/// The key store of `bucket` under `root`.
pub fn store_path(root: &str, bucket: &str) -> String {
    format!("{}/{STORE}/{KEYS}", bucket_path(root, bucket))
}

/// Where `key` lives in `bucket`'s key store.
pub fn stored_path(root: &str, bucket: &str, key: &str) -> String {
    format!(
        "{}/{}",
        store_path(root, bucket),
        stored_segments(key).join("/")
    )
}

/// Where a listing places a directory entry among its siblings: S3 lists
/// keys in byte order, and every key under directory `d` begins `d/`, so
/// the directory sorts as `d/` does (after `d-x`, before `d0`).
pub fn sort_name(name: &str, is_dir: bool) -> String {
    if is_dir {
        format!("{name}/")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_map_to_paths() {
        assert_eq!(segments("a/b/c.txt").unwrap(), vec!["a", "b", "c.txt"]);
        assert_eq!(segments("ünï cödé").unwrap(), vec!["ünï cödé"]);
        assert_eq!(object_path("/", "bk", "a/b"), "/bk/a/b");
        assert_eq!(object_path("/s3/", "bk", "a"), "/s3/bk/a");
    }

    #[test]
    fn keys_without_a_path_go_to_the_store() {
        for k in [
            "a//b",
            "dir/",
            "/lead",
            "./x",
            "a/../b",
            "a/./b",
            "n\0ul",
            ".cairn-s3/x",
        ] {
            assert!(segments(k).is_none(), "{k:?} has no path of its own");
        }
        assert!(segments(&"x".repeat(MAX_NAME_LEN + 1)).is_none());
        assert!(segments(&"x".repeat(MAX_NAME_LEN)).is_some());
        assert_eq!(check(""), Err(KeyError::Empty));
        let long_key = "a/".repeat(MAX_KEY_LEN / 2) + "a";
        assert_eq!(check(&long_key), Err(KeyError::TooLong(long_key.len())));
        assert_eq!(check(&"k".repeat(MAX_KEY_LEN)), Ok(()));
    }

    #[test]
    fn stored_keys_round_trip_and_fit_in_names() {
        for len in [1, 126, 127, 128, 254, 255, 600, MAX_KEY_LEN] {
            let key: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let segs = stored_segments(&key);
            assert!(segs.iter().all(|s| s.len() <= MAX_NAME_LEN), "{len}");
            let (leaf, dirs) = segs.split_last().unwrap();
            assert!(dirs.iter().all(|d| d.len() == HEX_SEGMENT));
            assert_eq!(
                stored_key(&dirs.concat(), leaf).as_deref(),
                Some(key.as_str())
            );
        }
        assert_eq!(stored_key("", "zz."), None);
        assert_eq!(stored_key("", "6162"), None, "a leaf ends in '.'");
        assert_eq!(stored_path("/", "b", "a//b"), "/b/.cairn-s3/keys/612f2f62.");
    }

    proptest::proptest! {
        /// A depth-first walk of the store, siblings in
        /// `stored_sort_name` order, yields keys in byte order.
        #[test]
        fn the_store_walks_in_key_order(
            keys in proptest::collection::btree_set("[a-c/]{1,3}|[a-c]{126,129}|[a-c]{253,256}", 1..12)
        ) {
            // Build the tree as nested maps, then walk it.
            #[derive(Default)]
            struct Dir(std::collections::BTreeMap<String, Option<Dir>>);
            let mut root = Dir::default();
            for k in &keys {
                let segs = stored_segments(k);
                let (leaf, dirs) = segs.split_last().unwrap();
                let mut d = &mut root;
                for s in dirs {
                    d = d.0.entry(s.clone()).or_insert_with(|| Some(Dir::default())).as_mut().unwrap();
                }
                d.0.insert(leaf.clone(), None);
            }
            fn walk(d: &Dir, hex: &str, out: &mut Vec<String>) {
                let mut names: Vec<_> = d.0.iter().collect();
                names.sort_by_key(|(n, sub)| stored_sort_name(n, sub.is_some()));
                for (n, sub) in names {
                    match sub {
                        Some(s) => walk(s, &format!("{hex}{n}"), out),
                        None => out.push(stored_key(hex, n).unwrap()),
                    }
                }
            }
            let mut out = Vec::new();
            walk(&root, "", &mut out);
            let want: Vec<String> = keys.into_iter().collect();
            proptest::prop_assert_eq!(out, want);
        }
    }

    #[test]
    fn directories_sort_as_their_keys_do() {
        let mut names = [("d0", false), ("d", true), ("d-x", false), ("c", false)];
        names.sort_by_key(|(n, d)| sort_name(n, *d));
        assert_eq!(
            names.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec!["c", "d-x", "d", "d0"]
        );
    }
}
