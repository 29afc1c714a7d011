//! Tests against a real ActiveMQ started by `.ci/activemq.sh start` (found through
//! `STOMP_TEST_PORT`, `STOMP_TEST_TLS_PORT` and `STOMP_TEST_CA`). Without those variables
//! they print a notice and pass locally, and fail under CI (`CI` set).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use soar_stomp::{
    ACK_HEADER, AckMode, ConnectOptions, Frame, StompError, StompReceiver, StompSender, TlsOptions,
};

use crate::{options, within};

struct Broker {
    port: u16,
    tls_port: u16,
    ca_file: PathBuf,
}

/// The broker from the environment, or `None` (with a notice) when it is not configured
/// outside CI. Under CI a missing broker fails the test.
fn broker(test: &str) -> Option<Broker> {
    let port = std::env::var("STOMP_TEST_PORT").ok();
    let tls_port = std::env::var("STOMP_TEST_TLS_PORT").ok();
    let ca_file = std::env::var("STOMP_TEST_CA").ok();
    let (Some(port), Some(tls_port), Some(ca_file)) = (port, tls_port, ca_file) else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "{test}: STOMP_TEST_PORT, STOMP_TEST_TLS_PORT and STOMP_TEST_CA must be set under CI; \
                 run `.ci/activemq.sh start` and `eval \"$(.ci/activemq.sh env)\"`"
            );
        }
        eprintln!(
            "{test}: skipped, no ActiveMQ (run `.ci/activemq.sh start` and `eval \"$(.ci/activemq.sh env)\"`)"
        );
        return None;
    };
    Some(Broker {
        port: port.parse().expect("STOMP_TEST_PORT is a port number"),
        tls_port: tls_port
            .parse()
            .expect("STOMP_TEST_TLS_PORT is a port number"),
        ca_file: PathBuf::from(ca_file),
    })
}

impl Broker {
    fn plain(&self) -> ConnectOptions {
        options(self.port, (0, 15000), None)
    }

    fn tls(&self, ca_file: Option<PathBuf>) -> ConnectOptions {
        let mut options = options(
            self.tls_port,
            (0, 15000),
            Some(TlsOptions {
                ca_file,
                verify: true,
                server_name: "localhost".into(),
            }),
        );
        options.host = "localhost".into();
        options
    }
}

/// A queue name no other test (or earlier run against the same broker) uses.
fn unique_queue(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("/queue/soar-stomp-test.{test}.{nanos}")
}

async fn connect_and_subscribe(
    options: ConnectOptions,
    queue: &str,
) -> (StompSender, StompReceiver) {
    let (sender, receiver, info) = within("connect", soar_stomp::connect(options))
        .await
        .expect("connecting to ActiveMQ");
    assert_eq!(info.version, "1.2");
    assert!(
        info.server
            .as_deref()
            .unwrap_or_default()
            .starts_with("ActiveMQ"),
        "{:?}",
        info.server
    );
    sender
        .subscribe(
            queue,
            queue,
            AckMode::ClientIndividual,
            &[("activemq.prefetchSize", "10")],
        )
        .await
        .expect("subscribing");
    (sender, receiver)
}

async fn next(receiver: &mut StompReceiver) -> Frame {
    within("a MESSAGE from ActiveMQ", receiver.next_message())
        .await
        .expect("a MESSAGE from ActiveMQ")
}

/// Asserts nothing arrives for a second (a message that should not be (re)delivered).
async fn assert_no_message(receiver: &mut StompReceiver, what: &str) {
    if let Ok(result) = tokio::time::timeout(Duration::from_secs(1), receiver.next_message()).await
    {
        panic!("{what}: expected no message, got {result:?}");
    }
}

#[tokio::test]
async fn activemq_round_trips_escaped_headers_nul_bodies_and_acks() {
    let Some(broker) = broker("activemq_round_trips_escaped_headers_nul_bodies_and_acks") else {
        return;
    };
    let queue = unique_queue("round-trip");
    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    let tricky = "colon:back\\slash\nnewline\rreturn";
    let body = Bytes::from_static(b"{\"a\":1}\0after nul");
    within(
        "send",
        sender.send_with_receipt(&queue, &[("x-tricky", tricky)], body.clone()),
    )
    .await
    .expect("a receipt for the SEND");

    let message = next(&mut receiver).await;
    assert_eq!(
        message.header("x-tricky"),
        Some(tricky),
        "escaped header round trip"
    );
    assert_eq!(message.body, body, "body with a NUL byte");
    assert_eq!(message.header("subscription"), Some(queue.as_str()));
    let ack_id = message
        .header(ACK_HEADER)
        .expect("client-individual MESSAGE has ack");
    assert!(
        ack_id.starts_with("ID:") && ack_id.contains(':'),
        "ActiveMQ's ack ids contain colons (escaped on the wire): {ack_id}"
    );
    sender.ack(ack_id).await.expect("acking");
    // ActiveMQ answers an unknown ACK id with ERROR; a later receipt proves it accepted it.
    within(
        "send",
        sender.send_with_receipt("/queue/soar-stomp-test.sync", &[], "sync"),
    )
    .await
    .expect("the connection is still fine after the ACK");
    sender.disconnect().await.expect("disconnecting");

    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    assert_no_message(&mut receiver, "an acked message after reconnecting").await;
    sender.disconnect().await.expect("disconnecting");
}

#[tokio::test]
async fn activemq_redelivers_an_unacked_message_after_reconnect() {
    let Some(broker) = broker("activemq_redelivers_an_unacked_message_after_reconnect") else {
        return;
    };
    let queue = unique_queue("redelivery");
    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    for body in ["first", "second"] {
        within("send", sender.send_with_receipt(&queue, &[], body))
            .await
            .expect("a receipt for the SEND");
    }
    let first = next(&mut receiver).await;
    let second = next(&mut receiver).await;
    assert_eq!(first.body, Bytes::from_static(b"first"));
    assert_eq!(second.body, Bytes::from_static(b"second"));
    assert_eq!(first.header("redelivered"), None);
    sender
        .ack(first.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking the first");
    sender.disconnect().await.expect("disconnecting");

    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    let again = next(&mut receiver).await;
    assert_eq!(
        again.body,
        Bytes::from_static(b"second"),
        "only the unacked one comes back"
    );
    assert_eq!(again.header("redelivered"), Some("true"));
    sender
        .ack(again.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking the redelivered one");
    assert_no_message(&mut receiver, "after acking everything").await;
    sender.disconnect().await.expect("disconnecting");
}

#[tokio::test]
async fn activemq_over_tls_with_the_generated_ca() {
    let Some(broker) = broker("activemq_over_tls_with_the_generated_ca") else {
        return;
    };
    let queue = unique_queue("tls");
    let (sender, mut receiver) =
        connect_and_subscribe(broker.tls(Some(broker.ca_file.clone())), &queue).await;
    within(
        "send",
        sender.send_with_receipt(&queue, &[("correlation-id", "invid:1")], "tls"),
    )
    .await
    .expect("a receipt over TLS");
    let message = next(&mut receiver).await;
    assert_eq!(message.body, Bytes::from_static(b"tls"));
    assert_eq!(message.header("correlation-id"), Some("invid:1"));
    sender
        .ack(message.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking over TLS");
    sender.disconnect().await.expect("disconnecting");
}

#[tokio::test]
async fn activemq_tls_fails_against_a_wrong_ca() {
    let Some(broker) = broker("activemq_tls_fails_against_a_wrong_ca") else {
        return;
    };
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating an unrelated certificate");
    let wrong_ca = std::env::temp_dir().join(format!(
        "soar-stomp-amq-wrong-ca-{}.pem",
        std::process::id()
    ));
    std::fs::write(&wrong_ca, other.cert.pem()).expect("writing the wrong CA");
    let result = within(
        "connect",
        soar_stomp::connect(broker.tls(Some(wrong_ca.clone()))),
    )
    .await;
    let _ = std::fs::remove_file(&wrong_ca);
    match result {
        Err(error @ StompError::TlsHandshake { .. }) => {
            assert!(
                error
                    .to_string()
                    .contains(&format!("localhost:{}", broker.tls_port)),
                "{error}"
            );
        }
        other => panic!(
            "expected TlsHandshake, got {:?}",
            other.map(|(_, _, info)| info)
        ),
    }
}

#[tokio::test]
async fn activemq_heart_beats_keep_an_idle_connection_alive() {
    let Some(broker) = broker("activemq_heart_beats_keep_an_idle_connection_alive") else {
        return;
    };
    let mut options = broker.plain();
    options.heart_beat = (1000, 1000);
    let (sender, mut receiver, info) = within("connect", soar_stomp::connect(options))
        .await
        .expect("connecting");
    assert_eq!(
        info.heart_beat,
        (1000, 1000),
        "ActiveMQ grants 1 s both ways"
    );
    // Idle for longer than either side tolerates silence.
    if let Ok(result) =
        tokio::time::timeout(Duration::from_millis(3500), receiver.next_message()).await
    {
        panic!("an idle connection with heart-beats should stay up, got {result:?}");
    }
    within(
        "send",
        sender.send_with_receipt("/queue/soar-stomp-test.sync", &[], "alive"),
    )
    .await
    .expect("the connection is alive after idling");
    sender.disconnect().await.expect("disconnecting");
}

#[tokio::test]
async fn activemq_carries_a_16_mib_message() {
    let Some(broker) = broker("activemq_carries_a_16_mib_message") else {
        return;
    };
    let queue = unique_queue("large");
    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    let body: Bytes = (0..16 * 1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    within("send", sender.send_with_receipt(&queue, &[], body.clone()))
        .await
        .expect("a receipt for the 16 MiB SEND");
    let message = next(&mut receiver).await;
    assert_eq!(message.body.len(), body.len());
    assert!(message.body == body, "the 16 MiB body came back changed");
    sender
        .ack(message.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking");
    sender.disconnect().await.expect("disconnecting");
}

/// The runner's final reply: the reply and the ACK of the function message in one
/// transaction. With client-individual acks, the ACK in the transaction settles that one
/// message only.
#[tokio::test]
async fn activemq_commits_a_reply_and_an_ack_together_and_acks_only_that_message() {
    let Some(broker) =
        broker("activemq_commits_a_reply_and_an_ack_together_and_acks_only_that_message")
    else {
        return;
    };
    let queue = unique_queue("tx-actions");
    let replies = unique_queue("tx-acks");
    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    for body in ["first", "second"] {
        within("send", sender.send_with_receipt(&queue, &[], body))
            .await
            .expect("a receipt for the SEND");
    }
    let first = next(&mut receiver).await;
    let _second = next(&mut receiver).await;
    let mut transaction = sender.transaction();
    transaction
        .send(&replies, &[("correlation-id", "invid:1")], "done")
        .ack(first.header(ACK_HEADER).expect("ack header"));
    within("commit", transaction.commit())
        .await
        .expect("the broker's receipt for the COMMIT");
    sender.disconnect().await.expect("disconnecting");

    let (soar, mut reply_receiver) = connect_and_subscribe(broker.plain(), &replies).await;
    let reply = next(&mut reply_receiver).await;
    assert_eq!(reply.body, Bytes::from_static(b"done"));
    assert_eq!(reply.header("correlation-id"), Some("invid:1"));
    soar.ack(reply.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking the reply");
    assert_no_message(&mut reply_receiver, "a committed reply is delivered once").await;
    soar.disconnect().await.expect("disconnecting");

    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    let again = next(&mut receiver).await;
    assert_eq!(
        again.body,
        Bytes::from_static(b"second"),
        "the committed ACK settled the first message and only that one"
    );
    sender
        .ack(again.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking");
    assert_no_message(&mut receiver, "after acking everything").await;
    sender.disconnect().await.expect("disconnecting");
}

/// A runner that dies after writing its reply and ACK but before COMMIT: the broker rolls
/// the transaction back, so SOAR never sees that reply and the message comes back.
#[tokio::test]
async fn activemq_rolls_back_a_transaction_whose_connection_drops_before_commit() {
    let Some(broker) =
        broker("activemq_rolls_back_a_transaction_whose_connection_drops_before_commit")
    else {
        return;
    };
    let queue = unique_queue("rollback-actions");
    let replies = unique_queue("rollback-acks");
    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    within("send", sender.send_with_receipt(&queue, &[], "call"))
        .await
        .expect("a receipt for the SEND");
    let message = next(&mut receiver).await;
    let ack = message.header(ACK_HEADER).expect("ack header").to_owned();
    // Everything of the transaction but its COMMIT, then the connection goes without a
    // DISCONNECT (every handle dropped closes the socket).
    for frame in [
        Frame::new("BEGIN").with_header("transaction", "tx-1"),
        Frame::new("SEND")
            .with_header("destination", replies.as_str())
            .with_header("transaction", "tx-1")
            .with_body("uncommitted"),
        Frame::new("ACK")
            .with_header("id", ack.as_str())
            .with_header("transaction", "tx-1"),
    ] {
        sender.send_frame(frame).await.expect("writing");
    }
    // A receipted frame after them proves the broker has read the transaction's frames.
    within(
        "a receipt",
        sender.send_frame_with_receipt(
            Frame::new("SEND")
                .with_header("destination", replies.as_str())
                .with_body("outside"),
        ),
    )
    .await
    .expect("a receipt");
    drop(sender);
    drop(receiver);

    let (soar, mut reply_receiver) = connect_and_subscribe(broker.plain(), &replies).await;
    let outside = next(&mut reply_receiver).await;
    assert_eq!(outside.body, Bytes::from_static(b"outside"));
    soar.ack(outside.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking");
    assert_no_message(
        &mut reply_receiver,
        "the SEND of a transaction never committed",
    )
    .await;
    soar.disconnect().await.expect("disconnecting");

    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    let again = next(&mut receiver).await;
    assert_eq!(
        again.body,
        Bytes::from_static(b"call"),
        "the ACK of a transaction never committed does not count"
    );
    assert_eq!(again.header("redelivered"), Some("true"));
    sender
        .ack(again.header(ACK_HEADER).expect("ack header"))
        .await
        .expect("acking");
    sender.disconnect().await.expect("disconnecting");
}

/// Many replies committed with their ACKs through grouped commits, which put several of them
/// in one transaction: ActiveMQ applies each reply once and settles each message, and no
/// other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_applies_grouped_commits_of_replies_and_acks_once_each() {
    let Some(broker) = broker("activemq_applies_grouped_commits_of_replies_and_acks_once_each")
    else {
        return;
    };
    const CALLS: usize = 300;
    let queue = unique_queue("grouped-actions");
    let replies = unique_queue("grouped-acks");
    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    for n in 0..CALLS {
        sender
            .send(&queue, &[], format!("call {n}"))
            .await
            .expect("sending a call");
    }
    let mut commits = tokio::task::JoinSet::new();
    for _ in 0..CALLS {
        let message = next(&mut receiver).await;
        let mut transaction = sender.transaction();
        let body = String::from_utf8_lossy(&message.body).replace("call", "reply");
        transaction
            .send(&replies, &[("persistent", "true")], body)
            .ack(message.header(ACK_HEADER).expect("ack header"));
        commits.spawn(transaction.commit_grouped());
    }
    while let Some(result) = commits.join_next().await {
        within("a grouped commit", async { result })
            .await
            .expect("task")
            .expect("a grouped commit confirmed");
    }
    assert_no_message(&mut receiver, "every call was answered").await;
    sender.disconnect().await.expect("disconnecting");

    let (soar, mut reply_receiver) = connect_and_subscribe(broker.plain(), &replies).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..CALLS {
        let reply = next(&mut reply_receiver).await;
        assert!(
            seen.insert(String::from_utf8_lossy(&reply.body).into_owned()),
            "a reply applied twice: {:?}",
            reply.body
        );
        soar.ack(reply.header(ACK_HEADER).expect("ack header"))
            .await
            .expect("acking a reply");
    }
    let expected: std::collections::BTreeSet<String> =
        (0..CALLS).map(|n| format!("reply {n}")).collect();
    assert_eq!(seen, expected);
    assert_no_message(&mut reply_receiver, "no reply beyond one per call").await;
    soar.disconnect().await.expect("disconnecting");

    let (sender, mut receiver) = connect_and_subscribe(broker.plain(), &queue).await;
    assert_no_message(&mut receiver, "the grouped ACKs settled every call").await;
    sender.disconnect().await.expect("disconnecting");
}
