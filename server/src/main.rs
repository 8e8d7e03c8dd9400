//! The `celeriac` binary: dashboard, CLI, embedded worker and beat.

fn main() {}
