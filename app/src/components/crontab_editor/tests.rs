//! The editor reads and writes each part of the draft by its key.

use super::*;

#[test]
fn each_part_is_read_and_written_by_its_key() {
    let mut spec = CrontabSpec::default();
    for (key, _) in PARTS {
        set_part(&mut spec, key, format!("{key}!"));
    }
    for (key, _) in PARTS {
        assert_eq!(part(&spec, key), format!("{key}!"));
    }
    assert_eq!(spec.hour, "hour!");
    assert_eq!(spec.timezone, "timezone!");
}
