//! The property redaction promises: a secret of at least [`MIN_LEN`] bytes,
//! in any encoding listed in the module's documentation, embedded in any
//! text, leaves neither that encoding nor the secret itself in the
//! redacted text.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use proptest::sample::select;

use super::{MIN_LEN, Redactor, base64_forms};
use crate::text::EscapeHtml;

/// Characters each encoding treats differently: escapes of every kind,
/// a space and `+`, Latin-1, and beyond the Basic Multilingual Plane.
const SECRET: &[char] = &[
    'a', 'Z', '7', '-', '_', ' ', '+', '%', '&', ';', '#', '<', '>', '"', '\'', '/', '\\', '=',
    'é', '\u{a0}', 'ß', '€', '😀',
];

/// Text around a secret, with the bytes escapes start at.
const AROUND: &[char] = &[
    'x', 'Q', '0', ' ', '%', '&', '\\', '+', ';', '#', '=', '"', '<', '\n', 'ü',
];

/// The encodings, by number, and how many there are.
const ENCODINGS: usize = 15;

fn text(alphabet: &'static [char], len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    proptest::collection::vec(select(alphabet), len).prop_map(|c| c.into_iter().collect())
}

fn percent(s: &[u8], upper: bool) -> String {
    s.iter()
        .map(|b| {
            if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

fn json_all(s: &str, upper: bool) -> String {
    s.encode_utf16()
        .map(|u| {
            if upper {
                format!("\\u{u:04X}")
            } else {
                format!("\\u{u:04x}")
            }
        })
        .collect()
}

fn html_named(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            '\u{a0}' => "&nbsp;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The secret as it is tested (Latin-1 only when the encoding needs it),
/// and the text holding it in encoding `which`.
fn embed(
    which: usize,
    upper: bool,
    secret: &str,
    pad: &[u8],
    before: &str,
    after: &str,
) -> (String, String) {
    let latin1: String = secret
        .chars()
        .map(|c| if u32::from(c) <= 0xFF { c } else { 'L' })
        .collect();
    let secret = if which == 4 {
        latin1
    } else {
        secret.to_owned()
    };
    let encoded = match which {
        0 => secret.clone(),
        1 => form(&secret),
        2 => form(&secret).replace('+', "%20"),
        3 => percent(secret.as_bytes(), upper),
        4 => {
            let bytes: Vec<u8> = secret
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect();
            percent(&bytes, upper)
        }
        5 => serde_json::to_string(&secret).unwrap_or_default(),
        6 => json_all(&secret, upper),
        7 => serde_json::to_string(&secret)
            .unwrap_or_default()
            .replace('/', "\\/"),
        8 => EscapeHtml(&secret).to_string(),
        9 => html_named(&secret),
        10 => secret
            .chars()
            .map(|c| format!("&#{};", u32::from(c)))
            .collect(),
        11 => secret
            .chars()
            .map(|c| {
                if upper {
                    format!("&#X{:X};", u32::from(c))
                } else {
                    format!("&#x{:x};", u32::from(c))
                }
            })
            .collect(),
        12 => form(&html_named(&json_all(&secret, upper))),
        13 | 14 => {
            let mut bytes = pad.to_vec();
            bytes.extend_from_slice(secret.as_bytes());
            bytes.extend_from_slice(pad);
            if which == 13 {
                STANDARD.encode(&bytes)
            } else {
                URL_SAFE_NO_PAD.encode(&bytes)
            }
        }
        _ => unreachable!("ENCODINGS bounds the strategy"),
    };
    (secret, format!("{before} {encoded} {after}"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_listed_encoding_of_a_secret_survives(
        secret in text(SECRET, 8..24),
        which in 0..ENCODINGS,
        upper in any::<bool>(),
        pad in proptest::collection::vec(any::<u8>(), 0..5),
        before in text(AROUND, 0..40),
        after in text(AROUND, 0..40),
    ) {
        let (secret, text) = embed(which, upper, &secret, &pad, &before, &after);
        prop_assume!(secret.len() >= MIN_LEN);
        let r = Redactor::default();
        r.add(&secret);
        let out = r.redact(&text);
        prop_assert!(!out.contains(&secret), "the secret survives in {out:?}");
        let (_, alone) = embed(which, upper, &secret, &[], "", "");
        let alone = alone.trim();
        if which < 13 {
            prop_assert!(!out.contains(alone), "{alone:?} survives in {out:?}");
        } else {
            for form in base64_forms(secret.as_bytes()) {
                prop_assert!(!out.contains(&form), "{form:?} survives in {out:?}");
            }
        }
    }
}
