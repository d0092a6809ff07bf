//! A chunk-service request body (postcard) as a peer may send it, and a
//! chunkserver's answer as a client reads it.
#![no_main]

use cairn_proto::access::chunk_allowed;
use cairn_proto::chunk_rpc::{ChunkCall, ChunkReply};
use cairn_proto::identity::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((call, _rest)) = postcard::take_from_bytes::<ChunkCall>(data) {
        for role in Role::ALL {
            let _ = chunk_allowed(role, &call.req);
        }
        assert!(!call.req.op_name().is_empty());
        let bytes = postcard::to_stdvec(&call).expect("encodes");
        let back: ChunkCall = postcard::from_bytes(&bytes).expect("re-decodes");
        assert_eq!(back, call);
    }
    if let Ok((reply, _rest)) = postcard::take_from_bytes::<ChunkReply>(data) {
        let bytes = postcard::to_stdvec(&reply).expect("encodes");
        let back: ChunkReply = postcard::from_bytes(&bytes).expect("re-decodes");
        assert_eq!(back, reply);
    }
});
