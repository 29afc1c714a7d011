//! Just enough `multipart/form-data` parsing to take the file out of an attachment upload.

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    /// The `name` of `Content-Disposition`.
    pub(crate) name: Option<String>,
    pub(crate) filename: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Vec<u8>,
}

/// Splits `body` into its parts, given the request's `Content-Type`.
pub(crate) fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let mut media = content_type.split(';');
    let kind = media.next().unwrap_or_default().trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!(
            "expected Content-Type multipart/form-data, got '{content_type}'"
        ));
    }
    let boundary = media
        .filter_map(|parameter| parameter.trim().split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim_matches('"').to_string())
        .ok_or("the multipart Content-Type has no boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();

    let mut parts = Vec::new();
    let mut rest = match find(body, &delimiter) {
        Some(start) => &body[start + delimiter.len()..],
        None => return Err("the body does not contain the multipart boundary".to_string()),
    };
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a multipart boundary is not followed by a line break")?;
        // The part's data ends at the CRLF that precedes the next delimiter.
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delimiter);
        let end = find(rest, &closing).ok_or("the last multipart part is not closed")?;
        parts.push(parse_part(&rest[..end])?);
        rest = &rest[end + closing.len()..];
    }
}

fn parse_part(raw: &[u8]) -> Result<Part, String> {
    let split =
        find(raw, b"\r\n\r\n").ok_or("a multipart part has no blank line after its headers")?;
    let headers = String::from_utf8_lossy(&raw[..split]);
    let mut part = Part {
        name: None,
        filename: None,
        content_type: None,
        bytes: raw[split + 4..].to_vec(),
    };
    for line in headers.split("\r\n") {
        let Some((header, value)) = line.split_once(':') else {
            continue;
        };
        match header.trim().to_ascii_lowercase().as_str() {
            "content-type" => part.content_type = Some(value.trim().to_string()),
            "content-disposition" => {
                for parameter in value.split(';').skip(1) {
                    let Some((name, value)) = parameter.trim().split_once('=') else {
                        continue;
                    };
                    let value = value.trim().trim_matches('"').to_string();
                    match name.trim().to_ascii_lowercase().as_str() {
                        "name" => part.name = Some(value),
                        "filename" => part.filename = Some(value),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(part)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_part_is_taken_out_with_its_name_and_type() {
        let body = b"--XyZ\r\n\
            Content-Disposition: form-data; name=\"file\"; filename=\"event.json\"\r\n\
            Content-Type: application/json\r\n\
            \r\n\
            {\"a\":\r\n1}\r\n\
            --XyZ\r\n\
            Content-Disposition: form-data; name=\"note\"\r\n\
            \r\n\
            hello\r\n\
            --XyZ--\r\n";
        let parts = parse("multipart/form-data; boundary=\"XyZ\"", body);
        assert_eq!(
            parts,
            Ok(vec![
                Part {
                    name: Some("file".into()),
                    filename: Some("event.json".into()),
                    content_type: Some("application/json".into()),
                    bytes: b"{\"a\":\r\n1}".to_vec(),
                },
                Part {
                    name: Some("note".into()),
                    filename: None,
                    content_type: None,
                    bytes: b"hello".to_vec(),
                },
            ])
        );
    }

    #[test]
    fn bodies_that_are_not_multipart_are_refused() {
        assert!(parse("application/json", b"{}").is_err());
        assert!(parse("multipart/form-data", b"--a\r\n").is_err());
        assert!(parse("multipart/form-data; boundary=a", b"--a\r\nno blank line").is_err());
    }
}
