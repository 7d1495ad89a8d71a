//! The decoded view of a text that redaction matches in: one layer of
//! URL-encoding (`%XX` in either case, `+` optionally as a space), JSON
//! string escapes (`\uXXXX` with surrogate pairs, `\/`, `\"` …) and HTML
//! character references (named, decimal, hex) undone, each decoded byte
//! remembering the span of the original text it came from. The view is only
//! ever matched in, never shown: a match is replaced in the original text.

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

    /// The next layer down, or `None` when there is nothing left to decode.
    pub fn decode(&self, plus: bool) -> Option<View> {
        decode(&self.bytes, Some(self), plus)
    }
}

/// Whether `text` holds a byte any decoding here starts at.
pub(super) fn may_decode(text: &[u8]) -> bool {
    text.iter().any(|b| matches!(b, b'%' | b'+' | b'\\' | b'&'))
}

/// The first layer of `text`, or `None` when nothing in it decodes.
/// `plus`: whether `+` stands for a space (form encoding).
pub(super) fn first(text: &[u8], plus: bool) -> Option<View> {
    decode(text, None, plus)
}

fn decode(src: &[u8], parent: Option<&View>, plus: bool) -> Option<View> {
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
        let (out, len): (&[u8], usize) = match escape(&src[i..], plus, &mut utf8) {
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
fn escape<'b>(s: &[u8], plus: bool, buf: &'b mut [u8; 4]) -> Option<(&'b [u8], usize)> {
    let (c, len) = match s.first()? {
        b'%' => {
            let byte = hex(s.get(1..3)?)?;
            buf[0] = u8::try_from(byte).ok()?;
            return Some((&buf[..1], 3));
        }
        b'+' if plus => (' ', 1),
        b'\\' => json(s)?,
        b'&' => entity(s)?,
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

    fn once(s: &str, plus: bool) -> String {
        String::from_utf8_lossy(
            &first(s.as_bytes(), plus).map_or(s.as_bytes().to_vec(), |v| v.bytes),
        )
        .into_owned()
    }

    #[test]
    fn each_escape_decodes() {
        assert_eq!(once("a%2fb%2Fc+d", true), "a/b/c d");
        assert_eq!(once("a+b", false), "a+b");
        assert_eq!(once(r#"\u0041\/\"\\\n"#, false), "A/\"\\\n");
        assert_eq!(once(r"\ud83d\ude00", false), "😀");
        assert_eq!(once(r"\ud83d lone", false), r"\ud83d lone");
        assert_eq!(
            once("&amp;&lt;&gt;&quot;&apos;&nbsp;&#39;&#x27;&#X41;", false),
            "&<>\"'\u{a0}''A"
        );
        assert_eq!(once("&bogus; & &#; %zz %4", false), "&bogus; & &#; %zz %4");
        assert_eq!(first(b"%E9", false).map(|v| v.bytes), Some(vec![0xE9]));
    }

    #[test]
    fn each_byte_knows_its_original_span() {
        let text = "x&amp;%41\\u00e9";
        let view = first(text.as_bytes(), false).expect("decodes");
        assert_eq!(view.bytes, "x&Aé".as_bytes());
        assert_eq!(view.origin(1, 2), (1, 6));
        assert_eq!(view.origin(2, 3), (6, 9));
        assert_eq!(view.origin(3, 5), (9, 15));
        let nested = first(b"%2541", false).expect("decodes");
        let inner = nested.decode(false).expect("decodes again");
        assert_eq!(inner.bytes, b"A");
        assert_eq!(inner.origin(0, 1), (0, 5));
    }
}
