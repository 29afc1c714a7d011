//! Unit and property tests of the STOMP codec.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::{CodecError, StompCodec, StompItem};
use crate::frame::Frame;

const LIMIT: usize = 1 << 20;

fn decode_all(codec: &mut StompCodec, buf: &mut BytesMut) -> Result<Vec<StompItem>, CodecError> {
    let mut items = Vec::new();
    while let Some(item) = codec.decode(buf)? {
        items.push(item);
    }
    Ok(items)
}

fn decode_bytes(bytes: &[u8]) -> Result<Vec<StompItem>, CodecError> {
    decode_all(&mut StompCodec::new(LIMIT), &mut BytesMut::from(bytes))
}

fn only_frame(bytes: &[u8]) -> Frame {
    match decode_bytes(bytes) {
        Ok(items) => match items.as_slice() {
            [StompItem::Frame(frame)] => frame.clone(),
            other => panic!("expected exactly one frame, got {other:?}"),
        },
        Err(error) => panic!("expected a frame, got error {error}"),
    }
}

fn encode(frame: &Frame) -> BytesMut {
    let mut out = BytesMut::new();
    if let Err(error) = StompCodec::new(LIMIT).encode(frame, &mut out) {
        panic!("encoding {frame:?} failed: {error}");
    }
    out
}

// The exact MESSAGE frame ActiveMQ 5.17 sends in client-individual mode (escaped `ack`).
const ACTIVEMQ_MESSAGE: &[u8] = b"MESSAGE\n\
content-length:2\n\
destination:/queue/actions.201.fn_misp\n\
ack:ID\\cvm-44351-1795823052020-4\\c1\n\
subscription:actions.201.fn_misp\n\
message-id:ID\\cvm-44351-1795823052020-3\\c3\\c-1\\c1\\c1\n\
correlation-id:invid\\c23061001\n\
\n\
{}\0";

#[test]
fn decodes_activemq_message_and_unescapes_the_ack_header() {
    let frame = only_frame(ACTIVEMQ_MESSAGE);
    assert_eq!(frame.command, "MESSAGE");
    assert_eq!(frame.header("ack"), Some("ID:vm-44351-1795823052020-4:1"));
    assert_eq!(
        frame.header("message-id"),
        Some("ID:vm-44351-1795823052020-3:3:-1:1:1")
    );
    assert_eq!(frame.header("correlation-id"), Some("invid:23061001"));
    assert_eq!(frame.body, Bytes::from_static(b"{}"));
}

#[test]
fn decodes_every_escape_sequence() {
    let frame = only_frame(b"MESSAGE\nk\\c\\\\:a\\nb\\rc\\cd\\\\e\n\n\0");
    assert_eq!(frame.headers, vec![("k:\\".into(), "a\nb\rc:d\\e".into())]);
}

#[test]
fn encodes_every_escape_sequence() {
    let frame = Frame::new("SEND").with_header("k:\\", "a\nb\rc:d\\e");
    assert_eq!(
        &encode(&frame)[..],
        b"SEND\nk\\c\\\\:a\\nb\\rc\\cd\\\\e\n\n\0"
    );
}

#[test]
fn connect_and_connected_headers_are_not_escaped() {
    let connected = only_frame(b"CONNECTED\nsession:ID:vm-1:4\nx:a\\nb\n\n\0");
    assert_eq!(connected.header("session"), Some("ID:vm-1:4"));
    assert_eq!(connected.header("x"), Some("a\\nb"));
    let connect = Frame::new("CONNECT").with_header("passcode", "se:cr\\et");
    assert_eq!(&encode(&connect)[..], b"CONNECT\npasscode:se:cr\\et\n\n\0");
}

#[test]
fn connect_header_with_a_line_break_cannot_be_encoded() {
    let frame = Frame::new("CONNECT").with_header("passcode", "a\nb");
    let result = StompCodec::new(LIMIT).encode(&frame, &mut BytesMut::new());
    assert!(
        matches!(result, Err(CodecError::Unencodable { .. })),
        "expected Unencodable, got {result:?}"
    );
}

#[test]
fn invalid_escape_is_an_error() {
    let result = decode_bytes(b"MESSAGE\nk:a\\tb\n\n\0");
    assert!(
        matches!(result, Err(CodecError::InvalidEscape { .. })),
        "{result:?}"
    );
}

#[test]
fn content_length_body_may_contain_nul_bytes() {
    let frame = only_frame(b"MESSAGE\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(frame.body, Bytes::from_static(b"a\0b\0c"));
    let encoded = encode(&Frame::new("SEND").with_body(Bytes::from_static(b"\0\0x")));
    assert_eq!(&encoded[..], b"SEND\ncontent-length:3\n\n\0\0x\0");
}

#[test]
fn body_without_content_length_ends_at_the_first_nul() {
    let items = match decode_bytes(b"MESSAGE\n\nhello\0\n") {
        Ok(items) => items,
        Err(error) => panic!("decode failed: {error}"),
    };
    assert_eq!(
        items,
        vec![
            StompItem::Frame(Frame::new("MESSAGE").with_body(Bytes::from_static(b"hello"))),
            StompItem::HeartBeat,
        ]
    );
}

#[test]
fn encoder_replaces_a_callers_content_length_and_omits_it_for_empty_bodies() {
    let frame = Frame::new("SEND")
        .with_header("content-length", "99")
        .with_body(Bytes::from_static(b"ab"));
    assert_eq!(&encode(&frame)[..], b"SEND\ncontent-length:2\n\nab\0");
    let empty = Frame::new("ACK").with_header("id", "1");
    assert_eq!(&encode(&empty)[..], b"ACK\nid:1\n\n\0");
}

#[test]
fn content_length_not_followed_by_nul_is_an_error() {
    let result = decode_bytes(b"MESSAGE\ncontent-length:2\n\nabc\0");
    assert!(
        matches!(result, Err(CodecError::MissingNul { content_length: 2 })),
        "{result:?}"
    );
}

#[test]
fn frame_split_at_every_byte_boundary_decodes_the_same() {
    let mut wire = Vec::new();
    wire.extend_from_slice(b"\r\n\n");
    wire.extend_from_slice(ACTIVEMQ_MESSAGE);
    wire.extend_from_slice(b"\nRECEIPT\r\nreceipt-id:7\r\n\r\n\0");
    let expected = match decode_bytes(&wire) {
        Ok(items) => items,
        Err(error) => panic!("decode failed: {error}"),
    };
    assert_eq!(
        expected.len(),
        5,
        "heart-beat, heart-beat, frame, heart-beat, frame"
    );
    for split in 0..=wire.len() {
        let mut codec = StompCodec::new(LIMIT);
        let mut buf = BytesMut::from(&wire[..split]);
        let mut items = match decode_all(&mut codec, &mut buf) {
            Ok(items) => items,
            Err(error) => panic!("split at {split}: first part failed: {error}"),
        };
        buf.extend_from_slice(&wire[split..]);
        match decode_all(&mut codec, &mut buf) {
            Ok(rest) => items.extend(rest),
            Err(error) => panic!("split at {split}: second part failed: {error}"),
        }
        assert_eq!(items, expected, "split at byte {split}");
        assert!(buf.is_empty(), "split at {split}: bytes left over");
    }
}

#[test]
fn body_arriving_one_byte_at_a_time_decodes() {
    let wire = b"MESSAGE\n\nslowly\0";
    let mut codec = StompCodec::new(LIMIT);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for &byte in wire.iter() {
        buf.extend_from_slice(&[byte]);
        match decode_all(&mut codec, &mut buf) {
            Ok(more) => items.extend(more),
            Err(error) => panic!("decode failed: {error}"),
        }
    }
    assert_eq!(
        items,
        vec![StompItem::Frame(
            Frame::new("MESSAGE").with_body(Bytes::from_static(b"slowly"))
        )]
    );
}

#[test]
fn multiple_frames_and_heart_beats_in_one_read() {
    let items = match decode_bytes(b"\nRECEIPT\nreceipt-id:1\n\n\0\r\n\nMESSAGE\n\nx\0") {
        Ok(items) => items,
        Err(error) => panic!("decode failed: {error}"),
    };
    assert_eq!(
        items,
        vec![
            StompItem::HeartBeat,
            StompItem::Frame(Frame::new("RECEIPT").with_header("receipt-id", "1")),
            StompItem::HeartBeat,
            StompItem::HeartBeat,
            StompItem::Frame(Frame::new("MESSAGE").with_body(Bytes::from_static(b"x"))),
        ]
    );
}

#[test]
fn crlf_line_endings_are_accepted() {
    let frame = only_frame(b"MESSAGE\r\nfoo:bar\r\ncontent-length:1\r\n\r\nz\0");
    assert_eq!(frame.header("foo"), Some("bar"));
    assert_eq!(frame.body, Bytes::from_static(b"z"));
}

#[test]
fn repeated_headers_are_kept_and_the_first_wins() {
    let frame = only_frame(b"MESSAGE\nfoo:1\nfoo:2\ncontent-length:1\ncontent-length:5\n\nz\0");
    assert_eq!(frame.header("foo"), Some("1"));
    assert_eq!(frame.headers.len(), 4);
    assert_eq!(frame.body, Bytes::from_static(b"z"));
}

#[test]
fn oversized_frame_with_content_length_fails_before_the_body_arrives() {
    let mut codec = StompCodec::new(100);
    let mut buf = BytesMut::from(&b"MESSAGE\ncontent-length:1000000000\n\n"[..]);
    let result = codec.decode(&mut buf);
    match result {
        Err(CodecError::FrameTooLarge { size, limit: 100 }) => {
            assert_eq!(size, 1_000_000_000 + 36);
            let message = CodecError::FrameTooLarge { size, limit: 100 }.to_string();
            assert!(message.contains("1000000036"), "{message}");
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

#[test]
fn oversized_frame_without_content_length_fails_once_past_the_limit() {
    let mut codec = StompCodec::new(100);
    let mut buf = BytesMut::from(&b"MESSAGE\n\n"[..]);
    assert!(matches!(codec.decode(&mut buf), Ok(None)));
    buf.extend_from_slice(&[b'x'; 200]);
    let result = codec.decode(&mut buf);
    assert!(
        matches!(result, Err(CodecError::FrameTooLarge { limit: 100, .. })),
        "{result:?}"
    );
}

#[test]
fn oversized_head_fails() {
    let mut codec = StompCodec::new(100);
    let mut buf = BytesMut::from(&b"MESSAGE\nk:"[..]);
    buf.extend_from_slice(&[b'v'; 200]);
    let result = codec.decode(&mut buf);
    assert!(
        matches!(result, Err(CodecError::FrameTooLarge { limit: 100, .. })),
        "{result:?}"
    );
}

#[test]
fn frame_exactly_at_the_limit_is_accepted() {
    let wire = b"MESSAGE\n\nabc\0";
    let mut codec = StompCodec::new(wire.len());
    let result = codec.decode(&mut BytesMut::from(&wire[..]));
    assert!(
        matches!(result, Ok(Some(StompItem::Frame(_)))),
        "{result:?}"
    );
}

#[test]
fn malformed_frames_give_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"message\n\n\0", "lower-case command"),
        (b"MES SAGE\n\n\0", "space in command"),
        (b"MESSAGE\nno-colon\n\n\0", "header without colon"),
        (
            b"MESSAGE\ncontent-length:abc\n\n\0",
            "non-numeric content-length",
        ),
        (
            b"MESSAGE\ncontent-length:-1\n\n\0",
            "negative content-length",
        ),
        (b"MESSAGE\nk:\xff\n\n\0", "non-utf-8 header"),
        (b"MESSAGE\nk:v\\\n\n\0", "trailing backslash"),
        (b"\rX", "stray carriage return"),
        (b"\xc3\x28\n\n\0", "non-utf-8 command"),
    ];
    for (wire, what) in cases {
        let result = decode_bytes(wire);
        assert!(result.is_err(), "{what}: expected an error, got {result:?}");
    }
}

#[test]
fn eof_inside_a_frame_is_reported_as_truncated() {
    let mut codec = StompCodec::new(LIMIT);
    let mut buf = BytesMut::from(&b"MESSAGE\n\npart"[..]);
    let result = codec.decode_eof(&mut buf);
    assert!(
        matches!(result, Err(CodecError::Truncated { buffered: 13 })),
        "{result:?}"
    );
    let mut empty = BytesMut::new();
    assert!(matches!(codec.decode_eof(&mut empty), Ok(None)));
}

#[test]
fn heart_beat_encodes_as_a_single_line_feed() {
    let mut out = BytesMut::new();
    let result = StompCodec::new(LIMIT).encode(StompItem::HeartBeat, &mut out);
    assert!(result.is_ok());
    assert_eq!(&out[..], b"\n");
}

fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("SEND".to_string()),
        Just("MESSAGE".to_string()),
        Just("ERROR".to_string()),
        "[A-Z]{1,12}",
    ]
    .prop_filter("CONNECT frames are not escaped", |c| {
        c != "CONNECT" && c != "CONNECTED"
    })
}

fn header() -> impl Strategy<Value = (String, String)> {
    // Bias towards the characters that need escaping.
    let text = prop_oneof![
        ".*",
        proptest::collection::vec(
            prop_oneof![Just('\\'), Just('\n'), Just('\r'), Just(':'), any::<char>()],
            0..8
        )
        .prop_map(|chars| chars.into_iter().collect::<String>()),
    ];
    (text.clone(), text).prop_filter("content-length is owned by the codec", |(name, _)| {
        name != "content-length"
    })
}

proptest! {
    #[test]
    fn encode_then_decode_gives_back_the_frame(
        command in command(),
        headers in proptest::collection::vec(header(), 0..6),
        body in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..64),
        split in any::<prop::sample::Index>(),
    ) {
        let frame = Frame { command, headers, body: Bytes::from(body) };
        let wire = encode(&frame);
        let mut expected = frame.clone();
        if !frame.body.is_empty() {
            expected.headers.push(("content-length".into(), frame.body.len().to_string()));
        }
        // Decode in two reads split at an arbitrary point.
        let split = split.index(wire.len() + 1);
        let mut codec = StompCodec::new(LIMIT);
        let mut buf = BytesMut::from(&wire[..split]);
        let mut items = decode_all(&mut codec, &mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        buf.extend_from_slice(&wire[split..]);
        items.extend(decode_all(&mut codec, &mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?);
        prop_assert_eq!(items, vec![StompItem::Frame(expected)]);
        prop_assert!(buf.is_empty());
    }

    /// A stream of frames (bodies up to 4 KiB, NULs included) and heart-beats, read in
    /// chunks of any sizes, decodes to the same items in order.
    #[test]
    fn a_stream_of_frames_and_heart_beats_read_in_any_chunks_decodes_in_order(
        items in proptest::collection::vec(
            prop_oneof![
                1 => Just(None),
                4 => (
                    command(),
                    proptest::collection::vec(header(), 0..4),
                    proptest::collection::vec(any::<u8>(), 0..4096),
                )
                    .prop_map(Some),
            ],
            1..6,
        ),
        chunks in proptest::collection::vec(1usize..2048, 1..32),
    ) {
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for item in items {
            match item {
                None => {
                    wire.extend_from_slice(b"\n");
                    expected.push(StompItem::HeartBeat);
                }
                Some((command, headers, body)) => {
                    let frame = Frame { command, headers, body: Bytes::from(body) };
                    wire.extend_from_slice(&encode(&frame));
                    let mut decoded = frame.clone();
                    if !frame.body.is_empty() {
                        decoded
                            .headers
                            .push(("content-length".into(), frame.body.len().to_string()));
                    }
                    expected.push(StompItem::Frame(decoded));
                }
            }
        }
        let mut codec = StompCodec::new(LIMIT);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        let mut rest = &wire[..];
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let size = (*sizes.next().unwrap_or(&1)).min(rest.len());
            buf.extend_from_slice(&rest[..size]);
            rest = &rest[size..];
            decoded.extend(
                decode_all(&mut codec, &mut buf).map_err(|e| TestCaseError::fail(e.to_string()))?,
            );
        }
        prop_assert_eq!(decoded, expected);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn connect_frames_round_trip_without_escaping(
        login in "[^\r\n]*",
        passcode in "[^\r\n]*",
    ) {
        let frame = Frame::new("CONNECT").with_header("login", login).with_header("passcode", passcode);
        let wire = encode(&frame);
        let items = decode_bytes(&wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(items, vec![StompItem::Frame(frame)]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut codec = StompCodec::new(128);
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = decode_all(&mut codec, &mut buf);
        let _ = codec.decode_eof(&mut buf);
    }
}

#[test]
fn a_fresh_buffer_after_a_partial_frame_does_not_confuse_the_decoder() {
    let mut codec = StompCodec::new(LIMIT);
    let mut partial = BytesMut::from(&b"MESSAGE\n\nlong partial body"[..]);
    assert!(matches!(codec.decode(&mut partial), Ok(None)));
    let mut fresh = BytesMut::from(&b"RECEIPT\nreceipt-id:1\n\n\0"[..]);
    let result = codec.decode(&mut fresh);
    assert_eq!(
        result.ok().flatten(),
        Some(StompItem::Frame(
            Frame::new("RECEIPT").with_header("receipt-id", "1")
        ))
    );
}
