//! The decoded view of a text that redaction matches in: one layer of one
//! encoding undone — URL-encoding (`%XX` in either case, `+` as a space or
//! not), JSON string escapes (`\uXXXX` with surrogate pairs, `\/`, `\"` …)
//! or HTML character references (named, decimal, hex) — each decoded byte
//! remembering the span of the original text it came from. The view is only
//! ever matched in, never shown: a match is replaced in the original text.
//!
//! A layer undoes one encoding, not all at once, as an encoder writes one:
//! an HTML-escaped secret holding `\/` must not have that decoded too.

/// One decoded layer: its bytes and, per byte, the span of the original
/// text it stands for.
pub(super) struct View {
    pub bytes: Vec<u8>,
    start: Vec<usize>,
    end: Vec<usize>,
}

impl View {
    /// The span of the original text that `bytes[from..to]` stands for.
    pub fn origin(&self, from: usize, to: usize) -> (usize, usize) {
        (self.start[from], self.end[to - 1])
    }

    /// The next layer down, or `None` when there is nothing to decode.
    pub fn decode(&self, encoding: Encoding) -> Option<View> {
        decode(&self.bytes, Some(self), encoding)
    }
}

/// One encoding a layer undoes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Encoding {
    /// `plus`: whether `+` stands for a space (form encoding).
    Url {
        plus: bool,
    },
    Json,
    Html,
}

impl Encoding {
    /// The byte every escape of this encoding starts with (the first).
    fn starts(self) -> &'static [u8] {
        match self {
            Encoding::Url { plus: true } => b"%+",
            Encoding::Url { plus: false } => b"%",
            Encoding::Json => b"\\",
            Encoding::Html => b"&",
        }
    }
}

/// The first layer of `text` in `encoding`, or `None` when nothing in it
/// decodes.
pub(super) fn first(text: &[u8], encoding: Encoding) -> Option<View> {
    decode(text, None, encoding)
}

fn decode(src: &[u8], parent: Option<&View>, encoding: Encoding) -> Option<View> {
    if !src.iter().any(|b| encoding.starts().contains(b)) {
        return None;
    }
    let origin = |from: usize, to: usize| match parent {
        Some(p) => p.origin(from, to),
        None => (from, to),
    };
    let mut view = View {
        bytes: Vec::with_capacity(src.len()),
        start: Vec::with_capacity(src.len()),
        end: Vec::with_capacity(src.len()),
    };
    let mut changed = false;
    let mut i = 0;
    let mut utf8 = [0; 4];
    while i < src.len() {
        let (out, len): (&[u8], usize) = match escape(&src[i..], encoding, &mut utf8) {
            Some((out, len)) => {
                changed = true;
                (out, len)
            }
            None => (&src[i..=i], 1),
        };
        let (start, end) = origin(i, i + len);
        for &b in out {
            view.bytes.push(b);
            view.start.push(start);
            view.end.push(end);
        }
        i += len;
    }
    changed.then_some(view)
}

/// The bytes an escape at the start of `s` stands for and its length.
fn escape<'b>(s: &[u8], encoding: Encoding, buf: &'b mut [u8; 4]) -> Option<(&'b [u8], usize)> {
    let (c, len) = match (s.first()?, encoding) {
        (b'%', Encoding::Url { .. }) => {
            let byte = hex(s.get(1..3)?)?;
            buf[0] = u8::try_from(byte).ok()?;
            return Some((&buf[..1], 3));
        }
        (b'+', Encoding::Url { plus: true }) => (' ', 1),
        (b'\\', Encoding::Json) => json(s)?,
        (b'&', Encoding::Html) => entity(s)?,
        _ => return None,
    };
    Some((c.encode_utf8(buf).as_bytes(), len))
}

/// A JSON string escape (and `\'`, which JavaScript writes).
fn json(s: &[u8]) -> Option<(char, usize)> {
    let c = match s.get(1)? {
        b'u' => {
            let high = hex(s.get(2..6)?)?;
            if (0xD800..0xDC00).contains(&high) {
                let low = match s.get(6..8)? {
                    b"\\u" => hex(s.get(8..12)?)?,
                    _ => return None,
                };
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                let c = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return Some((char::from_u32(c)?, 12));
            }
            return Some((char::from_u32(high)?, 6));
        }
        b'/' => '/',
        b'"' => '"',
        b'\'' => '\'',
        b'\\' => '\\',
        b'n' => '\n',
        b't' => '\t',
        b'r' => '\r',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        _ => return None,
    };
    Some((c, 2))
}

/// An HTML character reference, `;` required.
fn entity(s: &[u8]) -> Option<(char, usize)> {
    let semi = s.iter().take(10).position(|&b| b == b';')?;
    let name = &s[1..semi];
    let c = match name {
        b"amp" => '&',
        b"lt" => '<',
        b"gt" => '>',
        b"quot" => '"',
        b"apos" => '\'',
        b"nbsp" => '\u{a0}',
        [b'#', b'x' | b'X', digits @ ..] => char::from_u32(hex(digits)?)?,
        [b'#', digits @ ..] if !digits.is_empty() => {
            char::from_u32(std::str::from_utf8(digits).ok()?.parse().ok()?)?
        }
        _ => return None,
    };
    Some((c, semi + 1))
}

/// `digits` as hexadecimal, either case; `None` unless all are hex digits.
fn hex(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 6 {
        return None;
    }
    digits.iter().try_fold(0, |n, &b| {
        let d = char::from(b).to_digit(16)?;
        Some(n * 16 + d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: Encoding = Encoding::Url { plus: false };
    const FORM: Encoding = Encoding::Url { plus: true };

    fn once(s: &str, encoding: Encoding) -> String {
        let bytes = first(s.as_bytes(), encoding).map_or(s.as_bytes().to_vec(), |v| v.bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn each_escape_decodes_in_its_own_encoding_only() {
        assert_eq!(once("a%2fb%2Fc+d&amp;", FORM), "a/b/c d&amp;");
        assert_eq!(once("a+b%41", URL), "a+bA");
        assert_eq!(once(r#"\u0041\/\"\\\n%41"#, Encoding::Json), "A/\"\\\n%41");
        assert_eq!(once(r"\ud83d\ude00", Encoding::Json), "😀");
        assert_eq!(once(r"\ud83d lone", Encoding::Json), r"\ud83d lone");
        assert_eq!(
            once(
                r"&amp;&lt;&gt;&quot;&apos;&nbsp;&#39;&#x27;&#X41;\/",
                Encoding::Html
            ),
            "&<>\"'\u{a0}''A\\/"
        );
        assert_eq!(once("&bogus; & &#;", Encoding::Html), "&bogus; & &#;");
        assert_eq!(once("%zz %4", URL), "%zz %4");
        assert_eq!(first(b"%E9", URL).map(|v| v.bytes), Some(vec![0xE9]));
    }

    #[test]
    fn each_byte_knows_its_original_span() {
        let view = first(b"x&amp;&#65;", Encoding::Html).expect("decodes");
        assert_eq!(view.bytes, b"x&A");
        assert_eq!(view.origin(1, 2), (1, 6));
        assert_eq!(view.origin(2, 3), (6, 11));
        let json = first(br"\u00e9!", Encoding::Json).expect("decodes");
        assert_eq!(json.origin(0, 2), (0, 6));
        let nested = first(b"%2541", URL).expect("decodes");
        let inner = nested.decode(URL).expect("decodes again");
        assert_eq!(inner.bytes, b"A");
        assert_eq!(inner.origin(0, 1), (0, 5));
    }
}
