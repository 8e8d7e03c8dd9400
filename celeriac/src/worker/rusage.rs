//! The worker process's resource usage for `inspect stats`, in the shape of Celery's
//! `rusage` (Python's `resource.getrusage(RUSAGE_SELF)`), read from `/proc/self` because this
//! crate forbids the `unsafe` a `getrusage` call needs.
//!
//! Linux derives `getrusage` from the same counters: `utime`/`stime` from `/proc/self/stat`
//! (clock ticks of `USER_HZ`, which the kernel fixes at 100 for user space on every
//! architecture it supports), `maxrss` from `VmHWM` (KiB), the context switches from
//! `/proc/self/status`, and `inblock`/`oublock` are `read_bytes`/`write_bytes` of
//! `/proc/self/io` in 512-byte blocks. Fields Linux leaves at zero are zero. On a system
//! without `/proc` every field is zero.

use serde_json::{json, Value};

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`).
const USER_HZ: f64 = 100.0;

/// Celery's `rusage` object for this process.
pub(crate) fn rusage() -> Value {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    from_proc(&stat, &status, &io)
}

fn from_proc(stat: &str, status: &str, io: &str) -> Value {
    // Fields after the command name, which sits in parentheses and may contain spaces:
    // index 0 is field 3 (state) of proc(5).
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|field| field.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let stat_field = |number: usize| fields.get(number - 3).copied().unwrap_or(0);
    let ticks = |number: usize| stat_field(number) as f64 / USER_HZ;
    let status_value = |name: &str| named_value(status, name);
    json!({
        "utime": ticks(14),
        "stime": ticks(15),
        "maxrss": status_value("VmHWM:"),
        "ixrss": 0,
        "idrss": 0,
        "isrss": 0,
        "minflt": stat_field(10),
        "majflt": stat_field(12),
        "nswap": 0,
        "inblock": named_value(io, "read_bytes:") / 512,
        "oublock": named_value(io, "write_bytes:") / 512,
        "msgsnd": 0,
        "msgrcv": 0,
        "nsignals": 0,
        "nvcsw": status_value("voluntary_ctxt_switches:"),
        "nivcsw": status_value("nonvoluntary_ctxt_switches:"),
    })
}

/// The number after `name` on its line (`VmHWM:   53692 kB` → 53692).
fn named_value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_proc_files_as_getrusage_reports_them() {
        let stat = "4242 (celeriac (w1)) S 1 4242 4242 0 -1 4194560 19281 0 3 0 65 14 0 0 20 0 4 0";
        let status = "Name:\tceleriac\nVmHWM:\t   53692 kB\nvoluntary_ctxt_switches:\t322\nnonvoluntary_ctxt_switches:\t688\n";
        let io = "rchar: 1\nread_bytes: 274432\nwrite_bytes: 81920\n";
        let usage = from_proc(stat, status, io);
        assert_eq!(usage["utime"], json!(0.65));
        assert_eq!(usage["stime"], json!(0.14));
        assert_eq!(usage["maxrss"], json!(53692));
        assert_eq!(usage["minflt"], json!(19281));
        assert_eq!(usage["majflt"], json!(3));
        assert_eq!(usage["inblock"], json!(536));
        assert_eq!(usage["oublock"], json!(160));
        assert_eq!(usage["nvcsw"], json!(322));
        assert_eq!(usage["nivcsw"], json!(688));
        assert_eq!(
            usage.as_object().unwrap().len(),
            16,
            "Celery's sixteen fields"
        );
    }

    #[test]
    fn the_running_process_has_used_some_time_and_memory() {
        let usage = rusage();
        assert!(usage["maxrss"].as_u64().unwrap() > 0, "{usage}");
    }
}
