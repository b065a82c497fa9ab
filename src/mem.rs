//! Peak memory of this process, and the memory this machine (or its container) has left.

/// Peak resident set size in bytes (`VmHWM` on Linux), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Memory available to a new allocation, in bytes: the kernel's `MemAvailable`, or less
/// when a cgroup v2 limit (a container's, a Slurm job's) leaves less; `None` when unknown.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let machine = line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024;
    let cgroup = |f: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{f}")).ok()?.trim().parse::<u64>().ok();
    let left = cgroup("memory.max").map(|max| max.saturating_sub(cgroup("memory.current").unwrap_or(0)));
    Some(left.map_or(machine, |l| l.min(machine)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn available_memory_is_read_and_below_the_total() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let total = meminfo.lines().find(|l| l.starts_with("MemTotal:")).unwrap();
        let total: u64 = total.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024;
        let available = super::available_bytes().expect("known on Linux");
        assert!(available > 0 && available <= total, "{available} of {total}");
    }
}
