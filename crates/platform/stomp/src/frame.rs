//! The STOMP frame type and the header escaping rules of STOMP 1.2.

use bytes::Bytes;

/// One STOMP frame: a command, headers in wire order, and a body.
///
/// Header names and values are held unescaped; the codec escapes them on the wire.
/// Repeated headers are all kept in order, and [`Frame::header`] returns the first,
/// because STOMP 1.2 says the first occurrence wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command, such as `SEND`, `MESSAGE` or `ERROR`.
    pub command: String,
    /// The headers, unescaped, in the order they appear on the wire.
    pub headers: Vec<(String, String)>,
    /// The body; empty for frames without one.
    pub body: Bytes,
}

/// The header on a `MESSAGE` frame whose value must be sent back as the `id` of `ACK`/`NACK`.
pub const ACK_HEADER: &str = "ack";

impl Frame {
    /// A frame with the given command, no headers and an empty body.
    pub fn new(command: impl Into<String>) -> Frame {
        Frame {
            command: command.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Appends a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Frame {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Frame {
        self.body = body.into();
        self
    }

    /// The value of the first header called `name`, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header_name, _)| header_name == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text, with invalid UTF-8 replaced; meant for logs and error messages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Whether headers of frames with this command are escaped on the wire.
///
/// STOMP 1.2 leaves CONNECT and CONNECTED unescaped for compatibility with STOMP 1.0.
pub(crate) fn command_escapes_headers(command: &str) -> bool {
    !matches!(command, "CONNECT" | "CONNECTED")
}

/// Appends `text` to `out` with the four STOMP 1.2 escapes applied.
pub(crate) fn escape_into(text: &str, out: &mut Vec<u8>) {
    for byte in text.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b':' => out.extend_from_slice(b"\\c"),
            other => out.push(other),
        }
    }
}

/// Reverses [`escape_into`]; `None` for an escape STOMP 1.2 does not define or a trailing `\`.
pub(crate) fn unescape(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let unescaped = match bytes.next()? {
            b'\\' => b'\\',
            b'n' => b'\n',
            b'r' => b'\r',
            b'c' => b':',
            _ => return None,
        };
        out.push(unescaped);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_returns_the_first_of_repeated_headers() {
        let frame = Frame::new("MESSAGE")
            .with_header("foo", "first")
            .with_header("foo", "second");
        assert_eq!(frame.header("foo"), Some("first"));
        assert_eq!(frame.header("bar"), None);
    }

    #[test]
    fn escape_then_unescape_gives_back_every_special_character() {
        let text = "a\\b\nc\rd:e";
        let mut escaped = Vec::new();
        escape_into(text, &mut escaped);
        assert_eq!(escaped, b"a\\\\b\\nc\\rd\\ce".to_vec());
        assert_eq!(unescape(&escaped), Some(text.as_bytes().to_vec()));
    }

    #[test]
    fn unescape_rejects_undefined_escapes_and_a_trailing_backslash() {
        assert_eq!(unescape(b"a\\tb"), None);
        assert_eq!(unescape(b"ab\\"), None);
    }
}
