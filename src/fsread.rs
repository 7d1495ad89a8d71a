//! Reading the files that check files and the config name: `${file:…}`
//! secrets, `[tls]` PEM files, multipart uploads; and `config.toml` and the
//! check files themselves.
//!
//! Such a path may name anything. A FIFO blocks its reader until someone
//! writes to it; a device such as `/dev/zero` never ends; `/proc/self/environ`
//! holds the daemon's own secrets. So a file is opened without blocking
//! (`O_NONBLOCK`), judged by its open handle (`fstat`, so nothing can swap the
//! path between the check and the read), read only when it is a regular file
//! outside `/proc`, `/sys` and `/dev` (after resolving symlinks, at every
//! read), and never beyond a size cap. Inside a tokio runtime the read leaves
//! the async workers, which keep serving while a slow disk answers.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The cap of secrets, PEM files, `config.toml` and check files: far above
/// any token, password, CA bundle (the Mozilla bundle is about 220 KiB) or
/// check file a team writes.
pub const SMALL_FILE_CAP: u64 = 1 << 20;

/// The cap of a file a multipart part uploads.
pub const UPLOAD_CAP: u64 = 16 << 20;

/// Directories whose files are devices or kernel state, never settings.
const REFUSED_ROOTS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Why a file was not read. The message does not repeat the path: callers
/// name the file in their own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The operating system's answer: missing, no permission …
    #[error("{0}")]
    Io(String),
    #[error("{0}, not a regular file")]
    NotRegular(&'static str),
    #[error("{} is under {root}: device and kernel files are not read", .path.display())]
    Refused { path: PathBuf, root: &'static str },
    #[error("larger than {}", Size(*.0))]
    TooLarge(u64),
    #[error("not valid UTF-8")]
    NotUtf8,
}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> FileError {
        FileError::Io(e.to_string())
    }
}

/// The bytes of the regular file at `path`, at most `cap` of them.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    off_workers(|| read_here(path, cap))
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, cap: u64) -> Result<String, FileError> {
    String::from_utf8(read(path, cap)?).map_err(|_| FileError::NotUtf8)
}

/// [`read`] on tokio's blocking pool.
pub async fn read_async(path: PathBuf, cap: u64) -> Result<Vec<u8>, FileError> {
    tokio::task::spawn_blocking(move || read_here(&path, cap))
        .await
        .map_err(|e| FileError::Io(format!("the read did not finish: {e}")))?
}

/// Runs `f` where blocking is allowed. On a worker of a multi-threaded
/// runtime the worker hands its other tasks to a new thread first; a
/// single-threaded runtime (tests, tools) and plain threads run it as is.
fn off_workers<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn read_here(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let real = std::fs::canonicalize(path)?;
    if let Some(root) = REFUSED_ROOTS.into_iter().find(|r| real.starts_with(r)) {
        return Err(FileError::Refused { path: real, root });
    }
    // O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise.
    // O_NOFOLLOW: the last component was just resolved; a symlink there now
    // was put there since.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&real)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(FileError::NotRegular(what));
    }
    if meta.len() > cap {
        return Err(FileError::TooLarge(cap));
    }
    capped(file, cap)
}

/// Reads one byte past `cap`, so a file that grew since `fstat` is caught.
fn capped(file: File, cap: u64) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(FileError::TooLarge(cap));
    }
    Ok(bytes)
}

/// A cap in words: `1 MiB`, `16 MiB`, `4096 bytes`.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n {
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{} MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{} KiB", n >> 10),
            n => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("scarecrow-test-fsread-")
            .tempdir()
            .unwrap()
    }

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let d = dir();
        let path = d.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_to_string(&path, 7).unwrap(), "s3cret\n");
        assert_eq!(read(&path, 6), Err(FileError::TooLarge(6)));
        assert_eq!(
            FileError::TooLarge(1 << 20).to_string(),
            "larger than 1 MiB"
        );
        // A file that grows past the cap after `fstat` is still cut there.
        let file = File::open(&path).unwrap();
        assert_eq!(capped(file, 3), Err(FileError::TooLarge(3)));

        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(read_to_string(&path, 7), Err(FileError::NotUtf8));
        let missing = read(&d.path().join("nope"), 7).unwrap_err();
        assert!(missing.to_string().contains("No such file"), "{missing}");
    }

    #[test]
    fn special_files_and_kernel_paths_are_refused() {
        let d = dir();
        assert_eq!(read(d.path(), 7), Err(FileError::NotRegular("a directory")));
        let fifo = d.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(read(&fifo, 7), Err(FileError::NotRegular("a FIFO")));
        assert_eq!(
            read(Path::new("/dev/zero"), 7).unwrap_err().to_string(),
            "/dev/zero is under /dev: device and kernel files are not read"
        );
        // A symlink is judged by what it points to.
        let link = d.path().join("environ");
        std::os::unix::fs::symlink("/proc/self/environ", &link).unwrap();
        assert!(matches!(
            read(&link, 7),
            Err(FileError::Refused { root: "/proc", .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn reads_work_on_a_runtime_worker_and_on_the_blocking_pool() {
        let d = dir();
        let path = d.path().join("a");
        std::fs::write(&path, "x").unwrap();
        assert_eq!(read(&path, 7).unwrap(), b"x");
        assert_eq!(read_async(path, 7).await.unwrap(), b"x");
    }
}
