//! One prover per job directory: `lock` holds the prover's process id. A lock left by a
//! process that no longer exists (killed, crashed) is taken over.

use crate::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A held job lock, released on drop.
pub struct JobLock {
    path: PathBuf,
}

/// The process holding the job's lock, if it is alive.
pub fn holder(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("lock")).ok()?.trim().parse().ok()?;
    (pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

impl JobLock {
    /// Takes the lock of the job in `dir`.
    pub fn acquire(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("lock");
        if let Some(pid) = holder(dir) {
            return Err(Error::bad_input(dir.display().to_string(), format!("is being proven by process {pid}")));
        }
        let io = |source| Error::io(path.clone(), source);
        let mut f = std::fs::File::create(&path).map_err(io)?;
        write!(f, "{}", std::process::id()).map_err(io)?;
        Ok(Self { path })
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
