//! Tests against scripted in-process brokers speaking through `StompCodec` on a loopback socket.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use soar_stomp::{AckMode, CodecError, Frame, StompCodec, StompError, StompItem, TlsOptions};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

use crate::{options, within};

const LIMIT: usize = 1024 * 1024;

async fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port for the fake broker");
    let port = listener.local_addr().expect("local address").port();
    (listener, port)
}

async fn accept(listener: &TcpListener) -> Framed<TcpStream, StompCodec> {
    let (stream, _) = listener.accept().await.expect("accepting the client");
    Framed::new(stream, StompCodec::new(LIMIT))
}

/// The next frame from the client, skipping heart-beats; panics on EOF or a decode error.
async fn next_frame<T: AsyncRead + AsyncWrite + Unpin>(
    broker: &mut Framed<T, StompCodec>,
) -> Frame {
    loop {
        match broker.next().await {
            Some(Ok(StompItem::Frame(frame))) => return frame,
            Some(Ok(StompItem::HeartBeat)) => continue,
            Some(Err(error)) => panic!("the fake broker could not decode the client: {error}"),
            None => panic!("the client closed the connection while the broker expected a frame"),
        }
    }
}

async fn send<T: AsyncRead + AsyncWrite + Unpin>(broker: &mut Framed<T, StompCodec>, frame: Frame) {
    broker
        .send(frame)
        .await
        .expect("the fake broker writing a frame");
}

/// Reads CONNECT and answers CONNECTED with the given `heart-beat` header.
async fn handshake<T: AsyncRead + AsyncWrite + Unpin>(
    broker: &mut Framed<T, StompCodec>,
    heart_beat: &str,
) -> Frame {
    let connect = next_frame(broker).await;
    assert_eq!(connect.command, "CONNECT");
    send(
        broker,
        Frame::new("CONNECTED")
            .with_header("server", "ActiveMQ/5.17.2")
            .with_header("heart-beat", heart_beat)
            .with_header("session", "ID:vm-44351-1795823052020-3:4")
            .with_header("version", "1.2"),
    )
    .await;
    connect
}

#[tokio::test]
async fn connect_sends_what_resilient_circuits_sends_and_negotiates_heart_beats() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        let connect = handshake(&mut broker, "15000,0").await;
        // Keep the socket open until the client is done.
        let _ = broker.next().await;
        connect
    });
    let (sender, _receiver, info) = within(
        "connect",
        soar_stomp::connect(options(port, (0, 15000), None)),
    )
    .await
    .expect("connecting to the fake broker");
    assert_eq!(info.version, "1.2");
    assert_eq!(info.server.as_deref(), Some("ActiveMQ/5.17.2"));
    assert_eq!(
        info.session.as_deref(),
        Some("ID:vm-44351-1795823052020-3:4")
    );
    assert_eq!(
        info.heart_beat,
        (0, 15000),
        "we send none, the broker every 15 s"
    );
    drop(sender);
    drop(_receiver);
    let connect = within("the broker task", broker)
        .await
        .expect("broker task");
    assert_eq!(
        connect.headers,
        vec![
            ("accept-version".to_string(), "1.2".to_string()),
            ("host".into(), "localhost".into()),
            ("login".into(), "api-key-id".into()),
            ("passcode".into(), "api-key-secret".into()),
            ("heart-beat".into(), "0,15000".into()),
        ]
    );
}

#[tokio::test]
async fn subscribe_message_and_ack_use_the_escaped_activemq_ack_id() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        let subscribe = next_frame(&mut broker).await;
        // Send the MESSAGE as raw bytes, exactly as ActiveMQ escapes it.
        broker
            .get_mut()
            .write_all(
                b"MESSAGE\ncontent-length:2\ndestination:/queue/actions.201.fn_misp\n\
                  ack:ID\\cvm-1-4\\c1\nsubscription:actions.201.fn_misp\n\
                  message-id:ID\\cvm-1-3\\c3\\c-1\\c1\\c1\nreply-to:/queue/acks.201.fn_misp\n\n{}\0",
            )
            .await
            .expect("writing the message");
        let reply = next_frame(&mut broker).await;
        let ack = next_frame(&mut broker).await;
        (subscribe, reply, ack, broker.read_buffer().clone())
    });
    let (sender, mut receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    let queue = "actions.201.fn_misp";
    sender
        .subscribe(
            queue,
            queue,
            AckMode::ClientIndividual,
            &[("activemq.prefetchSize", "25")],
        )
        .await
        .expect("subscribing");
    let message = within("the message", receiver.next_message())
        .await
        .expect("a MESSAGE frame");
    assert_eq!(message.header("ack"), Some("ID:vm-1-4:1"));
    assert_eq!(message.body, Bytes::from_static(b"{}"));
    sender
        .send(
            "/queue/acks.201.fn_misp",
            &[("correlation-id", "invid:23061001")],
            "{\"complete\": true}",
        )
        .await
        .expect("sending the reply");
    sender
        .ack(message.header("ack").expect("ack header"))
        .await
        .expect("acking");
    let (subscribe, reply, ack, _) = within("the broker task", broker).await.expect("broker");
    assert_eq!(subscribe.command, "SUBSCRIBE");
    assert_eq!(
        subscribe.headers,
        vec![
            ("destination".to_string(), queue.to_string()),
            ("id".into(), queue.into()),
            ("ack".into(), "client-individual".into()),
            ("activemq.prefetchSize".into(), "25".into()),
        ]
    );
    assert_eq!(reply.command, "SEND");
    assert_eq!(reply.header("destination"), Some("/queue/acks.201.fn_misp"));
    assert_eq!(reply.header("correlation-id"), Some("invid:23061001"));
    assert_eq!(reply.header("content-length"), Some("18"));
    assert_eq!(ack.command, "ACK");
    assert_eq!(
        ack.headers,
        vec![("id".to_string(), "ID:vm-1-4:1".to_string())]
    );
}

#[tokio::test]
async fn ack_id_is_escaped_on_the_wire() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        // Read raw bytes: the codec would hide the escaping.
        let mut stream = broker.into_inner();
        let mut raw = Vec::new();
        let mut chunk = [0u8; 256];
        while !raw.ends_with(b"\0") {
            let read = tokio::io::AsyncReadExt::read(&mut stream, &mut chunk)
                .await
                .expect("reading the ACK");
            assert!(read > 0, "the client closed before sending the ACK");
            raw.extend_from_slice(&chunk[..read]);
        }
        raw
    });
    let (sender, _receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    sender.ack("ID:vm-1-4:1").await.expect("acking");
    let raw = within("the broker task", broker).await.expect("broker");
    assert_eq!(raw, b"ACK\nid:ID\\cvm-1-4\\c1\n\n\0".to_vec());
}

#[tokio::test(start_paused = true)]
async fn silence_for_two_and_a_half_heart_beats_ends_the_connection() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "1000,0").await;
        // ActiveMQ's first beat comes two intervals after CONNECTED (measured: 2.004 s for
        // 1 s), sometimes a little more: that must be tolerated.
        tokio::time::sleep(Duration::from_millis(2050)).await;
        broker.send(StompItem::HeartBeat).await.expect("beating");
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            broker.send(StompItem::HeartBeat).await.expect("beating");
        }
        // The last beat went out at 5.05 s. Now go silent but keep the socket open.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(broker);
    });
    let (sender, mut receiver, info) = within(
        "connect",
        soar_stomp::connect(options(port, (0, 1000), None)),
    )
    .await
    .expect("connecting");
    assert_eq!(info.heart_beat, (0, 1000));
    let started = tokio::time::Instant::now();
    let error = within("the heart-beat timeout", receiver.next_message())
        .await
        .expect_err("the connection should die of silence");
    let elapsed = started.elapsed();
    assert!(
        matches!(error, StompError::HeartbeatTimeout { silent_for, .. } if silent_for == Duration::from_millis(2500)),
        "expected HeartbeatTimeout after 2.5 s of silence, got {error}"
    );
    assert!(
        elapsed >= Duration::from_millis(5050 + 2490)
            && elapsed < Duration::from_millis(5050 + 2600),
        "expected the timeout 2.5 s after the last beat at 5.05 s, it came after {elapsed:?}"
    );
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    let after = sender.send("/queue/x", &[], "late").await;
    assert!(
        matches!(after, Err(StompError::NotConnected { .. })),
        "a send after the connection died must fail, got {after:?}"
    );
    assert!(!sender.is_connected());
    broker.abort();
}

#[tokio::test(start_paused = true)]
async fn client_sends_heart_beats_when_idle() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,1000").await;
        let mut beats = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(5100);
        while let Ok(Some(item)) = tokio::time::timeout_at(deadline, broker.next()).await {
            match item.expect("decoding the client") {
                StompItem::HeartBeat => beats += 1,
                StompItem::Frame(frame) => panic!("unexpected {frame:?}"),
            }
        }
        beats
    });
    let (_sender, _receiver, info) = within(
        "connect",
        soar_stomp::connect(options(port, (500, 0), None)),
    )
    .await
    .expect("connecting");
    assert_eq!(
        info.heart_beat,
        (1000, 0),
        "the larger of 500 and the broker's 1000"
    );
    let beats = within("the broker task", broker).await.expect("broker");
    // One every half interval: 10 in 5 s; allow for the handshake's share.
    assert!(
        (9..=11).contains(&beats),
        "expected about 10 heart-beats in 5 s, got {beats}"
    );
}

#[tokio::test]
async fn error_frame_is_reported_with_message_and_body_and_ends_the_connection() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        let subscribe = next_frame(&mut broker).await;
        send(
            &mut broker,
            Frame::new("ERROR")
                .with_header(
                    "message",
                    "User name [x] is not authorized to read from: queue://q",
                )
                .with_body("java.lang.SecurityException: ..."),
        )
        .await;
        subscribe
    });
    let (sender, mut receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    sender
        .subscribe("q", "q", AckMode::ClientIndividual, &[])
        .await
        .expect("subscribing");
    let error = within("the error", receiver.next_message())
        .await
        .expect_err("an ERROR frame must end the receiver");
    match &error {
        StompError::ServerError { message, body, .. } => {
            assert!(message.contains("is not authorized to read"), "{message}");
            assert_eq!(body, "java.lang.SecurityException: ...");
        }
        other => panic!("expected ServerError, got {other}"),
    }
    let next = within("after the error", receiver.next_message()).await;
    assert!(
        matches!(next, Err(StompError::NotConnected { ref reason, .. }) if reason.contains("ERROR")),
        "after the error the receiver says why it is not connected, got {next:?}"
    );
    let send = sender.send("/queue/x", &[], "x").await;
    assert!(
        matches!(send, Err(StompError::NotConnected { .. })),
        "{send:?}"
    );
    within("the broker task", broker).await.expect("broker");
}

#[tokio::test]
async fn error_instead_of_connected_fails_connect() {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        let _connect = next_frame(&mut broker).await;
        send(
            &mut broker,
            Frame::new("ERROR").with_header("message", "Authentication failed"),
        )
        .await;
    });
    let result = within("connect", soar_stomp::connect(options(port, (0, 0), None))).await;
    match result {
        Err(StompError::ServerError { message, .. }) => {
            assert_eq!(message, "Authentication failed")
        }
        other => panic!(
            "expected ServerError, got {:?}",
            other.map(|(_, _, info)| info)
        ),
    }
}

#[tokio::test]
async fn send_with_receipt_waits_for_the_matching_receipt() {
    let (listener, port) = listener().await;
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        let sent = next_frame(&mut broker).await;
        let receipt = sent.header("receipt").expect("a receipt header").to_owned();
        released.await.expect("the test releasing the receipt");
        // A receipt for something else first: it must not complete the send.
        send(
            &mut broker,
            Frame::new("RECEIPT").with_header("receipt-id", "other"),
        )
        .await;
        send(
            &mut broker,
            Frame::new("RECEIPT").with_header("receipt-id", &receipt),
        )
        .await;
        let _ = broker.next().await;
        sent
    });
    let (sender, _receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    let sending = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send_with_receipt("/queue/acks", &[], "reply").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !sending.is_finished(),
        "send_with_receipt returned before the RECEIPT"
    );
    release
        .send(())
        .expect("the broker waiting for the release");
    within("the receipt", sending)
        .await
        .expect("sending task")
        .expect("send_with_receipt succeeding once the RECEIPT arrives");
    drop(sender);
    drop(_receiver);
    let sent = within("the broker task", broker).await.expect("broker");
    assert_eq!(sent.command, "SEND");
    assert_eq!(sent.body, Bytes::from_static(b"reply"));
}

#[tokio::test]
async fn receipt_wait_fails_when_the_connection_closes() {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        let _sent = next_frame(&mut broker).await;
        // Close without a receipt.
    });
    let (sender, mut receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    let result = within(
        "the receipt",
        sender.send_with_receipt("/queue/a", &[], "x"),
    )
    .await;
    assert!(
        matches!(result, Err(StompError::NotConnected { ref reason, .. }) if reason.contains("closed the connection")),
        "expected NotConnected saying the broker closed, got {result:?}"
    );
    let end = within("the end", receiver.next_message()).await;
    assert!(matches!(end, Err(StompError::Closed { .. })), "{end:?}");
}

#[tokio::test]
async fn disconnect_waits_for_its_receipt_then_closes() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        let disconnect = next_frame(&mut broker).await;
        let receipt = disconnect
            .header("receipt")
            .expect("a receipt header")
            .to_owned();
        send(
            &mut broker,
            Frame::new("RECEIPT").with_header("receipt-id", &receipt),
        )
        .await;
        // The client closes its side after the receipt.
        let after = broker.next().await;
        (disconnect, after.is_none())
    });
    let (sender, mut receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    within("disconnect", sender.disconnect())
        .await
        .expect("a clean disconnect");
    assert!(!sender.is_connected());
    let end = within("the end", receiver.next_message()).await;
    assert!(
        matches!(end, Err(StompError::Disconnected { .. })),
        "{end:?}"
    );
    let (disconnect, closed) = within("the broker task", broker).await.expect("broker");
    assert_eq!(disconnect.command, "DISCONNECT");
    assert!(
        closed,
        "the client should close the socket after the receipt"
    );
    assert!(
        within("second disconnect", sender.disconnect())
            .await
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn disconnect_without_receipt_times_out_but_still_closes() {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        while broker.next().await.is_some() {}
    });
    let (sender, _receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    let result = within("disconnect", sender.disconnect()).await;
    assert!(
        matches!(result, Err(StompError::ReceiptTimeout { .. })),
        "expected ReceiptTimeout, got {result:?}"
    );
    assert!(!sender.is_connected());
}

#[tokio::test(start_paused = true)]
async fn broker_that_never_answers_connect_times_out() {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        while broker.next().await.is_some() {}
    });
    let mut options = options(port, (0, 0), None);
    options.connect_timeout = Duration::from_secs(3);
    let result = within("connect", soar_stomp::connect(options)).await;
    match result {
        Err(error @ StompError::ConnectTimeout { .. }) => {
            assert!(
                error.to_string().contains(&format!("127.0.0.1:{port}")),
                "{error}"
            );
        }
        other => panic!(
            "expected ConnectTimeout, got {:?}",
            other.map(|(_, _, info)| info)
        ),
    }
}

#[tokio::test]
async fn refused_connection_names_host_and_port() {
    let (listener, port) = listener().await;
    drop(listener);
    let result = within("connect", soar_stomp::connect(options(port, (0, 0), None))).await;
    match result {
        Err(error @ StompError::Connect { .. }) => {
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("cannot connect to 127.0.0.1:{port}")),
                "{error}"
            );
            assert!(error.is_transient());
        }
        other => panic!("expected Connect, got {:?}", other.map(|(_, _, info)| info)),
    }
}

#[tokio::test]
async fn sends_blocked_by_a_broker_that_stopped_reading_fail_once_it_falls_silent() {
    let (listener, port) = listener().await;
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "500,0").await;
        // Neither read nor write from now on, but keep the socket open.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(broker);
    });
    let (sender, _receiver, _info) = within(
        "connect",
        soar_stomp::connect(options(port, (0, 500), None)),
    )
    .await
    .expect("connecting");
    // Far more than the socket buffers hold, so the writer blocks.
    let big = Bytes::from(vec![b'x'; 24 * 1024 * 1024]);
    let blocked = sender.send("/queue/big", &[], big);
    let ack = sender.ack("ID:after-the-big-one");
    let (sent, acked) = within("the blocked send and the ack behind it", async {
        tokio::join!(blocked, ack)
    })
    .await;
    assert!(
        matches!(sent, Err(StompError::NotConnected { .. })),
        "a send stuck behind a silent broker must fail once the connection is declared dead, got {sent:?}"
    );
    assert!(
        acked.is_err(),
        "an ack queued behind it must fail too, got {acked:?}"
    );
    assert!(!sender.is_connected());
    broker.abort();
}

#[tokio::test]
async fn oversized_frame_from_the_broker_is_a_protocol_error() {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        broker
            .get_mut()
            .write_all(b"MESSAGE\ncontent-length:5000000000\n\n")
            .await
            .expect("writing the head");
        let _ = broker.next().await;
    });
    let mut options = options(port, (0, 0), None);
    options.max_frame_size = 4096;
    let (_sender, mut receiver, _) = within("connect", soar_stomp::connect(options))
        .await
        .expect("connecting");
    let error = within("the error", receiver.next_message())
        .await
        .expect_err("an oversized frame must be refused");
    assert!(
        matches!(
            error,
            StompError::Protocol {
                source: CodecError::FrameTooLarge { limit: 4096, .. },
                ..
            }
        ),
        "expected FrameTooLarge, got {error}"
    );
}

#[tokio::test]
async fn message_arriving_with_connected_is_not_lost() {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        let _connect = next_frame(&mut broker).await;
        // CONNECTED and a MESSAGE in one write, so both land in the handshake's buffer.
        broker
            .get_mut()
            .write_all(b"CONNECTED\nversion:1.2\n\n\0\nMESSAGE\nack:1\n\nearly\0")
            .await
            .expect("writing");
        let _ = broker.next().await;
    });
    let (_sender, mut receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    let message = within("the message", receiver.next_message())
        .await
        .expect("the early MESSAGE");
    assert_eq!(message.body, Bytes::from_static(b"early"));
}

#[tokio::test]
async fn unencodable_frame_fails_without_ending_the_connection() {
    let (listener, port) = listener().await;
    tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        while broker.next().await.is_some() {}
    });
    let (sender, _receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    let result = sender.send_frame(Frame::new("not a command")).await;
    assert!(
        matches!(result, Err(StompError::InvalidFrame { .. })),
        "{result:?}"
    );
    assert!(sender.is_connected());
    sender
        .send("/queue/q", &[], "fine")
        .await
        .expect("a valid send afterwards");
}

/// A TLS fake broker with a fresh self-signed certificate for `localhost`; returns its port
/// and the certificate's PEM (its own CA).
async fn tls_broker() -> (u16, String, tokio::task::JoinHandle<()>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating a certificate");
    let cert_pem = certified.cert.pem();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (listener, port) = listener().await;
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.expect("accepting");
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate makes the handshake fail: fine here.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut broker = Framed::new(tls, StompCodec::new(LIMIT));
                handshake(&mut broker, "0,0").await;
                while let Some(Ok(item)) = broker.next().await {
                    if let StompItem::Frame(frame) = item
                        && let Some(receipt) = frame.header("receipt")
                    {
                        let receipt = Frame::new("RECEIPT").with_header("receipt-id", receipt);
                        let _ = broker.send(receipt).await;
                    }
                }
            });
        }
    });
    (port, cert_pem, task)
}

fn write_temp(name: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("soar-stomp-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).expect("writing a temporary file");
    path
}

#[tokio::test]
async fn tls_verifies_against_the_given_ca_file() {
    let (port, cert_pem, task) = tls_broker().await;
    let ca_file = write_temp("good-ca.pem", &cert_pem);
    let tls = TlsOptions {
        ca_file: Some(ca_file.clone()),
        verify: true,
        server_name: "localhost".into(),
    };
    let (sender, _receiver, info) = within(
        "connect",
        soar_stomp::connect(options(port, (0, 0), Some(tls))),
    )
    .await
    .expect("connecting over TLS with the right CA");
    assert_eq!(info.version, "1.2");
    within(
        "send",
        sender.send_with_receipt("/queue/q", &[], "over tls"),
    )
    .await
    .expect("a receipt over TLS");
    let _ = std::fs::remove_file(ca_file);
    task.abort();
}

#[tokio::test]
async fn tls_rejects_a_certificate_from_another_ca_or_for_another_name() {
    let (port, cert_pem, task) = tls_broker().await;
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generating another certificate");
    let wrong_ca = write_temp("wrong-ca.pem", &other.cert.pem());
    let good_ca = write_temp("right-ca.pem", &cert_pem);
    let cases = [
        (
            Some(wrong_ca.clone()),
            "localhost",
            "a CA that did not sign the certificate",
        ),
        (None, "localhost", "the system roots"),
        (
            Some(good_ca.clone()),
            "broker.example.com",
            "a name not in the certificate",
        ),
    ];
    for (ca_file, server_name, what) in cases {
        let tls = TlsOptions {
            ca_file,
            verify: true,
            server_name: server_name.into(),
        };
        let result = within(
            "connect",
            soar_stomp::connect(options(port, (0, 0), Some(tls))),
        )
        .await;
        assert!(
            matches!(result, Err(StompError::TlsHandshake { .. })),
            "with {what}, expected TlsHandshake, got {:?}",
            result.map(|(_, _, info)| info)
        );
    }
    let _ = std::fs::remove_file(wrong_ca);
    let _ = std::fs::remove_file(good_ca);
    task.abort();
}

#[tokio::test]
async fn tls_without_verification_accepts_any_certificate() {
    let (port, _cert_pem, task) = tls_broker().await;
    let tls = TlsOptions {
        ca_file: None,
        verify: false,
        server_name: "anything.example.com".into(),
    };
    let (sender, _receiver, _) = within(
        "connect",
        soar_stomp::connect(options(port, (0, 0), Some(tls))),
    )
    .await
    .expect("connecting without verification");
    within("send", sender.send_with_receipt("/queue/q", &[], "x"))
        .await
        .expect("a receipt");
    task.abort();
}

#[tokio::test]
async fn unreadable_ca_file_is_a_tls_config_error() {
    let tls = TlsOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        verify: true,
        server_name: "localhost".into(),
    };
    // No broker needed: the settings are checked before connecting.
    let result = within(
        "connect",
        soar_stomp::connect(options(1, (0, 0), Some(tls))),
    )
    .await;
    match result {
        Err(error @ StompError::TlsConfig { .. }) => {
            assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
            assert!(!error.is_transient());
        }
        other => panic!(
            "expected TlsConfig, got {:?}",
            other.map(|(_, _, info)| info)
        ),
    }
}

/// Reads one whole transaction (BEGIN up to its COMMIT) and returns its frames between the
/// two, with the COMMIT's receipt id; every frame must carry the BEGIN's transaction id.
async fn read_transaction<T: AsyncRead + AsyncWrite + Unpin>(
    broker: &mut Framed<T, StompCodec>,
) -> (Vec<Frame>, String) {
    let begin = next_frame(broker).await;
    assert_eq!(begin.command, "BEGIN");
    let id = begin
        .header("transaction")
        .expect("BEGIN's transaction")
        .to_owned();
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(broker).await;
        assert_eq!(
            frame.header("transaction"),
            Some(id.as_str()),
            "{} outside the transaction",
            frame.command
        );
        if frame.command == "COMMIT" {
            let receipt = frame
                .header("receipt")
                .expect("COMMIT's receipt")
                .to_owned();
            return (frames, receipt);
        }
        frames.push(frame);
    }
}

/// Reads an empty transaction begun and aborted at once: how the client makes ActiveMQ forget
/// the ACKs it has committed.
async fn read_forget<T: AsyncRead + AsyncWrite + Unpin>(broker: &mut Framed<T, StompCodec>) {
    let begin = next_frame(broker).await;
    assert_eq!(
        begin.command, "BEGIN",
        "an empty transaction after a commit with ACKs"
    );
    let abort = next_frame(broker).await;
    assert_eq!(
        abort.command, "ABORT",
        "the empty transaction is aborted at once"
    );
    assert_eq!(abort.header("transaction"), begin.header("transaction"));
}

fn grouped_reply(sender: &soar_stomp::StompSender, n: usize) -> soar_stomp::Transaction {
    let mut transaction = sender.transaction();
    transaction
        .send("/queue/acks", &[], format!("reply {n}"))
        .ack(&format!("ack-{n}"));
    transaction
}

/// Transactions grouped while a commit is out wait for it, then go out together in one
/// transaction, and each caller learns the outcome of the commit that carried its frames.
/// After each commit with ACKs the client aborts an empty transaction, which empties
/// ActiveMQ's list of committed ACKs.
#[tokio::test]
async fn grouped_commits_made_while_one_is_out_share_the_next_commit() {
    let (listener, port) = listener().await;
    let (first_read, first_was_read) = tokio::sync::oneshot::channel::<()>();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let broker = tokio::spawn(async move {
        let mut broker = accept(&listener).await;
        handshake(&mut broker, "0,0").await;
        let (first, receipt) = read_transaction(&mut broker).await;
        first_read.send(()).expect("the test waiting");
        released
            .await
            .expect("the test releasing the first receipt");
        send(
            &mut broker,
            Frame::new("RECEIPT").with_header("receipt-id", &receipt),
        )
        .await;
        read_forget(&mut broker).await;
        let (second, receipt) = read_transaction(&mut broker).await;
        send(
            &mut broker,
            Frame::new("RECEIPT").with_header("receipt-id", &receipt),
        )
        .await;
        read_forget(&mut broker).await;
        // A third group: the broker refuses it, which ends the connection.
        let (third, receipt) = read_transaction(&mut broker).await;
        send(
            &mut broker,
            Frame::new("ERROR")
                .with_header("receipt-id", &receipt)
                .with_header("message", "Unexpected ACK received for message-id [ack-x]"),
        )
        .await;
        (first, second, third)
    });
    let (sender, _receiver, _) =
        within("connect", soar_stomp::connect(options(port, (0, 0), None)))
            .await
            .expect("connecting");
    let first = tokio::spawn(grouped_reply(&sender, 0).commit_grouped());
    within("the first transaction", first_was_read)
        .await
        .expect("the broker reading it");
    let waiting: Vec<_> = (1..=9)
        .map(|n| tokio::spawn(grouped_reply(&sender, n).commit_grouped()))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !first.is_finished(),
        "a grouped commit returned before its receipt"
    );
    release.send(()).expect("the broker waiting");
    within("the first commit", first)
        .await
        .expect("task")
        .expect("the first commit confirmed");
    for (n, task) in waiting.into_iter().enumerate() {
        within("a grouped commit", task)
            .await
            .expect("task")
            .unwrap_or_else(|error| panic!("grouped commit {} failed: {error}", n + 1));
    }
    let third: Vec<_> = (10..=12)
        .map(|n| tokio::spawn(grouped_reply(&sender, n).commit_grouped()))
        .collect();
    for task in third {
        let result = within("a refused group", task).await.expect("task");
        assert!(
            matches!(&result, Err(StompError::ServerError { message, .. }) if message.contains("Unexpected ACK")),
            "every member of a refused group fails with the broker's error, got {result:?}"
        );
    }
    let (first, second, third) = within("the broker task", broker).await.expect("broker");
    let shape = |frames: &[Frame]| {
        frames
            .iter()
            .map(|frame| match frame.command.as_str() {
                "SEND" => String::from_utf8_lossy(&frame.body).into_owned(),
                "ACK" => frame.header("id").unwrap_or_default().to_owned(),
                other => other.to_owned(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&first), ["reply 0", "ack-0"]);
    let expected: Vec<String> = (1..=9)
        .flat_map(|n| [format!("reply {n}"), format!("ack-{n}")])
        .collect();
    assert_eq!(
        shape(&second),
        expected,
        "the nine made while the first was out share one transaction, in order, each SEND before its ACK"
    );
    assert_eq!(third.len(), 6, "the last three went out together");
}
