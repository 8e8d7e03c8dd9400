//! Property tests: whatever order events arrive in, however often, and whichever are lost, the
//! state is what the events that did arrive say, and a task never goes back from a ready state.

use super::tests::task_event;
use super::*;
use crate::types::TaskState;
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Success,
    Failure,
    Revoked,
    Running,
    RetriedThenSuccess(u8),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Revoked),
        Just(Outcome::Running),
        (1u8..4).prop_map(Outcome::RetriedThenSuccess),
    ]
}

/// The events of one task in the order a worker sends them, and its true final state.
fn task_events(index: usize, outcome: Outcome, sent: bool) -> (Vec<Event>, TaskState) {
    let id = format!("00000000-0000-4000-8000-{index:012}");
    let base = index as f64 * 1_000.0;
    let mut events = Vec::new();
    if sent {
        events.push(task_event(
            "task-sent",
            &id,
            "gen1@host",
            base,
            json!({"name": format!("proj.t{}", index % 2), "args": "()", "retries": 0}),
        ));
    }
    let attempts = match outcome {
        Outcome::RetriedThenSuccess(retries) => u64::from(retries) + 1,
        _ => 1,
    };
    for attempt in 0..attempts {
        let start = base + 10.0 + attempt as f64 * 10.0;
        let worker = if attempt % 2 == 0 {
            "w1@host"
        } else {
            "w2@host"
        };
        events.push(task_event(
            "task-received",
            &id,
            worker,
            start,
            json!({"name": format!("proj.t{}", index % 2), "args": format!("({attempt},)"), "retries": attempt}),
        ));
        events.push(task_event(
            "task-started",
            &id,
            worker,
            start + 1.0,
            json!({}),
        ));
        if attempt + 1 < attempts {
            events.push(task_event(
                "task-retried",
                &id,
                worker,
                start + 2.0,
                json!({"exception": format!("KeyError({attempt})"), "traceback": "tb"}),
            ));
        }
    }
    let last = base + 10.0 + (attempts - 1) as f64 * 10.0 + 3.0;
    let worker = if (attempts - 1) % 2 == 0 {
        "w1@host"
    } else {
        "w2@host"
    };
    let state = match outcome {
        Outcome::Success | Outcome::RetriedThenSuccess(_) => {
            events.push(task_event(
                "task-succeeded",
                &id,
                worker,
                last,
                json!({"result": "1", "runtime": 0.25 + index as f64}),
            ));
            TaskState::Success
        }
        Outcome::Failure => {
            events.push(task_event(
                "task-failed",
                &id,
                worker,
                last,
                json!({"exception": "ValueError()"}),
            ));
            TaskState::Failure
        }
        Outcome::Revoked => {
            events.push(task_event(
                "task-revoked",
                &id,
                worker,
                last,
                json!({"terminated": true}),
            ));
            TaskState::Revoked
        }
        Outcome::Running => TaskState::Started,
    };
    (events, state)
}

fn scenario() -> impl Strategy<Value = (Vec<Event>, Vec<TaskState>)> {
    prop::collection::vec((outcome(), any::<bool>()), 1..5).prop_map(|tasks| {
        let mut events = Vec::new();
        let mut states = Vec::new();
        for (index, (outcome, sent)) in tasks.into_iter().enumerate() {
            let (task, state) = task_events(index, outcome, sent);
            events.extend(task);
            states.push(state);
        }
        (events, states)
    })
}

/// Everything a reader can see, versions left out (they count applications, not content).
fn picture(
    state: &ClusterState,
) -> (
    Vec<TaskSnapshot>,
    Vec<TaskNameSnapshot>,
    Vec<WorkerSnapshot>,
) {
    let mut tasks = state.tasks(&TaskQuery::default());
    tasks.iter_mut().for_each(|task| task.version = 0);
    tasks.sort_by(|left, right| left.id.cmp(&right.id));
    let mut names = state.task_names();
    names.iter_mut().for_each(|name| name.version = 0);
    let mut workers = state.workers(0.0);
    workers.iter_mut().for_each(|worker| worker.version = 0);
    (tasks, names, workers)
}

fn apply_all(events: &[Event]) -> ClusterState {
    let mut state = ClusterState::default();
    for event in events {
        state.apply(event, 0.0);
    }
    state
}

/// Orders states the way they may move: any running state, then ready ones by precedence.
fn rank(state: TaskState) -> u8 {
    match state {
        TaskState::Revoked => 2,
        TaskState::Failure => 3,
        TaskState::Success => 4,
        TaskState::Pending => 0,
        _ => 1,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arrival_order_and_repeats_do_not_matter(
        (events, states) in scenario(),
        order in any::<prop::sample::Index>().prop_map(|seed| seed.index(usize::MAX)),
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut shuffled = events.clone();
        // A seeded Fisher–Yates shuffle, so proptest can shrink the seed.
        let mut seed = order as u64 | 1;
        for index in (1..shuffled.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            shuffled.swap(index, (seed % (index as u64 + 1)) as usize);
        }
        for repeat in &repeats {
            let event = events[repeat.index(events.len())].clone();
            let position = repeat.index(shuffled.len() + 1);
            shuffled.insert(position, event);
        }
        let in_order = apply_all(&events);
        let scrambled = apply_all(&shuffled);
        prop_assert_eq!(picture(&scrambled), picture(&in_order));
        let finals: Vec<TaskState> = picture(&in_order).0.iter().map(|task| task.state).collect();
        prop_assert_eq!(finals, states);
    }

    #[test]
    fn lost_events_leave_what_the_rest_say_and_nothing_goes_back(
        (events, _states) in scenario(),
        kept in prop::collection::vec(any::<bool>(), 64),
        order in prop::collection::vec(any::<prop::sample::Index>(), 64),
    ) {
        let survivors: Vec<Event> = events
            .iter()
            .zip(kept.iter().cycle())
            .filter(|(_, keep)| **keep)
            .map(|(event, _)| event.clone())
            .collect();
        let mut scrambled = survivors.clone();
        for (index, swap) in order.iter().enumerate().take(scrambled.len()) {
            let other = swap.index(scrambled.len());
            scrambled.swap(index, other);
        }
        let mut state = ClusterState::default();
        let mut ranks: std::collections::HashMap<String, u8> = std::collections::HashMap::new();
        for event in &scrambled {
            state.apply(event, 0.0);
            let id = event.uuid().unwrap_or_default().to_owned();
            let now = rank(state.task(&id).unwrap().state);
            let before = ranks.insert(id, now).unwrap_or(0);
            prop_assert!(now >= before || (before == 1 && now >= 1), "state went back: {before} → {now}");
            prop_assert!(before < 2 || now >= before, "a ready state went back: {before} → {now}");
        }
        prop_assert_eq!(picture(&state), picture(&apply_all(&survivors)));
    }
}
