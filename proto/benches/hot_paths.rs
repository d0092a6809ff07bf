//! Framing and ring lookups. `cargo bench -p cairn-proto --bench hot_paths`

use cairn_proto::frame::{decode_frame, encode_frame, MAX_FRAME_LEN};
use cairn_proto::meta_rpc::{Extent, MetaRequest, NsWrite, Owner, RingMember, RingState};
use cairn_proto::ring::Ring;
use cairn_proto::{ChunkId, InodeId};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let extents: Vec<Extent> = (0..1000u64)
        .map(|i| Extent {
            offset: i << 20,
            len: 1 << 20,
            chunk: ChunkId::of(&i.to_le_bytes()),
            chunk_offset: 0,
        })
        .collect();
    let commit = MetaRequest::NsWrite(NsWrite::CommitFile {
        parent: InodeId::ROOT,
        name: "file".into(),
        extents,
        size: 1000 << 20,
        owner: Owner {
            mode: 0o644,
            uid: 0,
            gid: 0,
        },
    });
    let buf = encode_frame(&commit).unwrap();
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("encode_commit_1000_extents", |b| {
        b.iter(|| encode_frame(&commit).unwrap().len())
    });
    g.bench_function("decode_commit_1000_extents", |b| {
        b.iter(|| decode_frame::<MetaRequest>(&buf, MAX_FRAME_LEN).unwrap().1)
    });
    g.finish();

    let ring = Ring::new(RingState {
        policy: Default::default(),
        gc_grace_ms: 0,
        epoch: 1,
        members: (1..=12)
            .map(|id| RingMember {
                id,
                addr: format!("h{id}:1"),
                zone: format!("z{}", id % 3),
                weight: 256,
                down: false,
                draining: false,
                full: false,
            })
            .collect(),
    });
    let ids: Vec<ChunkId> = (0..1024u64)
        .map(|i| ChunkId::of(&i.to_le_bytes()))
        .collect();
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("owners_3_of_12_servers", |b| {
        b.iter(|| ids.iter().map(|id| ring.owners(id, 3)[0].id).sum::<u64>())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
