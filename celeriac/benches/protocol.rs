//! Protocol encode/decode throughput, ours against Python Celery 5.4's own code path in the
//! same run (`cargo bench -p celeriac --bench protocol`). Prints a table with the ratios.
//!
//! Encode = build the protocol-2 message for `add(2, 3)` and serialize kombu's envelope
//! (base64 body). Decode = parse the envelope, base64-decode and parse the body, read the
//! headers. Python runs `app.amqp.as_task_v2` plus kombu's serializer in the venv that
//! `scripts/python-venv.sh` creates.

use celeriac::protocol::task_message::PublishTarget;
use celeriac::protocol::{Envelope, TaskMessage};
use celeriac::types::TaskId;
use serde_json::{json, Map};
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const MESSAGES: u32 = 200_000;

fn encode_one(target: &PublishTarget, number: u32) -> String {
    let mut message = TaskMessage::new(
        "proj.add",
        TaskId(format!("id-{number}")),
        vec![json!(2), json!(3)],
        Map::new(),
    );
    message.headers.origin = Some("gen1@bench".into());
    message
        .to_envelope(target, format!("tag-{number}"), celeriac::clock::now())
        .to_json()
}

fn per_second(count: u32, seconds: f64) -> f64 {
    f64::from(count) / seconds
}

fn python_rates() -> Option<(f64, f64)> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-interop/bin/python");
    if !python.exists() {
        return None;
    }
    let script = format!(
        r#"
import base64, json, time, uuid
from celery import Celery
from kombu.serialization import dumps, loads
app = Celery("bench", broker="memory://")
n = {MESSAGES}
start = time.perf_counter()
for i in range(n):
    m = app.amqp.as_task_v2("id-%d" % i, "proj.add", args=(2, 3), kwargs={{}}, origin="gen1@bench")
    content_type, encoding, body = dumps(m.body, serializer="json")
    envelope = json.dumps({{"body": base64.b64encode(body.encode()).decode(), "content-encoding": encoding,
        "content-type": content_type, "headers": m.headers,
        "properties": dict(m.properties, delivery_tag=str(uuid.uuid4()), body_encoding="base64",
                           delivery_info={{"exchange": "", "routing_key": "celery"}}, priority=0)}})
encode = n / (time.perf_counter() - start)
start = time.perf_counter()
for i in range(n):
    message = json.loads(envelope)
    body = loads(base64.b64decode(message["body"]), message["content-type"], message["content-encoding"])
    args, kwargs, embed = body
    task, task_id = message["headers"]["task"], message["headers"]["id"]
decode = n / (time.perf_counter() - start)
print(encode, decode)
"#
    );
    let output = Command::new(python).arg("-c").arg(script).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .split_whitespace()
        .filter_map(|word| word.parse::<f64>().ok());
    Some((numbers.next()?, numbers.next()?))
}

fn main() {
    let target = PublishTarget {
        exchange: String::new(),
        routing_key: "celery".into(),
        priority: 0,
        reply_to: "bench".into(),
    };
    let start = Instant::now();
    let mut last = String::new();
    for number in 0..MESSAGES {
        last = black_box(encode_one(&target, number));
    }
    let encode = per_second(MESSAGES, start.elapsed().as_secs_f64());
    let start = Instant::now();
    for _ in 0..MESSAGES {
        let envelope =
            Envelope::from_json(black_box(last.as_bytes())).expect("our own envelope parses");
        let message = TaskMessage::decode(&envelope).expect("our own message decodes");
        black_box(&message.headers.task);
    }
    let decode = per_second(MESSAGES, start.elapsed().as_secs_f64());
    let python = python_rates();
    println!("protocol benchmark, {MESSAGES} messages each, one core");
    println!("| operation | celeriac (msg/s) | Celery 5.4 (msg/s) | ratio |");
    println!("|---|---:|---:|---:|");
    for (name, ours, theirs) in [
        ("encode add(2, 3)", encode, python.map(|rates| rates.0)),
        ("decode", decode, python.map(|rates| rates.1)),
    ] {
        match theirs {
            Some(theirs) => println!(
                "| {name} | {ours:.0} | {theirs:.0} | {:.1}× |",
                ours / theirs
            ),
            None => println!("| {name} | {ours:.0} | n/a (run scripts/python-venv.sh) | – |"),
        }
    }
}
