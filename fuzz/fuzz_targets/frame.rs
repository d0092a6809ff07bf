//! The frame decoder on arbitrary bytes: every request and answer type a
//! server or client reads. It must return an error, never panic or
//! allocate past the limit; what decodes must encode back to a frame that
//! decodes to the same value.
#![no_main]

use cairn_proto::chunk_rpc::{ChunkCall, ChunkReply};
use cairn_proto::frame::{decode_frame, encode_frame, parse_header, HEADER_LEN, MAX_FRAME_LEN};
use cairn_proto::meta_rpc::{MetaCall, MetaResponse};
use cairn_proto::RpcError;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fn round_trip<T>(data: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    if let Ok((msg, used)) = decode_frame::<T>(data, MAX_FRAME_LEN) {
        assert!(used <= data.len() && used >= HEADER_LEN);
        let again = encode_frame(&msg).expect("a decoded message encodes");
        let (back, n) = decode_frame::<T>(&again, MAX_FRAME_LEN).expect("re-decodes");
        assert_eq!(back, msg);
        assert_eq!(n, again.len());
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() >= HEADER_LEN {
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&data[..HEADER_LEN]);
        if let Ok(len) = parse_header(header, 1 << 20) {
            assert!(len <= 1 << 20);
        }
    }
    round_trip::<MetaCall>(data);
    round_trip::<Result<MetaResponse, RpcError>>(data);
    round_trip::<ChunkCall>(data);
    round_trip::<ChunkReply>(data);
});
