//! Sizing the async runtime when several cairn processes share a machine
//! (`cairn dev`: a metadata node, chunkservers and a mount on one box).
//! Each process with a thread per core makes every hand-off between tasks
//! a wake-up of a sleeping thread on a core another process is using; on a
//! small machine that costs more than the work. Splitting the cores
//! between the processes keeps each one's tasks on its own threads.

/// Runtime worker threads for each of `processes` cairn processes sharing
/// a machine with `cores` cores: an even share, at least one.
pub fn threads_per_process(cores: usize, processes: usize) -> usize {
    (cores / processes.max(1)).max(1)
}

/// The cores this process may run on (1 if unknown).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_the_cores_and_never_gives_none() {
        assert_eq!(threads_per_process(2, 5), 1);
        assert_eq!(threads_per_process(16, 5), 3);
        assert_eq!(threads_per_process(8, 1), 8);
        assert_eq!(threads_per_process(8, 0), 8);
        assert_eq!(threads_per_process(0, 3), 1);
    }
}
