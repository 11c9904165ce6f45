//! Progress bars for long commands (`demo`, `import`, `export`, `score`): the core reports batches
//! ([`crm_core::progress`]), `indicatif` draws them on stderr. Only when stderr is a terminal: piped
//! or redirected output (scripts, CI, `2> log`) gets no bar and no control characters, and the
//! service is given no callback (an export then skips the count a bar's total needs).

use crm_core::progress::{Progress, Step, Unit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Once;

/// A bar for one operation; cleared when dropped (on success or error), so what the command prints
/// next starts on a clean line.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar labelled `what` when stderr is a terminal; otherwise nothing.
    pub fn start(what: &'static str) -> Bar {
        Bar::with_target(what, std::io::stderr().is_terminal())
    }

    /// No bar.
    pub fn none() -> Bar {
        Bar(None)
    }

    fn with_target(what: &'static str, terminal: bool) -> Bar {
        if !terminal {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_prefix(what);
        bar.set_style(style("{prefix} {spinner} {human_pos} rows {elapsed_precise}"));
        Bar(Some(bar))
    }

    /// The callback for the service: `Progress::none()` without a bar.
    pub fn progress(&self) -> Progress {
        let Some(bar) = self.0.clone() else {
            return Progress::none();
        };
        let styled = Once::new();
        Progress::new(move |s: Step| {
            if let Some(total) = s.total {
                styled.call_once(|| {
                    bar.set_style(style(match s.unit {
                        Unit::Bytes => {
                            "{prefix} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}"
                        }
                        Unit::Records => "{prefix} {wide_bar} {human_pos}/{human_len} eta {eta}",
                    }))
                });
                bar.set_length(total);
            }
            bar.set_position(s.done);
        })
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_terminal_no_callback() {
        let bar = Bar::with_target("import", false);
        assert!(bar.progress().is_none());
        let bar = Bar::with_target("import", true);
        let p = bar.progress();
        assert!(!p.is_none());
        p.report(5, Some(10), Unit::Records);
        assert_eq!(bar.0.as_ref().map(|b| (b.position(), b.length())), Some((5, Some(10))));
    }
}
