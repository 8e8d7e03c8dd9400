//! The stock `celeriac` binary: the command line and the dashboard over an app with no tasks of
//! its own, so it can be pointed at a real Celery cluster (`serve` for the dashboard and beat,
//! `inspect`, `call`, `schedule`, ...) without consuming anyone's messages. A binary with tasks
//! is built on `celeriac_server::main` (see `examples/shop`).

/// mimalloc instead of glibc's malloc: the dashboard held a quarter less memory under issue
/// 13's soak (README, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    celeriac_server::main(celeriac_server::App::new("celeriac"))
}
