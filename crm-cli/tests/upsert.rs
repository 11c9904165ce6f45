//! `crm upsert`: a JSON Lines file from an external system, upserted twice (the second run writes
//! nothing), with a bad line refused on its own and the modes named on the command line.

use std::process::{Command, Output};

fn crm(db: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("runs")
}

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn a_jsonl_file_is_upserted_and_the_second_run_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crm.db");
    let out = crm(&db, &["demo", "--leads", "20"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = dir.path().join("leads.jsonl");
    std::fs::write(
        &file,
        "{\"external_id\": \"S1\", \"first_name\": \"Quinlan\", \"source\": \"referral\"}\n\
         \n\
         {\"external_id\": \"S2\", \"first_name\": \"Bob\", \"tags\": \"a,b\"}\n\
         not json\n\
         {\"external_id\": \"S3\", \"first_name\": \"Cy\"}\n",
    )
    .expect("write rows");
    let path = file.to_str().expect("utf-8 path");
    let args = ["upsert", "--entity", "lead", "--system", "website", "--file", path];

    let dry = crm(&db, &[&args[..], &["--dry-run"]].concat());
    assert_eq!(dry.status.code(), Some(2), "refused rows: exit 2");
    let r = report(&dry);
    assert_eq!(
        (r["rows"].as_u64(), r["created"].as_u64(), r["rejected"].as_u64()),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(r["applied"], false);
    assert_eq!(r["results"][1]["errors"][0]["path"], "tags");
    assert_eq!(r["results"][2]["errors"][0]["path"], "row");

    let first = report(&crm(&db, &args));
    assert_eq!(
        (first["created"].as_u64(), first["applied"].as_bool()),
        (Some(2), Some(true))
    );
    let second = report(&crm(&db, &args));
    assert_eq!(
        (second["unchanged"].as_u64(), second["created"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(second["applied"], false, "the second run writes nothing");

    // Create-only refuses what is bound already.
    let create = report(&crm(&db, &[&args[..], &["--mode", "create-only"]].concat()));
    assert_eq!(create["results"][0]["errors"][0]["code"], "already_bound");
    let exported = crm(&db, &["export", "--q", "first_name:Quinlan", "--fields", "first_name"]);
    assert_eq!(String::from_utf8_lossy(&exported.stdout), "first_name\nQuinlan\n");
}
