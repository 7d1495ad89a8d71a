//! A certificate's SHA-256 digest, as `pin_sha256` names a trusted one.

use std::fmt;

/// The SHA-256 of a certificate's DER. Shown as `openssl x509 -fingerprint
/// -sha256` prints it (`AB:CD:…`), so a pin can be compared by eye.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertDigest(pub [u8; 32]);

impl CertDigest {
    /// Reads a fingerprint as openssl prints it; colons and case are
    /// optional (`abcd…` as well as `AB:CD:…`).
    pub fn parse(text: &str) -> Option<CertDigest> {
        let hex: Vec<u8> = text.bytes().filter(|&b| b != b':').collect();
        // Digits only: `from_str_radix` would also take a sign.
        if hex.len() != 64 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(CertDigest(digest))
    }
}

impl fmt::Display for CertDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_as_openssl_prints_them_and_without_colons() {
        let openssl = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
        let digest = CertDigest::parse(openssl).unwrap();
        assert_eq!(digest.to_string(), openssl);
        let plain = openssl.replace(':', "").to_lowercase();
        assert_eq!(CertDigest::parse(&plain), Some(digest));
        for bad in [
            "",
            "AB:CD",
            &format!("{plain}00"),
            &plain.replace('a', "g"),
            "+b".repeat(32).as_str(),
        ] {
            assert_eq!(CertDigest::parse(bad), None, "{bad}");
        }
    }
}
