//! The client's check of a range-read slice, on bytes a corrupt or hostile
//! chunkserver may send: it returns exactly the chunk's bytes of the range,
//! or an error; never anything else, never a panic.
#![no_main]

use std::sync::OnceLock;

use cairn_proto::chunk_slice::{extract, outboard, verify};
use cairn_proto::ChunkId;
use libfuzzer_sys::fuzz_target;

struct Chunk {
    data: Vec<u8>,
    tree: Vec<u8>,
    id: ChunkId,
}

fn chunk() -> &'static Chunk {
    static CHUNK: OnceLock<Chunk> = OnceLock::new();
    CHUNK.get_or_init(|| {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let (tree, id) = outboard(&data);
        Chunk { data, tree, id }
    })
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 5 {
        return;
    }
    let c = chunk();
    let start = u64::from(u16::from_le_bytes([input[0], input[1]])) * 2;
    let len = u64::from(u16::from_le_bytes([input[2], input[3]]));
    let mode = input[4];
    let rest = &input[5..];
    // Either arbitrary bytes, or the genuine slice with fuzzed bytes
    // flipped in it.
    let slice = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut s = extract(&c.data, &c.tree, start, len).expect("a genuine slice");
        for pair in rest.chunks(3) {
            if let [a, b, x] = *pair {
                if !s.is_empty() {
                    let i = usize::from(u16::from_le_bytes([a, b])) % s.len();
                    s[i] ^= x;
                }
            }
        }
        s
    };
    if let Ok(bytes) = verify(&slice, &c.id, start, len) {
        let from = (start as usize).min(c.data.len());
        let to = (start + len).min(c.data.len() as u64) as usize;
        assert_eq!(bytes, c.data[from..to.max(from)], "verified bytes differ");
    }
});
