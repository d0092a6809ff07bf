//! Chunking and hashing throughput on one core (the client's hot path).
//! `cargo bench -p cairn-client --bench chunking`

use cairn_client::chunker::cut_points;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};

fn data() -> Vec<u8> {
    let mut v = vec![0u8; 64 << 20];
    rand::rngs::StdRng::seed_from_u64(1).fill(&mut v[..]);
    v
}

fn bench(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Bytes(d.len() as u64));
    g.sample_size(10);
    g.bench_function("fastcdc_cut_64MiB", |b| b.iter(|| cut_points(&d).len()));
    g.bench_function("blake3_hash_64MiB", |b| b.iter(|| blake3::hash(&d)));
    g.bench_function("chunk_and_hash_64MiB", |b| {
        b.iter(|| {
            cut_points(&d)
                .into_iter()
                .map(|(o, l)| blake3::hash(&d[o..o + l]).as_bytes()[0] as usize)
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
