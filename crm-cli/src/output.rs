//! Standard output as Unix tools treat it: a reader that went away (`crm export | head -1`) ends the
//! command quietly instead of panicking (`println!`) or reporting a write error.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout failed with a broken pipe.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Standard output that remembers a broken pipe (see [`closed`]).
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        noted(io::stdout().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        noted(io::stdout().flush())
    }
}

fn noted<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
    r
}

/// Whether the reader of stdout has gone away: the command's remaining output has nobody to read it.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Prints `text` and a newline. A closed stdout is not an error (the reader has what it wanted), so
/// the command's own outcome (and exit status) stands.
pub fn print(text: &str) -> crm_core::Result<()> {
    let mut out = Stdout;
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(crm_core::Error::internal(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}
