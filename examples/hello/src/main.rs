//! Hello, Celeriac: a task of our own and a periodic one, with the whole command line
//! (`hello worker -Q hello -c 8`, `hello serve`, `hello call hello.add --args '[2, 3]' --wait`).

use celeriac::prelude::*;
use celeriac_server::App;

/// Adds two numbers; Python sends it with `app.send_task("hello.add", args=(2, 3))`.
#[task(name = "hello.add", queue = "hello")]
async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
    Ok(x + y)
}

/// Says the time has come; beat sends it every 2 seconds.
#[task(name = "hello.tick", queue = "hello")]
async fn tick() -> Result<String, TaskError> {
    Ok("tick".to_owned())
}

fn main() -> std::process::ExitCode {
    let app = App::new("hello")
        .task(add::task())
        .task(tick::task())
        .beat_every("hello.tick", "hello.tick", "2s");
    celeriac_server::main(app)
}
