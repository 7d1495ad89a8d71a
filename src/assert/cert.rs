//! `min_cert_days`: how long the certificate a response came with has left.

use chrono::{DateTime, Utc};

/// The leaf certificate an HTTPS response came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The host the certificate was presented for.
    pub host: String,
    pub expires_at: DateTime<Utc>,
    /// When the response came: the days left are counted from here.
    pub seen_at: DateTime<Utc>,
}

impl PeerCertificate {
    /// Whole days until expiry, rounded down (negative once expired).
    pub fn days_left(&self) -> i64 {
        (self.expires_at - self.seen_at)
            .num_seconds()
            .div_euclid(86_400)
    }
}

/// Judges "more than `min` days left"; the error is the message a user reads.
pub(super) fn more_than_days(cert: Option<&PeerCertificate>, min: u32) -> Result<(), String> {
    let Some(cert) = cert else {
        return Err(format!(
            "expected a certificate valid for more than {min} days, but the response came over plain HTTP"
        ));
    };
    let days = cert.days_left();
    if days > i64::from(min) {
        return Ok(());
    }
    let (host, date) = (&cert.host, cert.expires_at.format("%Y-%m-%d"));
    Err(match days {
        ..0 => {
            format!("certificate of {host} expired on {date}, expected more than {min} days left")
        }
        0 => format!(
            "certificate of {host} expires in less than a day ({date}), expected more than {min}"
        ),
        1 => format!("certificate of {host} expires in 1 day ({date}), expected more than {min}"),
        n => {
            format!("certificate of {host} expires in {n} days ({date}), expected more than {min}")
        }
    })
}

/// What the certificate showed, for a failure's `actual`: the days left and
/// the expiry date.
pub(super) fn left(cert: &PeerCertificate) -> String {
    let date = cert.expires_at.format("%Y-%m-%d");
    format!("{} days left (expires {date})", cert.days_left())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(expires: &str) -> PeerCertificate {
        PeerCertificate {
            host: "shop.example.org".into(),
            expires_at: expires.parse().unwrap(),
            seen_at: "2026-11-25T12:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn days_left_round_down() {
        assert_eq!(cert("2026-12-04T23:00:00Z").days_left(), 9);
        assert_eq!(cert("2026-11-25T13:00:00Z").days_left(), 0);
        assert_eq!(cert("2026-11-25T11:00:00Z").days_left(), -1);
    }

    #[test]
    fn messages_name_host_days_and_date() {
        assert_eq!(
            more_than_days(Some(&cert("2026-12-04T23:00:00Z")), 14).unwrap_err(),
            "certificate of shop.example.org expires in 9 days (2026-12-04), expected more than 14"
        );
        assert!(more_than_days(Some(&cert("2026-12-10T13:00:00Z")), 14).is_ok());
        assert!(more_than_days(Some(&cert("2026-12-09T13:00:00Z")), 14).is_err());
        assert_eq!(
            more_than_days(Some(&cert("2026-11-01T00:00:00Z")), 14).unwrap_err(),
            "certificate of shop.example.org expired on 2026-11-01, expected more than 14 days left"
        );
        assert!(more_than_days(None, 14).unwrap_err().contains("plain HTTP"));
    }
}
