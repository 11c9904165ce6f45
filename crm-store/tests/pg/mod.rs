//! Finding the PostgreSQL test database (shared by the `postgres_*` tests).
#![allow(dead_code)]

use std::io::Write;
use std::sync::Once;

/// The variable naming the test database.
pub const VAR: &str = "CRM_TEST_POSTGRES";

/// The test database URL; `None` (after printing why, once) when it is not configured. Under CI (`CI`
/// set) a missing database is a failure, not a skip.
pub fn url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{VAR} is not set: CI must run the PostgreSQL tests (bash .ci/postgres.sh starts a server)");
            }
            static SAID: Once = Once::new();
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping the PostgreSQL tests: {VAR} is not set (e.g. {VAR}=postgres://crm@127.0.0.1:55432/crm; \
                     `bash .ci/postgres.sh` starts a throwaway server and runs them)"
                );
            });
            None
        }
    }
}
