//! One prover per job directory (or per shard): `lock` holds the prover's process id and
//! host name. A lock left by a process that no longer exists (killed, crashed) is taken
//! over. A lock written on another host (a shard requeued onto another machine of a
//! cluster, over shared storage) cannot be checked from here; the scheduler runs one task
//! per shard, so it is taken over too — never mistaken for a live local process that
//! happens to have the same id.

use crate::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A held job lock, released on drop.
pub struct JobLock {
    path: PathBuf,
}

/// This machine's host name (empty when unknown).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// The process holding the job's lock, if it is alive on this host.
pub fn holder(dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join("lock")).ok()?;
    let mut fields = text.split_whitespace();
    let pid: u32 = fields.next()?.parse().ok()?;
    // a lock without a host is from a version that wrote only the process id
    let here = fields.next().is_none_or(|h| h == host());
    (here && pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
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
        write!(f, "{} {}", std::process::id(), host()).map_err(io)?;
        Ok(Self { path })
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_process_on_this_host_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let parent = std::os::unix::process::parent_id(); // alive, and not this process
        let write = |text: String| std::fs::write(dir.path().join("lock"), text).unwrap();
        write(format!("{parent} {}", host()));
        assert_eq!(holder(dir.path()), Some(parent));
        write(format!("{parent}"));
        assert_eq!(holder(dir.path()), Some(parent), "an old lock without a host is local");
        write(format!("{parent} another-host-{}", host()));
        assert_eq!(holder(dir.path()), None, "a lock from another machine is not this machine's process");
        write(format!("{} {}", u32::MAX - 1, host()));
        assert_eq!(holder(dir.path()), None, "a dead process holds nothing");
        let lock = JobLock::acquire(dir.path()).unwrap();
        assert_eq!(holder(dir.path()), None, "this process's own lock does not block it");
        drop(lock);
        assert!(!dir.path().join("lock").exists());
    }
}
