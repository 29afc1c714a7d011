//! The STOMP frame decoder on any bytes, split into two reads at any point: it must never
//! panic, never yield a frame larger than its limit, and every frame it yields must survive
//! encode then decode unchanged.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use soar_stomp::{Frame, StompCodec, StompItem};
use tokio_util::codec::{Decoder, Encoder};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, wire)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(wire.len());
    let mut codec = StompCodec::new(LIMIT);
    let mut buf = BytesMut::from(&wire[..split]);
    let mut frames = Vec::new();
    let mut failed = decode_into(&mut codec, &mut buf, &mut frames);
    if !failed {
        buf.extend_from_slice(&wire[split..]);
        failed = decode_into(&mut codec, &mut buf, &mut frames);
    }
    if !failed && let Ok(Some(StompItem::Frame(frame))) = codec.decode_eof(&mut buf) {
        frames.push(frame);
    }
    for frame in frames {
        assert!(
            frame.body.len() < LIMIT,
            "a frame over the limit was decoded"
        );
        round_trip(frame);
    }
});

/// Decodes until the buffer needs more bytes; true when the decoder gave an error.
fn decode_into(codec: &mut StompCodec, buf: &mut BytesMut, frames: &mut Vec<Frame>) -> bool {
    loop {
        match codec.decode(buf) {
            Ok(Some(StompItem::Frame(frame))) => frames.push(frame),
            Ok(Some(StompItem::HeartBeat)) => {}
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

fn round_trip(frame: Frame) {
    let mut wire = BytesMut::new();
    let mut codec = StompCodec::new(usize::MAX);
    // CONNECT/CONNECTED headers are not escaped, so some decoded ones cannot be written back.
    if codec.encode(&frame, &mut wire).is_err() {
        return;
    }
    let decoded = match codec.decode(&mut wire) {
        Ok(Some(StompItem::Frame(decoded))) => decoded,
        other => panic!("re-encoded frame {frame:?} did not decode: {other:?}"),
    };
    assert!(wire.is_empty(), "bytes left after the re-encoded frame");
    assert_eq!(
        without_content_length(decoded),
        without_content_length(frame)
    );
}

/// The codec owns `content-length`, so it is not part of what must round-trip.
fn without_content_length(mut frame: Frame) -> Frame {
    frame.headers.retain(|(name, _)| name != "content-length");
    frame
}
