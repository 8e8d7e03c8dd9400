//! [`ConsumedQueues`]: the queues this worker consumes now. They start as `-Q` and change at
//! run time through the `add_consumer` and `cancel_consumer` control commands.
//!
//! A `watch` channel holds the list: the mailbox changes it, the consumer holds a receiver and
//! picks the new list up before its next fetch (messages it already holds from a cancelled
//! queue still run, as in Celery). `active_queues` reports it.

use tokio::sync::watch;

/// A consumed queue as kombu declares it: `add_consumer` may name an exchange, its type and
/// a routing key; otherwise all three follow the queue name (direct exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumedQueue {
    pub(crate) name: String,
    pub(crate) exchange: String,
    pub(crate) exchange_type: String,
    pub(crate) routing_key: String,
}

impl ConsumedQueue {
    /// A queue bound to the direct exchange of its own name.
    pub(crate) fn named(name: &str) -> ConsumedQueue {
        ConsumedQueue {
            name: name.to_owned(),
            exchange: name.to_owned(),
            exchange_type: "direct".to_owned(),
            routing_key: name.to_owned(),
        }
    }
}

/// The live list of consumed queues.
#[derive(Debug)]
pub(crate) struct ConsumedQueues {
    queues: watch::Sender<Vec<ConsumedQueue>>,
}

impl ConsumedQueues {
    pub(crate) fn new(names: &[String]) -> ConsumedQueues {
        let queues = names
            .iter()
            .map(|name| ConsumedQueue::named(name))
            .collect();
        ConsumedQueues {
            queues: watch::Sender::new(queues),
        }
    }

    /// Starts consuming `queue`; false when it was consumed already (nothing changes, as in
    /// Celery's `add_task_queue`).
    pub(crate) fn add(&self, queue: ConsumedQueue) -> bool {
        self.queues.send_if_modified(|queues| {
            if queues.iter().any(|known| known.name == queue.name) {
                false
            } else {
                queues.push(queue);
                true
            }
        })
    }

    /// Stops consuming `name`; false when it was not consumed.
    pub(crate) fn cancel(&self, name: &str) -> bool {
        self.queues.send_if_modified(|queues| {
            let before = queues.len();
            queues.retain(|queue| queue.name != name);
            queues.len() != before
        })
    }

    /// The queues consumed now.
    pub(crate) fn list(&self) -> Vec<ConsumedQueue> {
        self.queues.borrow().clone()
    }

    /// The names consumed now.
    pub(crate) fn names(&self) -> Vec<String> {
        self.queues
            .borrow()
            .iter()
            .map(|queue| queue.name.clone())
            .collect()
    }

    /// A receiver that is marked changed on every add or cancel (the consumer's end).
    pub(crate) fn subscribe(&self) -> watch::Receiver<Vec<ConsumedQueue>> {
        self.queues.subscribe()
    }
}

/// The consumer's next fetch order after a change: queues still consumed keep their place in
/// the round-robin order, new ones go last.
pub(crate) fn reorder(current: &[String], consumed: &[ConsumedQueue]) -> Vec<String> {
    let mut order: Vec<String> = current
        .iter()
        .filter(|name| consumed.iter().any(|queue| &queue.name == *name))
        .cloned()
        .collect();
    for queue in consumed {
        if !order.contains(&queue.name) {
            order.push(queue.name.clone());
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_cancels_and_keeps_the_round_robin_order() {
        let queues = ConsumedQueues::new(&["a".into(), "b".into()]);
        let mut receiver = queues.subscribe();
        assert!(!queues.add(ConsumedQueue::named("a")));
        assert!(!receiver.has_changed().unwrap());
        assert!(queues.add(ConsumedQueue::named("c")));
        assert!(receiver.has_changed().unwrap());
        assert!(queues.cancel("a"));
        assert!(!queues.cancel("a"));
        let consumed = receiver.borrow_and_update().clone();
        assert_eq!(
            reorder(&["b".into(), "a".into()], &consumed),
            vec!["b".to_string(), "c".to_string()]
        );
        assert_eq!(queues.names(), vec!["b".to_string(), "c".to_string()]);
    }
}
