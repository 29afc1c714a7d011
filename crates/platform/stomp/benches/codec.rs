//! Micro-benchmarks of the STOMP codec on the frames the runner decodes and encodes per call.
//!
//! Run with `cargo bench -p soar-stomp`; `cargo test` runs each benchmark once as a smoke test.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use soar_stomp::{Frame, StompCodec, StompItem};
use tokio_util::codec::{Decoder, Encoder};

/// The runner's limit (16 MiB), so the size checks run as they do in production.
const MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// A FunctionDataDTO body shaped like the one SOAR sends for `misp_create_attribute`
/// (see `tests/fixtures/soar/resilient_circuits_wire_excerpt.txt`), about 1.5 KB.
const FUNCTION_BODY: &str = concat!(
    r#"{"function": {"id": 146, "name": "misp_create_attribute", "display_name": "MISP Create Attribute", "#,
    r#""description": {"format": "text", "content": "Create an attribute on an existing MISP event"}, "#,
    r#""uuid": "2d5ee9a6-4e4f-4a8e-9c1f-4b8c5b4f6a11", "version": 1, "creator": null, "view_items": [], "#,
    r#""workflows": [], "tags": [{"tag_handle": {"id": 9, "name": "fn_misp", "display_name": "fn_misp"}, "value": null}]}, "#,
    r#""groups": [], "inputs": {"misp_event_id": 42, "misp_attribute_value": "203.0.113.17", "#,
    r#""misp_attribute_type": {"id": 3971, "name": "ip-dst"}, "#,
    r#""misp_attribute_category": {"id": 3980, "name": "Network activity"}, "misp_to_ids": true, "#,
    r#""misp_attribute_comment": {"format": "text", "content": "Seen in the phishing campaign of incident 2095; "#,
    r#"the sender domain resolved to this address between 2026-11-20 and 2026-11-27."}}, "#,
    r#""playbook_instance": null, "#,
    r#""principal": {"id": 1, "type": "user", "name": "admin@example.com", "display_name": "Admin User"}, "#,
    r#""workflow": {"workflow_id": 155, "programmatic_name": "example_misp_create_attribute", "#,
    r#""name": "Example: MISP Create Attribute", "description": null, "uuid": null, "#,
    r#""object_type": {"id": 0, "name": "incident"}, "actions": [], "tags": []}, "#,
    r#""workflow_instance": {"workflow_instance_id": 23061001, "workflow": {"workflow_id": 155, "#,
    r#""programmatic_name": "example_misp_create_attribute", "name": "Example: MISP Create Attribute", "#,
    r#""description": null, "uuid": null, "object_type": {"id": 0, "name": "incident"}, "#,
    r#""actions": [], "tags": []}}}"#,
);

/// The headers ActiveMQ 5.17 puts on a function MESSAGE, escaped as on the wire (`\c` is `:`).
/// `content-length` is added by [`message_wire`].
const ACTIVEMQ_HEADERS: &[&str] = &[
    "expires:0",
    "Co3ContextToken:eyJhbGciOiJIUzI1NiJ9.bnVsbA.v6H7hx8-uXi1fq9cuOxic8Gj7UE9m7unz1Sa08V-zTw",
    "Co3RemoteAddr:127.0.0.1",
    "correlation-id:invid\\c23061001",
    "destination:/queue/actions.201.fn_misp",
    "ack:ID\\cvm-44351-1795823052020-4\\c1",
    "subscription:actions.201.fn_misp",
    "priority:4",
    "Co3MessagePayload:FunctionDataDTO",
    "message-id:ID\\cvm-44351-1795823052020-3\\c3\\c-1\\c1\\c1",
    "Co3ContentType:application/json",
    "persistent:true",
    "reply-to:/queue/acks.201.fn_misp",
    "timestamp:1795823061367",
];

/// Headers where most values need unescaping: Windows paths, multi-line text and colons.
const ESCAPED_HEADERS: &[&str] = &[
    "destination:/queue/actions.201.fn_misp",
    "ack:ID\\cvm-44351-1795823052020-4\\c1",
    "message-id:ID\\cvm-44351-1795823052020-3\\c3\\c-1\\c1\\c1",
    "correlation-id:invid\\c23061001",
    "x-source-path:C\\c\\\\Users\\\\analyst\\\\Downloads\\\\invoice.pdf.exe",
    "x-note:line one\\nline two\\r\\nline three\\c with a colon",
    "x-url:https\\c//203.0.113.17\\c8443/login?next=\\c\\c",
    "x-escaped\\cname:value\\\\with\\\\backslashes",
];

fn message_wire(headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut wire = b"MESSAGE\n".to_vec();
    for header in headers {
        wire.extend_from_slice(header.as_bytes());
        wire.push(b'\n');
    }
    wire.extend_from_slice(format!("content-length:{}\n\n", body.len()).as_bytes());
    wire.extend_from_slice(body);
    wire.push(0);
    wire
}

/// A JSON-like body of exactly `size` bytes, as a large search result would be.
fn large_body(size: usize) -> Vec<u8> {
    let record = br#"{"id": "1", "type": "ip-dst", "value": "203.0.113.17", "Tag": [{"name": "tlp:white"}]}, "#;
    let mut body = b"[".to_vec();
    while body.len() + record.len() < size - 1 {
        body.extend_from_slice(record);
    }
    body.resize(size - 1, b' ');
    body.push(b']');
    body
}

/// A final reply of about 600 bytes, as the runner sends for a small result.
fn reply_body() -> String {
    let mut body = String::from(
        r#"{"message_type": 0, "message": "Completed", "complete": true, "results": {"version": 2.0, "success": true, "reason": null, "content": {"Attribute": {"id": "4711", "event_id": "42", "object_id": "0", "category": "Network activity", "type": "ip-dst", "value": "203.0.113.17", "to_ids": true, "uuid": "6c2f0a4e-2b1d-4a8e-9d3c-1f5e7b9a0c42", "timestamp": "1795823063", "comment": ""}}, "raw": null, "inputs": {"misp_event_id": 42, "misp_attribute_value": "203.0.113.17"}, "#,
    );
    body.push_str(
        r#""metrics": {"version": "1.0", "package": "fn-misp", "package_version": "3.0.2", "host": "runner", "execution_time_ms": 87, "timestamp": "2026-11-28 10:00:00"}}}"#,
    );
    body
}

/// Decodes every item in `buf`, checking that nothing is left over.
fn decode_all(codec: &mut StompCodec, mut buf: BytesMut) -> Vec<StompItem> {
    let mut items = Vec::new();
    while let Some(item) = codec
        .decode(&mut buf)
        .expect("the benchmark frames are valid")
    {
        items.push(item);
    }
    assert!(
        buf.is_empty(),
        "every buffered byte should have been decoded"
    );
    items
}

fn bench_decode_one(criterion: &mut Criterion, name: &str, wire: &[u8]) {
    let mut codec = StompCodec::new(MAX_FRAME_SIZE);
    let items = decode_all(&mut codec, BytesMut::from(wire));
    assert!(
        matches!(items.as_slice(), [StompItem::Frame(frame)] if frame.command == "MESSAGE"),
        "{name}: expected one MESSAGE frame, got {items:?}"
    );
    let mut group = criterion.benchmark_group("stomp_decode");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function(name, |bencher| {
        bencher.iter_batched(
            || BytesMut::from(wire),
            // The buffer is returned so that dropping it is not timed.
            |mut buf| {
                let item = codec.decode(black_box(&mut buf));
                (buf, item)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn decode(criterion: &mut Criterion) {
    let function_message = message_wire(ACTIVEMQ_HEADERS, FUNCTION_BODY.as_bytes());
    bench_decode_one(criterion, "function_message", &function_message);

    let escaped = message_wire(ESCAPED_HEADERS, FUNCTION_BODY.as_bytes());
    bench_decode_one(criterion, "escaped_headers", &escaped);

    let large = message_wire(ACTIVEMQ_HEADERS, &large_body(64 * 1024));
    bench_decode_one(criterion, "large_body_64k", &large);

    // Eight function messages with heart-beats between them, as after a burst of work.
    let mut burst = Vec::new();
    for _ in 0..8 {
        burst.extend_from_slice(&function_message);
        burst.extend_from_slice(b"\n");
    }
    let mut codec = StompCodec::new(MAX_FRAME_SIZE);
    let items = decode_all(&mut codec, BytesMut::from(&burst[..]));
    assert_eq!(items.len(), 16, "expected 8 frames and 8 heart-beats");
    let mut group = criterion.benchmark_group("stomp_decode");
    group.throughput(Throughput::Bytes(burst.len() as u64));
    group.bench_function("eight_frames_one_buffer", |bencher| {
        bencher.iter_batched(
            || BytesMut::from(&burst[..]),
            |buf| decode_all(&mut codec, black_box(buf)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn encode(criterion: &mut Criterion) {
    let mut codec = StompCodec::new(MAX_FRAME_SIZE);
    let reply = Frame::new("SEND")
        .with_header("destination", "/queue/acks.201.fn_misp")
        .with_header("correlation-id", "invid:23061001")
        .with_body(Bytes::from(reply_body()));
    let mut dst = BytesMut::new();
    codec
        .encode(&reply, &mut dst)
        .expect("the reply frame is encodable");
    let encoded_len = dst.len();

    let mut group = criterion.benchmark_group("stomp_encode");
    group.throughput(Throughput::Bytes(encoded_len as u64));
    group.bench_function("send_reply", |bencher| {
        bencher.iter(|| {
            // Reusing the buffer, as the writer's Framed does once it has grown.
            dst.clear();
            codec
                .encode(black_box(&reply), &mut dst)
                .expect("the reply frame is encodable");
            dst.len()
        });
    });
    group.throughput(Throughput::Bytes(1));
    group.bench_function("heart_beat", |bencher| {
        bencher.iter(|| {
            dst.clear();
            codec
                .encode(black_box(StompItem::HeartBeat), &mut dst)
                .expect("a heart-beat is encodable");
            dst.len()
        });
    });
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
