//! Progress of long work (an import, a re-score, an export, a demo load) for the faces to show: a
//! callback the core calls once per batch with monotonic counts, so reporting costs nothing
//! measurable. The core decides what is counted and when; a face only draws (the CLI a progress bar,
//! Python a callback or a tqdm bar).
//!
//! ```
//! use crm_core::progress::{Progress, Step, Unit};
//! use std::sync::{Arc, Mutex};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = seen.clone();
//! let progress = Progress::new(move |s: Step| sink.lock().unwrap().push(s.done));
//! progress.report(10, Some(30), Unit::Records);
//! progress.report(30, Some(30), Unit::Records);
//! assert_eq!(*seen.lock().unwrap(), vec![10, 30]);
//! assert!(Progress::none().is_none());
//! ```

use std::fmt;
use std::sync::Arc;

/// What the counts of a [`Step`] count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of input read (an import whose input size is known).
    Bytes,
    /// Rows or records handled (an import of unknown size, a re-score, an export, a demo load).
    Records,
}

impl Unit {
    /// `"bytes"` or `"records"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Records => "records",
        }
    }
}

/// One report: `done` of `total` (`None` when the total is not known in advance). Within one
/// operation `done` never decreases, never exceeds a known `total`, and the last report has
/// `done == total` when the operation succeeded (an operation of unknown size ends with
/// `total: Some(done)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub done: u64,
    pub total: Option<u64>,
    pub unit: Unit,
}

type Callback = dyn Fn(Step) + Send + Sync;

/// A progress callback, or none (the default: nothing is reported). Cheap to clone.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<Callback>>);

impl Progress {
    /// Reports to `f`. It is called on the thread doing the work, once per batch: keep it quick.
    pub fn new(f: impl Fn(Step) + Send + Sync + 'static) -> Self {
        Progress(Some(Arc::new(f)))
    }

    /// No reporting.
    pub fn none() -> Self {
        Progress(None)
    }

    /// Whether nothing is reported.
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// Calls the callback, if any.
    pub fn report(&self, done: u64, total: Option<u64>, unit: Unit) {
        if let Some(f) = &self.0 {
            f(Step { done, total, unit });
        }
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(callback)"
        } else {
            "Progress(none)"
        })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::sync::Mutex;

    /// A progress callback that records every step, and the check every operation's reports pass.
    pub(crate) fn recorder() -> (Progress, Arc<Mutex<Vec<Step>>>) {
        let steps = Arc::new(Mutex::new(Vec::new()));
        let sink = steps.clone();
        (Progress::new(move |s| sink.lock().unwrap().push(s)), steps)
    }

    /// Monotonic `done`, never above a known total, the last step at its total; returns the last.
    pub(crate) fn assert_monotonic(steps: &[Step]) -> Step {
        assert!(!steps.is_empty(), "no progress reported");
        for w in steps.windows(2) {
            assert!(w[1].done >= w[0].done, "progress went back: {w:?}");
            assert_eq!(w[0].unit, w[1].unit, "unit changed: {w:?}");
        }
        for s in steps {
            if let Some(t) = s.total {
                assert!(s.done <= t, "done above total: {s:?}");
            }
        }
        let last = *steps.last().unwrap();
        assert_eq!(
            Some(last.done),
            last.total,
            "the last report is not at its total: {last:?}"
        );
        last
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{assert_monotonic, recorder};
    use super::*;
    use crate::access::Actor;
    use crate::clock::{FixedClock, SeqIds};
    use crate::demo::{DemoSize, load_with};
    use crate::memory::MemoryStore;
    use crate::service::{ExportOptions, ImportMode, ImportOptions, Service};
    use crate::value::Timestamp;

    #[test]
    fn long_operations_report_monotonic_progress_ending_at_the_total() {
        let store = Arc::new(MemoryStore::new());
        let now = Timestamp::parse("2025-06-01T00:00:00Z").unwrap();
        let size = DemoSize {
            contacts: 150,
            leads: 250,
            activities_per_lead: 1,
        };
        let (progress, steps) = recorder();
        let demo = pollster::block_on(load_with(
            store.clone(),
            Arc::new(SeqIds::default()),
            now,
            size,
            &progress,
        ))
        .unwrap();
        let demo_steps = steps.lock().unwrap().clone();
        assert_eq!(assert_monotonic(&demo_steps).done, 400);
        assert_eq!(
            demo_steps.iter().map(|s| s.done).collect::<Vec<_>>(),
            [100, 200, 300, 400, 400]
        );

        let svc = Service::new(store, Arc::new(FixedClock::new(now)), Arc::new(SeqIds::default()));
        let admin = Actor::system(demo.tenant);
        // 4,500 rows: three chunks of the import, then three pages of the export.
        let mut csv = String::from("first_name,source\n");
        for i in 0..4_500 {
            csv.push_str(&format!("Row{i},website\n"));
        }
        for input_bytes in [Some(csv.len() as u64), None] {
            let (progress, steps) = recorder();
            let opts = ImportOptions {
                mode: ImportMode::DryRun,
                input_bytes,
                progress,
                ..Default::default()
            };
            let report = pollster::block_on(svc.import_csv(&admin, "lead", csv.as_bytes(), &opts)).unwrap();
            assert_eq!(report.valid, 4_500);
            let steps = steps.lock().unwrap().clone();
            assert!(steps.len() >= 4, "one report per chunk and a last one: {steps:?}");
            let last = assert_monotonic(&steps);
            match input_bytes {
                Some(total) => assert_eq!((last.done, last.unit), (total, Unit::Bytes)),
                None => assert_eq!((last.done, last.unit), (4_500, Unit::Records)),
            }
        }
        let opts = ImportOptions {
            mode: ImportMode::AllOrNothing,
            ..Default::default()
        };
        assert!(
            pollster::block_on(svc.import_csv(&admin, "lead", csv.as_bytes(), &opts))
                .unwrap()
                .applied
        );

        let (progress, steps) = recorder();
        let opts = ExportOptions {
            progress,
            ..Default::default()
        };
        let rows = pollster::block_on(svc.export_csv(&admin, "lead", &opts, std::io::sink())).unwrap();
        assert_eq!(rows, 4_750);
        let steps = steps.lock().unwrap().clone();
        assert!(steps.len() >= 4, "{steps:?}");
        assert!(steps.iter().all(|s| s.total == Some(4_750)), "counted first: {steps:?}");
        assert_eq!(assert_monotonic(&steps).done, 4_750);

        let (progress, steps) = recorder();
        let report = pollster::block_on(svc.rescore_all_with(&admin, &progress)).unwrap();
        assert_eq!(report.scanned, 4_750);
        let steps = steps.lock().unwrap().clone();
        assert!(steps.len() >= 2, "{steps:?}");
        assert!(steps.iter().all(|s| s.total == Some(4_750)), "{steps:?}");
        assert_eq!(assert_monotonic(&steps).done, 4_750);
    }
}
