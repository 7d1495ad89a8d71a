//! A response body: read within its size limit, then decoded to text.

use http::header::HeaderValue;

use crate::check::Reason;
use crate::check::words::human_size;

use super::classify::classify;
use crate::probe::attempt::StepFailure;

/// Reads the (decompressed) body chunk by chunk, giving up as soon as it
/// exceeds `max` bytes rather than reading the rest.
pub(super) async fn read(
    response: &mut reqwest::Response,
    max: u64,
    url: &str,
) -> Result<Vec<u8>, StepFailure> {
    // Content-Length is only a hint (and absent when decompressing).
    let hint = response.content_length().unwrap_or(0).min(max).min(1 << 20);
    let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    loop {
        let chunk = response.chunk().await.map_err(|e| {
            let (reason, message) = classify(&e, url);
            StepFailure {
                reason,
                message: format!("reading the body: {message}"),
            }
        })?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if (body.len() + chunk.len()) as u64 > max {
            return Err(StepFailure {
                reason: Reason::BodyTooLarge,
                message: format!("response body exceeds max_body_size {}", human_size(max)),
            });
        }
        body.extend_from_slice(&chunk);
    }
}

/// The body as text, per the charset of its Content-Type (UTF-8 by
/// default, a byte-order mark wins). Malformed bytes become U+FFFD rather
/// than failing the run.
pub(super) fn decode(body: &[u8], content_type: Option<&HeaderValue>) -> String {
    let encoding = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(charset)
        .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode(body).0.into_owned()
}

fn charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_labels_are_found_and_honoured() {
        assert_eq!(
            charset("text/html; Charset=\"ISO-8859-1\""),
            Some("ISO-8859-1")
        );
        assert_eq!(charset("text/html"), None);
        let latin1 = HeaderValue::from_static("text/plain; charset=iso-8859-1");
        assert_eq!(decode(b"K\xf6ln", Some(&latin1)), "Köln");
        assert_eq!(decode(b"K\xf6ln", None), "K\u{fffd}ln");
        let unknown = HeaderValue::from_static("text/plain; charset=klingon");
        assert_eq!(decode("Köln".as_bytes(), Some(&unknown)), "Köln");
    }
}
