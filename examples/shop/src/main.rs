//! `shop`: the Celeriac command line over the shop's tasks (see the library's docs).

/// mimalloc instead of glibc's malloc: under the dashboard's load glibc kept freed memory in
/// its per-thread arenas (README, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    celeriac_server::main(shop::app())
}
