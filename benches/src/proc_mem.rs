//! A process's memory from `/proc/<pid>/status` (Linux), shared by the harness and the load
//! benchmark (each reads the parts it reports).
#![allow(dead_code)]

/// Memory in KiB: resident set (`VmRSS`), its peak (`VmHWM`), and its parts: anonymous memory (heap,
/// stacks, SQLite page caches) and file-backed pages (the binary and the database pages SQLite reads
/// through `mmap`, which count as resident while mapped).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss: u64,
    pub peak: u64,
    pub anon: u64,
    pub file: u64,
}

impl Mem {
    /// The memory of process `pid` (`"self"`: this one); `None` where `/proc` does not say.
    pub fn of(pid: &str) -> Option<Mem> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Some(Mem {
            rss: field("VmRSS:")?,
            peak: field("VmHWM:")?,
            anon: field("RssAnon:").unwrap_or(0),
            file: field("RssFile:").unwrap_or(0) + field("RssShmem:").unwrap_or(0),
        })
    }

    pub fn mib(kib: u64) -> f64 {
        kib as f64 / 1024.0
    }
}
