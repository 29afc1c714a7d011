//! A `tokio_util::codec` for STOMP 1.2 frames and heart-beats, usable by clients and test servers.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{Frame, command_escapes_headers, escape_into, unescape};

/// What the decoder yields, and what the encoder accepts: a frame or a heart-beat (one EOL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StompItem {
    /// A complete frame.
    Frame(Frame),
    /// A bare `\n` or `\r\n` between frames.
    HeartBeat,
}

/// Encodes and decodes STOMP 1.2 frames.
///
/// The decoder accepts `\n` and `\r\n` line endings, unescapes headers (except on CONNECT and
/// CONNECTED), reads exactly `content-length` bytes of body when that header is present and up
/// to the first NUL otherwise, and refuses frames larger than the configured limit before
/// buffering them. The encoder escapes headers the same way and writes `content-length` for
/// every frame with a non-empty body, so bodies may contain NUL bytes.
#[derive(Debug)]
pub struct StompCodec {
    max_frame_size: usize,
    // The head of a frame whose body has not fully arrived, so it is parsed only once.
    pending: Option<PendingHead>,
    // Where to resume looking for the NUL of a body without `content-length`.
    nul_search_from: usize,
}

/// Why a frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The frame (head, body and NUL) is larger than the decoder's limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge { size: usize, limit: usize },
    /// The command line is empty or not made of ASCII capital letters.
    #[error("invalid command line {line:?}")]
    InvalidCommand { line: String },
    /// A header line has no `:`.
    #[error("header line {line:?} has no colon")]
    HeaderWithoutColon { line: String },
    /// A header uses an escape other than `\\`, `\n`, `\r` or `\c`.
    #[error("header line {line:?} has an invalid escape sequence")]
    InvalidEscape { line: String },
    /// A header name or value is not UTF-8.
    #[error("header line {line:?} is not valid utf-8")]
    HeaderNotUtf8 { line: String },
    /// `content-length` is not a decimal number.
    #[error("invalid content-length {value:?}")]
    InvalidContentLength { value: String },
    /// The byte after a `content-length` body is not NUL.
    #[error("the {content_length}-byte body is not followed by a nul byte")]
    MissingNul { content_length: usize },
    /// A `\r` between frames is not followed by `\n`.
    #[error("carriage return not followed by a line feed between frames")]
    StrayCarriageReturn,
    /// The stream ended in the middle of a frame.
    #[error("the stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    /// A frame cannot be written: a CONNECT/CONNECTED header with a line break or a name with
    /// a colon (those frames are not escaped), or an invalid command.
    #[error("cannot encode {command} frame: {reason}")]
    Unencodable {
        command: String,
        reason: &'static str,
    },
    /// Reading or writing the underlying stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug)]
struct PendingHead {
    command: String,
    headers: Vec<(String, String)>,
    head_len: usize,
    content_length: Option<usize>,
}

impl StompCodec {
    /// A codec refusing frames larger than `max_frame_size` bytes (head, body and NUL).
    pub fn new(max_frame_size: usize) -> StompCodec {
        StompCodec {
            max_frame_size,
            pending: None,
            nul_search_from: 0,
        }
    }

    /// The size limit this codec enforces.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    fn too_large(&self, size: usize) -> CodecError {
        CodecError::FrameTooLarge {
            size,
            limit: self.max_frame_size,
        }
    }

    fn decode_head(&mut self, buf: &mut BytesMut) -> Result<Option<PendingHead>, CodecError> {
        let Some(head_len) = find_head_end(buf) else {
            if buf.len() > self.max_frame_size {
                return Err(self.too_large(buf.len()));
            }
            return Ok(None);
        };
        if head_len > self.max_frame_size {
            return Err(self.too_large(head_len));
        }
        let head = parse_head(&buf[..head_len])?;
        Ok(Some(PendingHead { head_len, ..head }))
    }
}

impl Decoder for StompCodec {
    type Item = StompItem;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<StompItem>, CodecError> {
        let result = self.decode_item(buf);
        if result.is_err() {
            // Start afresh if the caller goes on with another buffer.
            self.pending = None;
            self.nul_search_from = 0;
        }
        result
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<StompItem>, CodecError> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.is_empty() => Ok(None),
            None => {
                self.pending = None;
                self.nul_search_from = 0;
                Err(CodecError::Truncated {
                    buffered: buf.len(),
                })
            }
        }
    }
}

impl StompCodec {
    fn decode_item(&mut self, buf: &mut BytesMut) -> Result<Option<StompItem>, CodecError> {
        // The head parsed earlier is only valid for the buffer it came from.
        if self
            .pending
            .as_ref()
            .is_some_and(|head| buf.len() < head.head_len || buf.len() < self.nul_search_from)
        {
            self.pending = None;
            self.nul_search_from = 0;
        }
        if self.pending.is_none() {
            match buf.first() {
                None => return Ok(None),
                Some(b'\n') => {
                    buf.advance(1);
                    return Ok(Some(StompItem::HeartBeat));
                }
                Some(b'\r') => match buf.get(1) {
                    None => return Ok(None),
                    Some(b'\n') => {
                        buf.advance(2);
                        return Ok(Some(StompItem::HeartBeat));
                    }
                    Some(_) => return Err(CodecError::StrayCarriageReturn),
                },
                Some(_) => {}
            }
            match self.decode_head(buf)? {
                None => return Ok(None),
                Some(head) => {
                    self.nul_search_from = head.head_len;
                    self.pending = Some(head);
                }
            }
        }
        let Some(head) = self.pending.as_ref() else {
            return Ok(None);
        };
        let head_len = head.head_len;
        let body_len = match head.content_length {
            Some(content_length) => {
                let total = head_len.saturating_add(content_length).saturating_add(1);
                if total > self.max_frame_size {
                    return Err(self.too_large(total));
                }
                if buf.len() < total {
                    buf.reserve(total - buf.len());
                    return Ok(None);
                }
                if buf[head_len + content_length] != 0 {
                    return Err(CodecError::MissingNul { content_length });
                }
                content_length
            }
            None => match buf[self.nul_search_from..].iter().position(|&b| b == 0) {
                Some(offset) => {
                    let nul_at = self.nul_search_from + offset;
                    if nul_at + 1 > self.max_frame_size {
                        return Err(self.too_large(nul_at + 1));
                    }
                    nul_at - head_len
                }
                None => {
                    // The frame is at least one byte (the NUL) longer than what is buffered.
                    if buf.len() + 1 > self.max_frame_size {
                        return Err(self.too_large(buf.len() + 1));
                    }
                    self.nul_search_from = buf.len();
                    return Ok(None);
                }
            },
        };
        let Some(head) = self.pending.take() else {
            return Ok(None);
        };
        let mut frame_bytes = buf.split_to(head_len + body_len + 1).freeze();
        frame_bytes.advance(head_len);
        let body = frame_bytes.slice(..body_len);
        self.nul_search_from = 0;
        Ok(Some(StompItem::Frame(Frame {
            command: head.command,
            headers: head.headers,
            body,
        })))
    }
}

impl Encoder<Frame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<&Frame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let unencodable = |reason| CodecError::Unencodable {
            command: frame.command.clone(),
            reason,
        };
        if !is_valid_command(frame.command.as_bytes()) {
            return Err(unencodable("the command must be ASCII capital letters"));
        }
        let escape = command_escapes_headers(&frame.command);
        let mut out = Vec::with_capacity(64 + frame.body.len());
        out.extend_from_slice(frame.command.as_bytes());
        out.push(b'\n');
        // The codec owns content-length: a caller's value could disagree with the body.
        for (name, value) in frame.headers.iter().filter(|(n, _)| n != "content-length") {
            if escape {
                escape_into(name, &mut out);
                out.push(b':');
                escape_into(value, &mut out);
            } else {
                if name.contains(['\n', '\r', ':']) || value.contains(['\n', '\r']) {
                    return Err(unencodable(
                        "headers of this frame cannot contain line breaks (or colons in names)",
                    ));
                }
                out.extend_from_slice(name.as_bytes());
                out.push(b':');
                out.extend_from_slice(value.as_bytes());
            }
            out.push(b'\n');
        }
        if !frame.body.is_empty() {
            out.extend_from_slice(format!("content-length:{}\n", frame.body.len()).as_bytes());
        }
        out.push(b'\n');
        dst.reserve(out.len() + frame.body.len() + 1);
        dst.put_slice(&out);
        dst.put_slice(&frame.body);
        dst.put_u8(0);
        Ok(())
    }
}

impl Encoder<StompItem> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, item: StompItem, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            StompItem::Frame(frame) => self.encode(&frame, dst),
            StompItem::HeartBeat => {
                dst.put_u8(b'\n');
                Ok(())
            }
        }
    }
}

fn is_valid_command(command: &[u8]) -> bool {
    !command.is_empty() && command.iter().all(u8::is_ascii_uppercase)
}

/// The length of the head (command line, header lines and the blank line), if it is complete.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    loop {
        let line_len = buf[line_start..].iter().position(|&b| b == b'\n')?;
        let line = &buf[line_start..line_start + line_len];
        let next_line = line_start + line_len + 1;
        if line_start > 0 && (line.is_empty() || line == b"\r") {
            return Some(next_line);
        }
        line_start = next_line;
    }
}

/// Parses a complete head; `head_len` of the result is left for the caller to fill in.
fn parse_head(head: &[u8]) -> Result<PendingHead, CodecError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let command_line = lines.next().unwrap_or_default();
    if !is_valid_command(command_line) {
        return Err(CodecError::InvalidCommand {
            line: String::from_utf8_lossy(command_line).into_owned(),
        });
    }
    let command = String::from_utf8_lossy(command_line).into_owned();
    let escaped = command_escapes_headers(&command);
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        let lossy = || String::from_utf8_lossy(line).into_owned();
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(CodecError::HeaderWithoutColon { line: lossy() });
        };
        let (raw_name, raw_value) = (&line[..colon], &line[colon + 1..]);
        let (name, value) = if escaped {
            match (unescape(raw_name), unescape(raw_value)) {
                (Some(name), Some(value)) => (name, value),
                _ => return Err(CodecError::InvalidEscape { line: lossy() }),
            }
        } else {
            (raw_name.to_vec(), raw_value.to_vec())
        };
        match (String::from_utf8(name), String::from_utf8(value)) {
            (Ok(name), Ok(value)) => headers.push((name, value)),
            _ => return Err(CodecError::HeaderNotUtf8 { line: lossy() }),
        }
    }
    let content_length = match headers.iter().find(|(name, _)| name == "content-length") {
        None => None,
        Some((_, value)) => match value.trim().parse::<usize>() {
            Ok(length) => Some(length),
            Err(_) => {
                return Err(CodecError::InvalidContentLength {
                    value: value.clone(),
                });
            }
        },
    };
    Ok(PendingHead {
        command,
        headers,
        head_len: 0,
        content_length,
    })
}

#[cfg(test)]
mod tests;
