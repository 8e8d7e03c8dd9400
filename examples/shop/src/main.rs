//! `shop`: the Celeriac command line over the shop's tasks (see the library's docs).

/// mimalloc instead of glibc's malloc: the dashboard held a quarter less memory under issue
/// 13's soak (README, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    celeriac_server::main(shop::app())
}
