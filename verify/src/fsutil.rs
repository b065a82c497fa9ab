//! File helpers: reads that name the file in their error, and crash-safe writes.

use crate::error::Error;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads a whole file.
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the
/// directory. With `secret`, the file is created readable by its owner only.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Error> {
    write_atomic_with(path, secret, |f| f.write_all(bytes)).map(|_| ())
}

/// [`write_atomic`] of what `write` streams into the (buffered) temporary file, returning
/// what it returned: a large artifact is never held in memory whole.
pub fn write_atomic_with<R>(
    path: &Path,
    secret: bool,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<R>,
) -> Result<R, Error> {
    let io = |source| Error::Io { path: path.into(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Unique per process and call: concurrent writers never share a temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp{}-{n}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if secret {
            options.mode(0o600);
        }
    }
    let written = options.open(&tmp).and_then(|f| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        let r = write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(r)
    });
    let r = match written {
        Ok(r) => r,
        Err(e) => {
            // Leave no partial temporary file behind (a full disk, a read-only directory).
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
    };
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Durability of the rename; not every platform can fsync a directory.
        let _ = d.sync_all();
    }
    Ok(r)
}

/// Creates a directory (and its parents) that only its owner can read or write.
pub fn create_private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.into(), source })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|source| Error::Io { path: dir.into(), source })?;
    }
    Ok(())
}
