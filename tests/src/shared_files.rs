//! Files several writers share, in the nemesis' workload: every put, read
//! and remove of them is recorded with when it was called and when it
//! answered, and the whole history must be linearizable
//! ([`crate::linearizability`]): no read returns bytes a completed write
//! had already replaced, misses a write that had returned, or returns
//! bytes nobody wrote.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_client::Client;
use cairn_proto::ErrorCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::linearizability::{check, CheckError, Event, Op, Outcome, MAX_CONTENTS};
use crate::random_bytes;

/// The directory of the shared files.
pub const DIR: &str = "/chaos-shared";
/// Names shared (`s0`, `s1`, ...).
const NAMES: u8 = 3;
/// Writers sharing them.
pub const SHARERS: usize = 2;
/// Longest one operation may take before its outcome counts as unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Search steps the check may take.
const MAX_STEPS: u64 = 50_000_000;

/// The content number of every put's bytes, by their hash: a put
/// registers its bytes before sending them, so any read can name what it
/// got.
#[derive(Clone, Default)]
pub struct Contents(Arc<Mutex<HashMap<[u8; 32], u16>>>);

/// What one sharer did.
#[derive(Default)]
pub struct SharerLog {
    pub events: Vec<Event>,
    /// Reads that returned bytes no put wrote.
    pub foreign: Vec<String>,
}

fn path(n: u8) -> String {
    format!("{DIR}/s{n}")
}

/// Puts, reads and removes the shared files until `stop`; sharer `s`
/// numbers its contents `s`, `s + SHARERS`, ...
pub async fn sharer(
    client: Client,
    s: usize,
    seed: u64,
    contents: Contents,
    stop: Arc<AtomicBool>,
) -> SharerLog {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7368_6172_6500 ^ s as u64);
    let mut log = SharerLog::default();
    let mut next = s as u16;
    while !stop.load(Ordering::Relaxed) && next < MAX_CONTENTS - SHARERS as u16 {
        let n = rng.random_range(0..NAMES);
        let file = path(n);
        let invoked = Instant::now();
        let (op, outcome) = match rng.random_range(0..10) {
            0..=3 => {
                let c = next;
                next += SHARERS as u16;
                let len = rng.random_range(1_000..80_000);
                let data = random_bytes(len, seed ^ (u64::from(c) << 20));
                let hash = *blake3::hash(&data).as_bytes();
                contents.0.lock().unwrap().insert(hash, c);
                let put = tokio::time::timeout(OP_TIMEOUT, client.put(&file, &data[..]));
                let outcome = match put.await {
                    Ok(Ok(_)) => Outcome::Ok,
                    _ => Outcome::Unknown,
                };
                (Op::Put(n, c), outcome)
            }
            4 => {
                let removed = tokio::time::timeout(OP_TIMEOUT, client.remove(&file, false));
                let outcome = match removed.await {
                    Ok(Ok(())) => Outcome::Ok,
                    Ok(Err(e)) if e.code() == Some(ErrorCode::NotFound) => Outcome::NotFound,
                    _ => Outcome::Unknown,
                };
                (Op::Remove(n), outcome)
            }
            _ => {
                let mut buf = Vec::new();
                let read = tokio::time::timeout(OP_TIMEOUT, client.get(&file, &mut buf));
                let outcome = match read.await {
                    Ok(Ok(_)) => {
                        let hash = *blake3::hash(&buf).as_bytes();
                        let known = contents.0.lock().unwrap().get(&hash).copied();
                        match known {
                            Some(c) => Outcome::Content(c),
                            None => {
                                log.foreign
                                    .push(format!("{file}: read {} bytes no put wrote", buf.len()));
                                Outcome::Unknown
                            }
                        }
                    }
                    Ok(Err(e)) if e.code() == Some(ErrorCode::NotFound) => Outcome::NotFound,
                    _ => Outcome::Unknown,
                };
                if outcome == Outcome::Unknown {
                    // A read without an answer constrains nothing.
                    pause(&mut rng).await;
                    continue;
                }
                (Op::Read(n), outcome)
            }
        };
        let completed = (outcome != Outcome::Unknown).then(Instant::now);
        log.events.push(Event {
            op,
            outcome,
            invoked,
            completed,
        });
        pause(&mut rng).await;
    }
    log
}

async fn pause(rng: &mut StdRng) {
    tokio::time::sleep(Duration::from_millis(rng.random_range(20..200))).await;
}

/// Checks the sharers' histories as one: the number of operations
/// checked, or why the history is not linearizable.
pub fn check_history(logs: &[SharerLog]) -> Result<usize, String> {
    let foreign: Vec<&String> = logs.iter().flat_map(|l| &l.foreign).collect();
    if !foreign.is_empty() {
        return Err(format!("reads of bytes nobody wrote: {foreign:?}"));
    }
    let history: Vec<Event> = logs.iter().flat_map(|l| l.events.iter().cloned()).collect();
    match check(&history, MAX_STEPS) {
        Ok(()) => Ok(history.len()),
        Err(CheckError::NotLinearizable) => Err(format!(
            "the history of {} operations on the shared files is not linearizable",
            history.len()
        )),
        Err(e) => Err(format!(
            "the shared files' history could not be checked: {e:?}"
        )),
    }
}
