//! `multipart/form-data` bodies, encoded to bytes here rather than with
//! reqwest's `multipart::Form`: a `Form` is a one-shot stream that cannot be
//! cloned, while the probe follows redirects itself and must send the same
//! body again on a 307 or 308. Bytes also keep file reads in the probe,
//! where a missing file becomes a `setup` failure.

use super::credential::tracked;
use crate::check::{Part, PartContent};
use crate::fsread;
use crate::probe::context::RunVars;

/// The body's `Content-Type` (with its boundary) and bytes, and whether it
/// holds a credential: a part rendered from one, or any file's contents
/// (what a file holds is not known, so it is not sent where it was not
/// meant to go). Files are read now, when the run needs them.
pub(super) async fn encode(
    parts: &[Part],
    vars: &RunVars,
) -> Result<(String, Vec<u8>, bool), String> {
    let mut contents = Vec::with_capacity(parts.len());
    let mut credential = false;
    for part in parts {
        let bytes = match &part.content {
            PartContent::Text(t) => {
                let (text, from) =
                    tracked(t, vars).map_err(|e| format!("multipart part {:?}: {e}", part.name))?;
                credential |= from;
                text.into_bytes()
            }
            PartContent::File { path, .. } => {
                credential = true;
                fsread::read_async(path.clone(), fsread::UPLOAD_CAP)
                    .await
                    .map_err(|e| {
                        format!(
                            "multipart part {:?}: cannot read {}: {e}",
                            part.name,
                            path.display()
                        )
                    })?
            }
        };
        contents.push(bytes);
    }
    let boundary = boundary(&contents);
    let mut body = Vec::new();
    for (part, bytes) in parts.iter().zip(&contents) {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let name = quoted(&part.name);
        match &part.content {
            PartContent::Text(_) => {
                let head = format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n");
                body.extend_from_slice(head.as_bytes());
            }
            PartContent::File {
                filename,
                content_type,
                ..
            } => {
                let filename = quoted(filename);
                let head = format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
                );
                body.extend_from_slice(head.as_bytes());
            }
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((
        format!("multipart/form-data; boundary={boundary}"),
        body,
        credential,
    ))
}

/// A random boundary that occurs in no part.
fn boundary(contents: &[Vec<u8>]) -> String {
    loop {
        let candidate = format!("scarecrow-{}", uuid::Uuid::new_v4().simple());
        let needle = candidate.as_bytes();
        let clashes = contents
            .iter()
            .any(|c| c.windows(needle.len()).any(|w| w == needle));
        if !clashes {
            return candidate;
        }
    }
}

/// A name or file name inside quotes, escaped as browsers do (WHATWG).
fn quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;

    #[tokio::test]
    async fn text_and_file_parts_are_framed_by_one_boundary() {
        let dir = tempfile::Builder::new()
            .prefix("scarecrow-test-mp-")
            .tempdir()
            .unwrap();
        let file = dir.path().join("a.txt");
        std::fs::write(&file, b"file\x00bytes").unwrap();
        let parts = vec![
            Part {
                name: "no\"te".into(),
                content: PartContent::Text(Template::literal("hello")),
            },
            Part {
                name: "doc".into(),
                content: PartContent::File {
                    path: file,
                    filename: "a.txt".into(),
                    content_type: "text/plain".into(),
                },
            },
        ];
        let (ct, body, credential) = encode(&parts, &RunVars::default()).await.unwrap();
        // A file's contents may be anything: kept to the origin they were for.
        assert!(credential);
        let (_, _, credential) = encode(&parts[..1], &RunVars::default()).await.unwrap();
        assert!(!credential);
        let b = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let expected = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"no%22te\"\r\n\r\nhello\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile\0bytes\r\n\
             --{b}--\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&body), expected);

        let missing = vec![Part {
            name: "doc".into(),
            content: PartContent::File {
                path: dir.path().join("nope.pdf"),
                filename: "nope.pdf".into(),
                content_type: "application/pdf".into(),
            },
        }];
        let err = encode(&missing, &RunVars::default()).await.unwrap_err();
        assert!(
            err.starts_with("multipart part \"doc\": cannot read "),
            "{err}"
        );
    }
}
