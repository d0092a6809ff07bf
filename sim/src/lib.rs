//! cairn-sim: a deterministic simulation of the background machinery that
//! decides where chunk copies live — the real placement ring
//! (`cairn_proto::ring`), repair plan (`cairn_chunkserver::repair_plan`),
//! GC rule (`cairn_proto::gc_rule`), replication-queue plan
//! (`cairn_chunkserver::queue_plan`), the metadata state machine
//! (`cairn_metadata::namespace` over its in-memory store) and the chunk
//! store itself (`cairn_chunkserver::store`, over [`sim_fs`]: a disk that
//! loses and tears what was not fsynced) — driven by one seeded random
//! scheduler, with simulated disks, clocks and network.
//!
//! A run ([`world::run`]) has a fault phase (clients put, overwrite,
//! remove and deduplicate while servers crash and restart, power is cut
//! (also inside a put), links are cut one way or both, copies rot or
//! become unreadable, disks fill, clocks skew, servers join, drain and
//! leave, and the replication policy changes) and a quiet phase (faults healed) in which the cluster must
//! converge. Invariants are checked at every step ([`world::Violation`]):
//! no acknowledged file loses its last intact copy, every repair drop
//! leaves every current owner holding an intact copy, a crash takes no
//! copy the store acknowledged and leaves none torn, and after the quiet
//! phase every referenced chunk is on N intact copies on its owners and
//! no garbage is left. Everything random comes from the seed, so a seed
//! replays the same trace.
//!
//! Depends on cairn-proto, cairn-chunkserver and cairn-metadata for their
//! pure logic and the chunk store: no real disk, no network, no threads.

pub mod disk;
pub mod sim_fs;
pub mod world;
