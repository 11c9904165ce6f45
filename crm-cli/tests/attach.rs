//! `crm attach`: a photo and a signature on a demo job, their bytes in the blob directory next to the
//! database; a file that is not what its kind says is refused with nothing written.

use std::process::{Command, Output};

fn crm(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn attach_stores_the_bytes_beside_the_database_and_signs_the_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    let out = crm(&db, &["demo", "--vertical", "moving", "--quotes", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jobs = crm(
        &db,
        &[
            "export",
            "--entity",
            "job",
            "--fields",
            "id,status",
            "--q",
            "status:planned",
        ],
    );
    assert!(jobs.status.success(), "{}", String::from_utf8_lossy(&jobs.stderr));
    let csv = String::from_utf8_lossy(&jobs.stdout).into_owned();
    let job = csv
        .lines()
        .nth(1)
        .expect("a planned job")
        .split(',')
        .next()
        .expect("its id")
        .to_owned();

    let png = dir.path().join("roof.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-a-photo").expect("png");
    let out = crm(
        &db,
        &[
            "attach",
            "--entity",
            "job",
            "--id",
            &job,
            "--file",
            png.to_str().expect("path"),
            "--kind",
            "photo",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(rec["media_type"], "image/png");
    assert_eq!(rec["file_name"], "roof.png");
    let sha = rec["sha256"].as_str().expect("sha256");
    let found = walk(&dir.path().join("crm.blobs"))
        .into_iter()
        .any(|p| p.file_name().is_some_and(|n| n == sha));
    assert!(found, "the bytes are in crm.blobs next to crm.db");

    let html = dir.path().join("page.png");
    std::fs::write(&html, b"<html><script>x()</script></html>").expect("html");
    let out = crm(
        &db,
        &[
            "attach",
            "--entity",
            "job",
            "--id",
            &job,
            "--file",
            html.to_str().expect("path"),
            "--kind",
            "photo",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("media_type"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = crm(
        &db,
        &[
            "attach",
            "--entity",
            "job",
            "--id",
            &job,
            "--file",
            png.to_str().expect("path"),
            "--kind",
            "signature",
            "--signer",
            "Cleo Ito",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let signed = crm(&db, &["export", "--entity", "job", "--fields", "id,customer_signed"]);
    let text = String::from_utf8_lossy(&signed.stdout).into_owned();
    let row = text.lines().find(|l| l.starts_with(&job)).expect("the job");
    assert!(row.ends_with("true"), "{row}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
