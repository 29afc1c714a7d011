//! The redelivery record: what the runner knows of each message it has taken, by
//! `message-id`, for an hour, so a redelivered message is never run twice and its final
//! reply reaches SOAR exactly once.
//!
//! A final reply goes out in one STOMP transaction with the ACK of its message (see
//! `service`), so the broker either has both or neither. A reply whose transaction was not
//! committed is kept here and committed again only when the broker delivers its message
//! again, with that delivery's ACK: a reply is never sent on a reconnect by itself.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a committed reply is replaced with: one shared empty reply.
static COMMITTED: std::sync::LazyLock<Arc<FinalReply>> = std::sync::LazyLock::new(|| {
    Arc::new(FinalReply {
        reply_to: String::new(),
        correlation_id: None,
        body: String::new(),
    })
});

/// An ack id and the connection (epoch) its delivery came on: an ACK is only valid on the
/// connection that delivered the message.
pub type AckId = (u64, String);

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The function is running. `ack` is the newest delivery's ack id.
    Running { ack: Option<AckId> },
    /// The final reply is known.
    Done {
        reply: Arc<FinalReply>,
        delivery: Delivery,
        /// A delivery that arrived while a commit was under way, for a retry if it fails.
        ack: Option<AckId>,
    },
}

/// A final reply and where it goes; an empty `reply_to` means there is nothing to send
/// (the message had no `reply-to`), only the ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalReply {
    pub reply_to: String,
    pub correlation_id: Option<String>,
    pub body: String,
}

/// Whether the final reply has been committed with its message's ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not committed: kept until the broker delivers the message again.
    Kept,
    /// Claimed by one task, whose transaction is out; nobody else commits it meanwhile.
    Committing,
    Committed,
}

/// What to do with a message that has just arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// New: run it.
    Run,
    /// Already running: its newer ack id was noted.
    AlreadyRunning,
    /// Its reply was committed already: ack this delivery, send nothing.
    AlreadyAnswered,
    /// Its reply is kept, never committed: the caller now owns it and commits it with this
    /// delivery's ACK, then reports with `settled`.
    Answer { reply: Arc<FinalReply> },
    /// A commit of its reply is under way; this delivery's ack id was noted in case that
    /// commit fails.
    BeingAnswered,
}

/// What the caller of `settled` does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Nothing: the reply was committed, or it is kept until the message comes back.
    Done,
    /// The commit failed but the message was delivered again meanwhile: commit the same
    /// reply again with this ack id (the caller still owns it).
    Retry { reply: Arc<FinalReply>, ack: AckId },
    /// The reply was committed, and a later delivery of the message arrived meanwhile:
    /// ack that one too.
    AckAlso(AckId),
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
        let ack = ack.map(|ack| (epoch, ack));
        match self.entries.get_mut(message_id) {
            Some((Entry::Running { ack: current }, _)) => {
                if ack.is_some() {
                    *current = ack;
                }
                Arrival::AlreadyRunning
            }
            Some((
                Entry::Done {
                    reply,
                    delivery,
                    ack: pending,
                },
                _,
            )) => match delivery {
                Delivery::Committed => Arrival::AlreadyAnswered,
                Delivery::Kept => {
                    *delivery = Delivery::Committing;
                    Arrival::Answer {
                        reply: reply.clone(),
                    }
                }
                Delivery::Committing => {
                    if ack.is_some() {
                        *pending = ack;
                    }
                    Arrival::BeingAnswered
                }
            },
            None => {
                self.entries
                    .insert(message_id.to_string(), (Entry::Running { ack }, now));
                self.order.push_back((message_id.to_string(), now));
                Arrival::Run
            }
        }
    }

    /// The function finished: keep its reply, claim its commit, and return the ack id to
    /// commit it with (the newest delivery's).
    pub fn finish(
        &mut self,
        message_id: &str,
        reply: FinalReply,
    ) -> (Arc<FinalReply>, Option<AckId>) {
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
                    delivery: Delivery::Committing,
                    ack: None,
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

    /// Reports the outcome of a claimed commit.
    pub fn settled(&mut self, message_id: &str, committed: bool) -> Settled {
        let Some((
            Entry::Done {
                reply,
                delivery,
                ack,
            },
            _,
        )) = self.entries.get_mut(message_id)
        else {
            return Settled::Done;
        };
        let later = ack.take();
        match (committed, later) {
            (true, later) => {
                *delivery = Delivery::Committed;
                // A committed reply is never sent again, so its body (up to
                // max_result_size) need not be kept for the hour the entry lives.
                *reply = COMMITTED.clone();
                later.map_or(Settled::Done, Settled::AckAlso)
            }
            (false, Some(later)) => Settled::Retry {
                reply: reply.clone(),
                ack: later,
            },
            (false, None) => {
                *delivery = Delivery::Kept;
                Settled::Done
            }
        }
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
    /// the capacity. Running entries and commits under way are never dropped.
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
                Some((Entry::Done { delivery, .. }, _)) if *delivery != Delivery::Committing => {
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

    fn ack(epoch: u64, id: &str) -> AckId {
        (epoch, id.to_string())
    }

    #[test]
    fn a_new_message_runs_and_a_redelivery_while_running_does_not() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        assert_eq!(record.arrive("m1", 1, Some("a1".into())), Arrival::Run);
        assert_eq!(
            record.arrive("m1", 2, Some("a2".into())),
            Arrival::AlreadyRunning
        );
        let (_, ack_id) = record.finish("m1", reply("done"));
        assert_eq!(ack_id, Some(ack(2, "a2")), "the newest ack id is used");
    }

    #[test]
    fn a_redelivery_after_the_reply_was_committed_is_only_acked() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, Some("a1".into()));
        record.finish("m1", reply("done"));
        assert_eq!(record.settled("m1", true), Settled::Done);
        assert_eq!(
            record.arrive("m1", 2, Some("a2".into())),
            Arrival::AlreadyAnswered
        );
    }

    #[test]
    fn a_committed_reply_is_not_kept_but_an_uncommitted_one_is() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("sent", 1, None);
        record.finish("sent", reply(&"x".repeat(100_000)));
        record.settled("sent", true);
        match record.get("sent") {
            Some(Entry::Done { reply, .. }) => assert!(
                reply.body.is_empty(),
                "a committed reply's body must be dropped, {} bytes kept",
                reply.body.len()
            ),
            other => panic!("expected a done entry, got {other:?}"),
        }
        record.arrive("kept", 1, None);
        record.finish("kept", reply("keep me"));
        record.settled("kept", false);
        match record.arrive("kept", 2, Some("a2".into())) {
            Arrival::Answer { reply } => assert_eq!(reply.body, "keep me"),
            other => panic!("expected the kept reply, got {other:?}"),
        }
    }

    #[test]
    fn a_kept_reply_is_handed_out_once_per_redelivery_and_never_otherwise() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, Some("a1".into()));
        record.finish("m1", reply("done"));
        assert_eq!(record.settled("m1", false), Settled::Done);
        assert!(matches!(
            record.arrive("m1", 2, Some("a2".into())),
            Arrival::Answer { .. }
        ));
        assert_eq!(
            record.arrive("m1", 2, Some("a2".into())),
            Arrival::BeingAnswered,
            "claimed by the first redelivery until it reports"
        );
        // The second commit fails too, and no delivery is waiting: kept again.
        assert!(matches!(record.settled("m1", false), Settled::Retry { .. }));
        assert_eq!(record.settled("m1", false), Settled::Done);
        assert!(matches!(
            record.arrive("m1", 3, Some("a3".into())),
            Arrival::Answer { .. }
        ));
        assert_eq!(record.settled("m1", true), Settled::Done);
        assert_eq!(
            record.arrive("m1", 4, Some("a4".into())),
            Arrival::AlreadyAnswered
        );
    }

    #[test]
    fn a_delivery_during_a_failed_commit_is_retried_with_its_own_ack() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, Some("a1".into()));
        record.finish("m1", reply("done"));
        // The connection drops while the commit is out; the broker redelivers on the new one.
        assert_eq!(
            record.arrive("m1", 2, Some("a2".into())),
            Arrival::BeingAnswered
        );
        match record.settled("m1", false) {
            Settled::Retry { reply, ack: ack_id } => {
                assert_eq!(reply.body, "done");
                assert_eq!(ack_id, ack(2, "a2"));
            }
            other => panic!("expected a retry with the newer ack, got {other:?}"),
        }
        assert_eq!(record.settled("m1", true), Settled::Done);
    }

    #[test]
    fn a_delivery_during_a_commit_that_succeeds_is_acked_too() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, Some("a1".into()));
        record.finish("m1", reply("done"));
        record.arrive("m1", 1, Some("a1b".into()));
        assert_eq!(record.settled("m1", true), Settled::AckAlso(ack(1, "a1b")));
    }

    #[test]
    fn abandoned_messages_run_again_when_redelivered() {
        let mut record = Record::new(Duration::from_secs(3600), 100);
        record.arrive("m1", 1, None);
        record.abandon("m1");
        assert_eq!(record.arrive("m1", 2, None), Arrival::Run);
    }

    #[test]
    fn the_record_stays_bounded_but_keeps_running_entries_and_commits_under_way() {
        let mut record = Record::new(Duration::from_secs(3600), 10);
        record.arrive("running", 1, None);
        record.arrive("committing", 1, None);
        record.finish("committing", reply("x"));
        for index in 0..100 {
            let id = format!("m{index}");
            record.arrive(&id, 1, None);
            record.finish(&id, reply("x"));
            record.settled(&id, true);
        }
        assert!(record.len() <= 13, "record grew to {}", record.len());
        assert!(matches!(record.get("running"), Some(Entry::Running { .. })));
        assert!(matches!(
            record.get("committing"),
            Some(Entry::Done {
                delivery: Delivery::Committing,
                ..
            })
        ));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let mut record = Record::new(Duration::from_millis(1), 100);
        record.arrive("m1", 1, None);
        record.finish("m1", reply("x"));
        record.settled("m1", true);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(record.arrive("m2", 1, None), Arrival::Run);
        assert!(record.get("m1").is_none());
    }
}
