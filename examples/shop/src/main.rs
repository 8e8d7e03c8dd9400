//! `shop`: the Celeriac command line over the shop's tasks (see the library's docs).

fn main() -> std::process::ExitCode {
    celeriac_server::main(shop::app())
}
