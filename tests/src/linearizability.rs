//! A linearizability checker for histories of namespace and file
//! operations on a few names in one directory: mkdir, rename, stat, and
//! whole-file put, read and remove, with file contents told apart by a
//! number the caller gives each write.
//!
//! The search is Wing & Gong's, with Lowe's memoization as Porcupine does
//! it: walk the history's call/return events; at a call, try to linearize
//! that operation now (if the model allows its recorded result and the
//! pair (operations linearized, state) is new); at a return whose
//! operation is not linearized yet, undo the last choice. An operation
//! whose result is unknown (it failed or timed out: it may or may not have
//! taken effect) has no return event and accepts any result, so it can be
//! placed anywhere after its call — at the very end meaning "never seen".

use std::collections::HashSet;

/// The names operated on: indices 0..MAX_NAMES.
pub const MAX_NAMES: u8 = 8;

/// Contents a history may name: 0..MAX_CONTENTS.
pub const MAX_CONTENTS: u16 = u16::MAX - 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// mkdir of name `n`.
    Create(u8),
    /// rename `from` to `to` (whatever is at `to` is replaced).
    Rename(u8, u8),
    /// stat of name `n`.
    Stat(u8),
    /// Writes file `n` whole with content `c` (created or replaced).
    Put(u8, u16),
    /// Reads file `n` whole.
    Read(u8),
    /// Removes name `n`.
    Remove(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Create: the name existed. Put: a directory is there.
    Exists,
    /// Rename, stat, read, remove: the name does not exist.
    NotFound,
    /// Stat: the name exists.
    Found,
    /// Read: the file holds content `c`.
    Content(u16),
    /// Read: the name is a directory.
    IsDir,
    /// No answer, or an error that leaves the effect unknown.
    Unknown,
}

/// One operation as a client saw it; times from one monotonic clock.
#[derive(Clone, Debug)]
pub struct Event {
    pub op: Op,
    pub outcome: Outcome,
    pub invoked: std::time::Instant,
    /// `None` when the outcome is unknown.
    pub completed: Option<std::time::Instant>,
}

/// What each name holds: [`ABSENT`], [`DIR`], or a file of content `c`
/// as `FILE + c`.
type State = [u16; MAX_NAMES as usize];
const ABSENT: u16 = 0;
const DIR: u16 = 1;
const FILE: u16 = 2;

/// The model's answer to `op` in `state`: the result and the next state.
fn step(state: State, op: Op) -> (Outcome, State) {
    let mut next = state;
    let at = |n: u8| state[n as usize];
    let outcome = match op {
        Op::Create(n) if at(n) != ABSENT => Outcome::Exists,
        Op::Create(n) => {
            next[n as usize] = DIR;
            Outcome::Ok
        }
        Op::Rename(a, _) if at(a) == ABSENT => Outcome::NotFound,
        Op::Rename(a, b) => {
            next[a as usize] = ABSENT;
            next[b as usize] = at(a);
            Outcome::Ok
        }
        Op::Stat(n) if at(n) == ABSENT => Outcome::NotFound,
        Op::Stat(_) => Outcome::Found,
        Op::Put(n, _) if at(n) == DIR => Outcome::Exists,
        Op::Put(n, c) => {
            next[n as usize] = FILE + c;
            Outcome::Ok
        }
        Op::Read(n) => match at(n) {
            ABSENT => Outcome::NotFound,
            DIR => Outcome::IsDir,
            f => Outcome::Content(f - FILE),
        },
        Op::Remove(n) if at(n) == ABSENT => Outcome::NotFound,
        Op::Remove(n) => {
            next[n as usize] = ABSENT;
            Outcome::Ok
        }
    };
    (outcome, next)
}

/// Why a history could not be checked.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckError {
    /// No order of the operations explains every result.
    NotLinearizable,
    /// The search gave up after this many steps.
    TooLong(u64),
    /// An event names a name outside 0..MAX_NAMES, or a content outside
    /// 0..MAX_CONTENTS.
    BadName,
}

#[derive(Clone, Copy)]
enum Kind {
    Call,
    Return,
}

/// Checks that `history` is linearizable, starting from no names, within
/// `max_steps` search steps.
pub fn check(history: &[Event], max_steps: u64) -> Result<(), CheckError> {
    let names_ok = |op: &Op| match *op {
        Op::Create(n) | Op::Stat(n) | Op::Read(n) | Op::Remove(n) => n < MAX_NAMES,
        Op::Put(n, c) => n < MAX_NAMES && c < MAX_CONTENTS,
        Op::Rename(a, b) => a < MAX_NAMES && b < MAX_NAMES,
    };
    if !history.iter().all(|e| names_ok(&e.op)) {
        return Err(CheckError::BadName);
    }
    // Events in time order; at equal times calls come first (overlap is
    // the permissive reading).
    let mut events: Vec<(std::time::Instant, Kind, usize)> = Vec::new();
    for (i, e) in history.iter().enumerate() {
        events.push((e.invoked, Kind::Call, i));
        if let Some(t) = e.completed {
            events.push((t, Kind::Return, i));
        }
    }
    events.sort_by_key(|(t, k, i)| (*t, matches!(k, Kind::Return), *i));

    let n = history.len();
    // `live[j]`: event j still in the list (not lifted by linearizing).
    let mut live = vec![true; events.len()];
    let mut return_of = vec![None; n];
    for (j, (_, k, i)) in events.iter().enumerate() {
        if matches!(k, Kind::Return) {
            return_of[*i] = Some(j);
        }
    }
    let mut done = vec![false; n];
    let mut done_bits = vec![0u64; n.div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    // Linearized so far: (event index of its call, state before it).
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = [ABSENT; MAX_NAMES as usize];
    let mut j = 0usize;
    let mut steps = 0u64;
    let mut backtrack = false;
    loop {
        steps += 1;
        if steps > max_steps {
            return Err(CheckError::TooLong(max_steps));
        }
        while j < events.len() && !live[j] {
            j += 1;
        }
        if j == events.len() {
            if done.iter().all(|d| *d) {
                return Ok(());
            }
            // Only unknown operations remain unplaced, and none could go
            // here: backtrack.
            backtrack = true;
        }
        if backtrack {
            backtrack = false;
            let Some((call, before)) = stack.pop() else {
                return Err(CheckError::NotLinearizable);
            };
            undo(
                &events,
                &mut live,
                &return_of,
                &mut done,
                &mut done_bits,
                call,
            );
            state = before;
            j = call + 1;
            continue;
        }
        let (_, kind, i) = events[j];
        match kind {
            Kind::Call => {
                let e = &history[i];
                let (want, next) = step(state, e.op);
                let allowed = e.outcome == Outcome::Unknown || e.outcome == want;
                let mut key_bits = done_bits.clone();
                key_bits[i / 64] |= 1 << (i % 64);
                if allowed && seen.insert((key_bits, next)) {
                    stack.push((j, state));
                    state = next;
                    done[i] = true;
                    done_bits[i / 64] |= 1 << (i % 64);
                    live[j] = false;
                    if let Some(r) = return_of[i] {
                        live[r] = false;
                    }
                    j = 0;
                } else {
                    j += 1;
                }
            }
            // An operation returned before being placed: undo the last
            // choice and try the next one.
            Kind::Return => backtrack = true,
        }
    }
}

fn undo(
    events: &[(std::time::Instant, Kind, usize)],
    live: &mut [bool],
    return_of: &[Option<usize>],
    done: &mut [bool],
    done_bits: &mut [u64],
    call: usize,
) {
    let i = events[call].2;
    live[call] = true;
    if let Some(r) = return_of[i] {
        live[r] = true;
    }
    done[i] = false;
    done_bits[i / 64] &= !(1 << (i % 64));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn ev(t0: Instant, op: Op, outcome: Outcome, from: u64, to: Option<u64>) -> Event {
        Event {
            op,
            outcome,
            invoked: t0 + Duration::from_millis(from),
            completed: to.map(|t| t0 + Duration::from_millis(t)),
        }
    }

    #[test]
    fn sequential_histories_follow_the_model() {
        let t = Instant::now();
        let h = vec![
            ev(t, Op::Create(0), Outcome::Ok, 0, Some(1)),
            ev(t, Op::Create(0), Outcome::Exists, 2, Some(3)),
            ev(t, Op::Rename(0, 1), Outcome::Ok, 4, Some(5)),
            ev(t, Op::Stat(0), Outcome::NotFound, 6, Some(7)),
            ev(t, Op::Stat(1), Outcome::Found, 8, Some(9)),
        ];
        assert_eq!(check(&h, 10_000), Ok(()));
        let mut stale = h.clone();
        stale[3].outcome = Outcome::Found; // a read of a moved name
        assert_eq!(check(&stale, 10_000), Err(CheckError::NotLinearizable));
    }

    #[test]
    fn overlapping_operations_may_take_effect_in_either_order() {
        let t = Instant::now();
        // Two creates of the same name overlap: either may win.
        let h = vec![
            ev(t, Op::Create(2), Outcome::Exists, 0, Some(10)),
            ev(t, Op::Create(2), Outcome::Ok, 1, Some(9)),
        ];
        assert_eq!(check(&h, 10_000), Ok(()));
        // But a read that began after a create returned must see it.
        let h = vec![
            ev(t, Op::Create(2), Outcome::Ok, 0, Some(5)),
            ev(t, Op::Stat(2), Outcome::NotFound, 6, Some(7)),
        ];
        assert_eq!(check(&h, 10_000), Err(CheckError::NotLinearizable));
    }

    #[test]
    fn an_unknown_outcome_may_or_may_not_have_happened() {
        let t = Instant::now();
        let took_effect = vec![
            ev(t, Op::Create(0), Outcome::Unknown, 0, None),
            ev(t, Op::Stat(0), Outcome::Found, 5, Some(6)),
        ];
        assert_eq!(check(&took_effect, 10_000), Ok(()));
        let did_not = vec![
            ev(t, Op::Create(0), Outcome::Unknown, 0, None),
            ev(t, Op::Stat(0), Outcome::NotFound, 5, Some(6)),
            ev(t, Op::Create(1), Outcome::Ok, 7, Some(8)),
        ];
        assert_eq!(check(&did_not, 10_000), Ok(()));
        // A write seen, then unseen, with nothing between: impossible.
        let flicker = vec![
            ev(t, Op::Create(0), Outcome::Unknown, 0, None),
            ev(t, Op::Stat(0), Outcome::Found, 5, Some(6)),
            ev(t, Op::Stat(0), Outcome::NotFound, 7, Some(8)),
        ];
        assert_eq!(check(&flicker, 10_000), Err(CheckError::NotLinearizable));
    }

    #[test]
    fn reads_see_the_last_write_or_one_overlapping_it() {
        let t = Instant::now();
        let h = vec![
            ev(t, Op::Put(0, 1), Outcome::Ok, 0, Some(2)),
            ev(t, Op::Put(0, 2), Outcome::Ok, 3, Some(10)),
            // Overlaps the second put: either content.
            ev(t, Op::Read(0), Outcome::Content(1), 4, Some(5)),
            ev(t, Op::Read(0), Outcome::Content(2), 6, Some(7)),
            ev(t, Op::Remove(0), Outcome::Ok, 11, Some(12)),
            ev(t, Op::Read(0), Outcome::NotFound, 13, Some(14)),
        ];
        assert_eq!(check(&h, 10_000), Ok(()));
        // Once a read saw the new content, a later read may not go back.
        let mut back = h.clone();
        back.insert(4, ev(t, Op::Read(0), Outcome::Content(1), 8, Some(9)));
        assert_eq!(check(&back, 10_000), Err(CheckError::NotLinearizable));
        // A read after the put returned sees it, not the old bytes.
        let stale = vec![
            ev(t, Op::Put(1, 1), Outcome::Ok, 0, Some(1)),
            ev(t, Op::Put(1, 2), Outcome::Ok, 2, Some(3)),
            ev(t, Op::Read(1), Outcome::Content(1), 4, Some(5)),
        ];
        assert_eq!(check(&stale, 10_000), Err(CheckError::NotLinearizable));
        // A put whose answer was lost may or may not show.
        let lost = vec![
            ev(t, Op::Put(2, 7), Outcome::Unknown, 0, None),
            ev(t, Op::Read(2), Outcome::NotFound, 1, Some(2)),
            ev(t, Op::Read(2), Outcome::Content(7), 3, Some(4)),
        ];
        assert_eq!(check(&lost, 10_000), Ok(()));
    }

    #[test]
    fn renames_move_contents_and_directories_refuse_puts() {
        let t = Instant::now();
        let h = vec![
            ev(t, Op::Put(0, 5), Outcome::Ok, 0, Some(1)),
            ev(t, Op::Rename(0, 1), Outcome::Ok, 2, Some(3)),
            ev(t, Op::Read(1), Outcome::Content(5), 4, Some(5)),
            ev(t, Op::Create(2), Outcome::Ok, 6, Some(7)),
            ev(t, Op::Put(2, 6), Outcome::Exists, 8, Some(9)),
            ev(t, Op::Read(2), Outcome::IsDir, 10, Some(11)),
        ];
        assert_eq!(check(&h, 10_000), Ok(()));
        let mut wrong = h.clone();
        wrong[2].outcome = Outcome::Content(6);
        assert_eq!(check(&wrong, 10_000), Err(CheckError::NotLinearizable));
    }

    #[test]
    fn the_search_is_bounded() {
        let t = Instant::now();
        let h: Vec<Event> = (0..40)
            .map(|i| ev(t, Op::Stat((i % 3) as u8), Outcome::Unknown, 0, None))
            .collect();
        assert!(check(&h, 1_000_000).is_ok());
        let bad = vec![ev(t, Op::Stat(9), Outcome::Found, 0, Some(1))];
        assert_eq!(check(&bad, 10), Err(CheckError::BadName));
    }
}
