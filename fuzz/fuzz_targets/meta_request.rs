//! A metadata request body (postcard) as a peer may send it: decoding
//! fails cleanly or yields a request whose access rule, name and
//! read-only flags answer without panicking, and which re-encodes to an
//! equal request.
#![no_main]

use cairn_proto::access::meta_allowed;
use cairn_proto::meta_rpc::MetaCall;
use cairn_proto::identity::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((call, _rest)) = postcard::take_from_bytes::<MetaCall>(data) else {
        return;
    };
    for role in Role::ALL {
        let _ = meta_allowed(role, &call.req);
    }
    assert!(!call.req.op_name().is_empty());
    if call.req.serves_follower_reads() {
        assert!(call.req.is_read_only());
    }
    let bytes = postcard::to_stdvec(&call).expect("encodes");
    let back: MetaCall = postcard::from_bytes(&bytes).expect("re-decodes");
    assert_eq!(back, call);
});
