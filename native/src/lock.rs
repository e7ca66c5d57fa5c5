//! Exclusive advisory file locks (`flock(LOCK_EX | LOCK_NB)`), the lock Kafka takes on
//! `<log.dir>/.lock` with `FileChannel.tryLock`. Node has no flock; unlike a pid file, the kernel
//! drops the lock when its holder dies, so a crash never leaves a log dir locked.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, IntoRawFd};

use crate::Fail;

/// Opens (creating, mode 0644) and locks `path`; returns the fd that holds the lock until it is
/// closed or the process exits. The fd is close-on-exec (std opens with O_CLOEXEC), so children
/// never inherit the lock. Fails with `LOCKED` when another open file holds it (another process,
/// or another `lock_file` of the same path in this process), `IO` on any other error.
pub fn lock_file(path: &str) -> Result<i32, Fail> {
    let io = |e: io::Error| Fail::plain("IO", format!("{path}: {e}"));
    // A holder may unlink the file while releasing it: the lock we got would then be on an inode no
    // longer at `path`, so check after locking and retry on the new file.
    for _ in 0..8 {
        let file: File = OpenOptions::new().read(true).write(true).create(true).mode(0o644).open(path).map_err(io)?;
        // SAFETY: flock on an fd we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Fail::plain("LOCKED", format!("{path} is locked by another process")));
            }
            return Err(io(err));
        }
        let held = file.metadata().map_err(io)?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(file.into_raw_fd()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(e)),
        }
    }
    Err(Fail::plain("LOCKED", format!("{path} keeps being replaced while locking it")))
}
