//! MISP's answer (status, headers, body) read as the client reads it, for every endpoint:
//! nothing may panic, and the key, planted anywhere in the body, never comes back.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use soar_core::misp::{Endpoint, read_answer};

const KEY: &str = "FuzzMispKey0123456789abcdefghijklmnopqrs";

#[derive(Debug)]
struct Answer<'a> {
    endpoint: Endpoint,
    status: u16,
    headers: Vec<(&'a str, &'a [u8])>,
    /// Where to plant the key in the body, if anywhere.
    key_at: Option<usize>,
    body: &'a [u8],
}

impl<'a> Arbitrary<'a> for Answer<'a> {
    fn arbitrary(input: &mut Unstructured<'a>) -> libfuzzer_sys::arbitrary::Result<Self> {
        let endpoint = *input.choose(&Endpoint::ALL)?;
        let status = match input.int_in_range(0u8..=3)? {
            0 => input.int_in_range(200..=299)?,
            1 => *input.choose(&[301, 302, 400, 401, 403, 404, 405, 429, 500, 502, 503, 504])?,
            2 => input.int_in_range(100..=599)?,
            _ => u16::arbitrary(input)?,
        };
        let header_names = [
            "content-type",
            "retry-after",
            "x-rate-limit-reset",
            "location",
            "x-other",
        ];
        let mut headers = Vec::new();
        for _ in 0..input.int_in_range(0u8..=3)? {
            headers.push((*input.choose(&header_names)?, <&[u8]>::arbitrary(input)?));
        }
        let key_at = Option::<u16>::arbitrary(input)?.map(usize::from);
        let body = input.bytes(input.len())?;
        Ok(Answer {
            endpoint,
            status,
            headers,
            key_at,
            body,
        })
    }
}

fuzz_target!(|answer: Answer<'_>| {
    let mut body = answer.body.to_vec();
    if let Some(at) = answer.key_at {
        let at = at.min(body.len());
        body.splice(at..at, KEY.bytes());
    }
    let shown = match read_answer(answer.endpoint, KEY, answer.status, &answer.headers, &body) {
        Ok(value) => value.to_string(),
        Err(error) => format!("{error} {error:?}"),
    };
    assert!(!shown.contains(KEY), "the key came back: {shown}");
});
