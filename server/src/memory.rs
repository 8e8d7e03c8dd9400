//! Giving memory back after a large message.
//!
//! mimalloc (the `celeriac` binary's allocator, and the one README recommends) returns freed
//! memory to the system only when some thread later frees a page back to its arenas: the purge
//! is deferred, and nothing runs it once the process goes quiet. A worker that ran three tasks
//! with 10 MB arguments and then idled held 376 MiB for as long as it stayed idle; a dead-lettered
//! 10 MB garbage message left 90 MiB. Its `mi_collect` would purge, but it is an FFI call and the
//! workspace forbids `unsafe`. Freeing one huge allocation is the same trigger through the safe
//! API: mimalloc then purges every range whose delay has passed. Once a second it costs an
//! untouched allocation (no page is written) and a free. Under glibc's malloc the block is an
//! `mmap`/`munmap` pair and changes nothing.

use std::time::Duration;

/// How often the allocator is nudged.
const EVERY: Duration = Duration::from_secs(1);

/// Large enough to be one of mimalloc's huge pages, which are freed to the arena at once.
const NUDGE_BYTES: usize = 16 << 20;

/// Nudges the allocator for the rest of the process; spawn it on the runtime.
pub(crate) async fn return_freed_memory() {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        drop(std::hint::black_box(Vec::<u8>::with_capacity(NUDGE_BYTES)));
    }
}
