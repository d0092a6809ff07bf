//! File-per-chunk vs RocksDB BlobDB for the chunk store, durable puts.
//! `cargo bench -p cairn-chunkserver --bench chunk_store`
//!
//! Both stores make every put durable before it returns (fsync / synced
//! WAL), as the chunkserver must before acknowledging. Gets read warm data.

use std::sync::atomic::{AtomicU64, Ordering};

use cairn_chunkserver::store::FileStore;
use cairn_proto::ChunkId;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rocksdb::{Options, WriteOptions, DB};

fn id(n: u64) -> ChunkId {
    ChunkId::of(&n.to_le_bytes())
}

fn blobdb(dir: &std::path::Path) -> DB {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.set_enable_blob_files(true);
    o.set_min_blob_size(4096);
    o.set_blob_file_size(256 << 20);
    DB::open(&o, dir).unwrap()
}

fn bench(c: &mut Criterion) {
    let seq = AtomicU64::new(0);
    for size in [4usize << 10, 1 << 20] {
        let data = vec![0xabu8; size];
        let mut g = c.benchmark_group("chunk_store");
        g.throughput(Throughput::Bytes(size as u64));
        g.sample_size(20);
        g.measurement_time(std::time::Duration::from_secs(6));

        let fdir = tempfile::tempdir_in(".").unwrap();
        let fs = FileStore::open(fdir.path()).unwrap();
        g.bench_with_input(BenchmarkId::new("file_put", size), &data, |b, d| {
            b.iter(|| fs.put(&id(seq.fetch_add(1, Ordering::Relaxed)), d).unwrap())
        });
        for n in 0..64 {
            fs.put(&id(1_000_000 + n), &data).unwrap();
        }
        let mut n = 0;
        g.bench_function(BenchmarkId::new("file_get", size), |b| {
            b.iter(|| {
                n = (n + 1) % 64;
                fs.get(&id(1_000_000 + n)).unwrap().unwrap().len()
            })
        });

        let rdir = tempfile::tempdir_in(".").unwrap();
        let db = blobdb(rdir.path());
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        g.bench_with_input(BenchmarkId::new("blobdb_put", size), &data, |b, d| {
            b.iter(|| {
                db.put_opt(id(seq.fetch_add(1, Ordering::Relaxed)).0, d, &wo)
                    .unwrap()
            })
        });
        for n in 0..64 {
            db.put_opt(id(1_000_000 + n).0, &data, &wo).unwrap();
        }
        g.bench_function(BenchmarkId::new("blobdb_get", size), |b| {
            b.iter(|| {
                n = (n + 1) % 64;
                db.get(id(1_000_000 + n).0).unwrap().unwrap().len()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
