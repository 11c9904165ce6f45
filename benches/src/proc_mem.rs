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

/// Memory over a phase, sampled once per step of it (a page) or every few milliseconds by
/// [`Phase::sampled`]: the growth of anonymous resident memory (the heap: what the phase holds;
/// `RssAnon`) at its highest sample, and the growth of the peak resident set (`VmHWM`, reset at the
/// start through `/proc/self/clear_refs`; it also counts SQLite's page cache and the pages of the
/// database file mapped in, which grow with the data read). Linux only.
pub struct Phase {
    start: Mem,
    anon_peak: std::sync::atomic::AtomicU64,
}

impl Phase {
    pub fn start() -> Phase {
        // "5" resets the peak resident set size to the current one (proc(5)).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let start = Mem::of("self").unwrap_or_default();
        Phase {
            start,
            anon_peak: start.anon.into(),
        }
    }

    pub fn sample(&self) {
        let anon = Mem::of("self").unwrap_or_default().anon;
        self.anon_peak.fetch_max(anon, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs `f` while a thread samples every `every`; then the phase's growth, as [`Phase::growth`].
    pub fn sampled<T>(every: std::time::Duration, f: impl FnOnce() -> T) -> (T, (f64, f64)) {
        let phase = Phase::start();
        let done = std::sync::atomic::AtomicBool::new(false);
        let out = std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    phase.sample();
                    std::thread::sleep(every);
                }
            });
            let out = f();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            out
        });
        (out, phase.growth())
    }

    /// (anonymous growth at the highest sample, peak resident growth), in MiB.
    pub fn growth(self) -> (f64, f64) {
        self.sample();
        let peak = Mem::of("self").unwrap_or_default().peak;
        (
            Mem::mib(self.anon_peak.into_inner().saturating_sub(self.start.anon)),
            Mem::mib(peak.saturating_sub(self.start.rss)),
        )
    }
}
