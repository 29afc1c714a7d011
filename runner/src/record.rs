//! The redelivery record: what the runner knows of each message it has taken, by
//! `message-id`, for an hour, so a redelivered message is never run twice and its reply is
//! sent exactly once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a sent reply is replaced with: one shared empty reply.
static SENT: std::sync::LazyLock<Arc<FinalReply>> = std::sync::LazyLock::new(|| {
    Arc::new(FinalReply {
        reply_to: String::new(),
        correlation_id: None,
        body: String::new(),
    })
});

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The function is running. `ack` is the newest ack id and the connection it came on.
    Running { ack: Option<(u64, String)> },
    /// The final reply is known.
    Done {
        reply: Arc<FinalReply>,
        delivery: Delivery,
    },
}

/// A final reply and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalReply {
    pub reply_to: String,
    pub correlation_id: Option<String>,
    pub body: String,
}

/// Whether the final reply has reached the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    NotSent,
    /// Claimed by one sender; nobody else sends it meanwhile.
    Sending,
    Sent,
}

/// What to do with a message that has just arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// New: run it.
    Run,
    /// Already running: its newer ack id was noted.
    AlreadyRunning,
    /// Already answered: ack it again, and send the reply if `resend` is set (then the
    /// caller owns the send and must report it with `delivered`).
    AlreadyDone { resend: Option<Arc<FinalReply>> },
}

/// The bounded record.
#[derive(Debug)]
pub struct Record {
    entries: HashMap<String, (Entry, Instant)>,
    order: VecDeque<(String, Instant)>,
    ttl: Duration,
    capacity: usize,
}

impl Record {
    pub fn new(ttl: Duration, capacity: usize) -> Record {
        Record {
            entries: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity,
        }
    }

    pub fn arrive(&mut self, message_id: &str, epoch: u64, ack: Option<String>) -> Arrival {
        self.expire();
        let now = Instant::now();
        match self.entries.get_mut(message_id) {
            Some((Entry::Running { ack: current }, _)) => {
                if let Some(ack) = ack {
                    *current = Some((epoch, ack));
                }
                Arrival::AlreadyRunning
            }
            Some((Entry::Done { reply, delivery }, _)) => {
                let resend = if *delivery == Delivery::NotSent {
                    *delivery = Delivery::Sending;
                    Some(reply.clone())
                } else {
                    None
                };
                Arrival::AlreadyDone { resend }
            }
            None => {
                let ack = ack.map(|ack| (epoch, ack));
                self.entries
                    .insert(message_id.to_string(), (Entry::Running { ack }, now));
                self.order.push_back((message_id.to_string(), now));
                Arrival::Run
            }
        }
    }

    /// The function finished: keep its reply, claim its delivery, and return the ack to
    /// send (the newest ack id and its connection).
    pub fn finish(
        &mut self,
        message_id: &str,
        reply: FinalReply,
    ) -> (Arc<FinalReply>, Option<(u64, String)>) {
        let reply = Arc::new(reply);
        let ack = match self.entries.get(message_id) {
            Some((Entry::Running { ack }, _)) => ack.clone(),
            _ => None,
        };
        let at = Instant::now();
        self.entries.insert(
            message_id.to_string(),
            (
                Entry::Done {
                    reply: reply.clone(),
                    delivery: Delivery::Sending,
                },
                at,
            ),
        );
        (reply, ack)
    }

    /// The function was cut off (shutdown): forget it, so a redelivery runs it afresh.
    pub fn abandon(&mut self, message_id: &str) {
        self.entries.remove(message_id);
    }

    /// Reports the outcome of a claimed send.
    pub fn delivered(&mut self, message_id: &str, sent: bool) {
        if let Some((Entry::Done { delivery, reply }, _)) = self.entries.get_mut(message_id) {
            *delivery = if sent {
                // A sent reply is never sent again, so its body (up to max_result_size)
                // need not be kept for the hour the entry lives.
                *reply = SENT.clone();
                Delivery::Sent
            } else {
                Delivery::NotSent
            };
        }
    }

    /// Claims every reply not yet sent, for sending after a reconnect.
    pub fn claim_unsent(&mut self) -> Vec<(String, Arc<FinalReply>)> {
        let mut claimed = Vec::new();
        for (id, (entry, _)) in self.entries.iter_mut() {
            if let Entry::Done { reply, delivery } = entry
                && *delivery == Delivery::NotSent
            {
                *delivery = Delivery::Sending;
                claimed.push((id.clone(), reply.clone()));
            }
        }
        claimed
    }

    #[cfg(test)]
    pub fn get(&self, message_id: &str) -> Option<&Entry> {
        self.entries.get(message_id).map(|(entry, _)| entry)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops answered entries older than the TTL, and the oldest answered ones beyond
    /// the capacity. Running entries are never dropped.
    fn expire(&mut self) {
        let now = Instant::now();
        // Each entry is looked at once at most per call, so running entries that are
        // pushed back cannot make this loop forever.
        let mut budget = self.order.len();
        while budget > 0 {
            budget -= 1;
            let Some((_, at)) = self.order.front() else {
                break;
            };
            let too_old = now.duration_since(*at) > self.ttl;
            let too_many = self.entries.len() > self.capacity;
            if !too_old && !too_many {
                break;
            }
            let Some((id, _)) = self.order.pop_front() else {
                break;
            };
            match self.entries.get(&id) {
                Some((Entry::Done { delivery, .. }, _)) if *delivery != Delivery::Sending => {
                    self.entries.remove(&id);
                }
                Some(_) => self.order.push_back((id, now)),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str) -> FinalReply {
        FinalReply {
            reply_to: "/queue/acks.201.fn_misp".into(),
            correlation_id: Some("invid:1".into()),
            body: body.into(),
        }
    }

    #[test]
    fn a_new_message_runs_and_a_redelivery_while_running_does_not() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        assert_eq!(record.arrive("m1", 1, Some("a1".into())), Arrival::Run);
        assert_eq!(
            record.arrive("m1", 2, Some("a2".into())),
            Arrival::AlreadyRunning
        );
        let (_, ack) = record.finish("m1", reply("done"));
        assert_eq!(
            ack,
            Some((2, "a2".to_string())),
            "the newest ack id is used"
        );
    }

    #[test]
    fn a_redelivery_after_the_reply_was_sent_is_only_acked() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, Some("a1".into()));
        record.finish("m1", reply("done"));
        record.delivered("m1", true);
        assert_eq!(
            record.arrive("m1", 2, Some("a2".into())),
            Arrival::AlreadyDone { resend: None }
        );
    }

    #[test]
    fn a_sent_reply_is_not_kept_but_an_unsent_one_is() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("sent", 1, None);
        record.finish("sent", reply(&"x".repeat(100_000)));
        record.delivered("sent", true);
        match record.get("sent") {
            Some(Entry::Done { reply, .. }) => assert!(
                reply.body.is_empty(),
                "a sent reply's body must be dropped, {} bytes kept",
                reply.body.len()
            ),
            other => panic!("expected a done entry, got {other:?}"),
        }
        record.arrive("unsent", 1, None);
        record.finish("unsent", reply("keep me"));
        record.delivered("unsent", false);
        let claimed = record.claim_unsent();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].1.body, "keep me");
    }

    #[test]
    fn an_unsent_reply_is_claimed_exactly_once() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, Some("a1".into()));
        record.finish("m1", reply("done"));
        record.delivered("m1", false);
        let first = record.arrive("m1", 2, Some("a2".into()));
        assert!(matches!(first, Arrival::AlreadyDone { resend: Some(_) }));
        assert!(
            record.claim_unsent().is_empty(),
            "already claimed by the redelivery"
        );
        record.delivered("m1", false);
        assert_eq!(record.claim_unsent().len(), 1);
        assert!(record.claim_unsent().is_empty());
    }

    #[test]
    fn abandoned_messages_run_again_when_redelivered() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, None);
        record.abandon("m1");
        assert_eq!(record.arrive("m1", 2, None), Arrival::Run);
    }

    #[test]
    fn the_record_stays_bounded_but_keeps_running_entries() {
        let mut record = Record::new(Duration::from_secs(3600), 10);
        record.arrive("running", 1, None);
        for index in 0..100 {
            let id = format!("m{index}");
            record.arrive(&id, 1, None);
            record.finish(&id, reply("x"));
            record.delivered(&id, true);
        }
        assert!(record.len() <= 12, "record grew to {}", record.len());
        assert!(matches!(record.get("running"), Some(Entry::Running { .. })));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut record = Record::new(Duration::from_millis(1), 100);
        record.arrive("m1", 1, None);
        record.finish("m1", reply("x"));
        record.delivered("m1", true);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(record.arrive("m2", 1, None), Arrival::Run);
        assert!(record.get("m1").is_none());
    }
}
