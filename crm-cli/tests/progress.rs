//! Progress bars: drawn on a terminal, absent (no bar, no control characters) when stderr is a pipe.

use std::process::Command;

fn has_control(s: &str) -> bool {
    s.contains('\r') || s.contains('\u{1b}')
}

#[test]
fn long_commands_draw_a_bar_only_on_a_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let piped = dir.path().join("piped.db");
    let crm = env!("CARGO_BIN_EXE_crm");

    // stderr is a pipe here: nothing but the command's own lines.
    let out = Command::new(crm)
        .arg("--database")
        .arg(&piped)
        .args(["demo", "--leads", "200"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!has_control(&err) && !err.contains("300"), "{err:?}");
    let csv = dir.path().join("leads.csv");
    let out = Command::new(crm)
        .arg("--database")
        .arg(&piped)
        .args(["export", "--entity", "lead", "--out"])
        .arg(&csv)
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "exported 200 rows\n");
    for args in [
        &["score"][..],
        &["import", "--entity", "lead", "--file", csv.to_str().unwrap()],
    ] {
        let out = Command::new(crm)
            .arg("--database")
            .arg(&piped)
            .args(args)
            .output()
            .expect("runs");
        // An import of the full export reports rows it refuses (exit 2); it ran to the end either way.
        assert!(matches!(out.status.code(), Some(0 | 2)), "{args:?}: {out:?}");
        assert!(!has_control(&String::from_utf8_lossy(&out.stderr)), "{args:?}");
    }

    // Under a pseudo-terminal (util-linux `script`, as in a user's shell) the demo draws its bar:
    // contacts and leads created of 300.
    let tty = dir.path().join("tty.db");
    let cmd = format!("{crm} --database {} demo --leads 200", tty.display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("util-linux `script` runs the command on a pseudo-terminal");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("demo ") && screen.contains("/300"), "{screen}");
    assert!(screen.contains("loaded the demo tenant"), "{screen}");
}
