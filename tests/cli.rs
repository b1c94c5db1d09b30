//! The `imgworker` binary: `run` prints the result as the last stdout line
//! and exits 0, 1 or 2; logs go to stderr; `schema` prints the schemas.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{png_bytes, test_image};
use serde_json::{json, Value};

fn imgworker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("IMGWORKER_LOG")
        .output()
        .unwrap()
}

fn last_line(out: &Output) -> Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    serde_json::from_str(stdout.lines().last().expect("no stdout")).unwrap()
}

fn write_job(dir: &Path, job: &Value) -> String {
    let p = dir.join("job.json");
    std::fs::write(&p, serde_json::to_vec(job).unwrap()).unwrap();
    p.to_string_lossy().into_owned()
}

fn seeded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("store/a/b")).unwrap();
    std::fs::write(
        dir.path().join("store/a/b/original.png"),
        png_bytes(&test_image(64, 32, 1, false)),
    )
    .unwrap();
    dir
}

fn job(outputs: Value) -> Value {
    json!({"schema": 1, "id": "cli-1", "type": "edit", "image": "a/b", "source": "original.png",
           "ops": [{"op": "flip", "axis": "vertical"}], "outputs": outputs})
}

#[test]
fn run_succeeds_and_writes_versions() {
    let dir = seeded();
    let path = write_job(
        dir.path(),
        &job(json!([{"version": "v2", "format": "webp"}])),
    );
    let store = dir.path().join("store");
    let out = imgworker(&[
        "run",
        &path,
        "--storage",
        store.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = last_line(&out);
    assert_eq!(r["status"], "succeeded");
    assert_eq!(r["outputs"][0]["object"], "v2.webp");
    assert!(store.join("a/b/v2.webp").is_file() && store.join("a/b/v2.json").is_file());
    // Logs are on stderr, not stdout.
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("job succeeded"));
}

#[test]
fn run_reads_the_job_from_stdin_with_json_logs() {
    use std::io::Write;
    let dir = seeded();
    let store = dir.path().join("store");
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .args([
            "--log-format",
            "json",
            "run",
            "-",
            "--storage",
            store.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&job(json!([{"version": "v3", "format": "png"}]))).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        last_line(&out)["backend"],
        "cpu",
        "auto picks the CPU without a GPU backend"
    );
    for line in String::from_utf8(out.stderr).unwrap().lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some());
    }
}

#[test]
fn failed_job_exits_1_with_a_failed_result() {
    let dir = seeded();
    let mut j = job(json!([{"version": "v2", "format": "png"}]));
    j["source"] = json!("missing.png");
    let path = write_job(dir.path(), &j);
    let store = dir.path().join("store");
    let out = imgworker(&["run", &path, "--storage", store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let r = last_line(&out);
    assert_eq!(
        (r["status"].as_str(), r["error"]["code"].as_str()),
        (Some("failed"), Some("source_not_found"))
    );
    assert!(!store.join("a/b/v2.png").exists());
}

#[test]
fn usage_errors_exit_2() {
    let dir = seeded();
    assert_eq!(imgworker(&["run"]).status.code(), Some(2));
    assert_eq!(imgworker(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        imgworker(&["run", "/nonexistent/job.json"]).status.code(),
        Some(2)
    );
    let path = write_job(
        dir.path(),
        &job(json!([{"version": "v2", "format": "png"}])),
    );
    assert_eq!(
        imgworker(&["run", &path, "--backend", "quantum"])
            .status
            .code(),
        Some(2)
    );
    let out = imgworker(&["run", &path, "--deadline-secs", "-1"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_file_sets_limits_and_flags_override_it() {
    let dir = seeded();
    let store = dir.path().join("store");
    let conf = dir.path().join("worker.toml");
    std::fs::write(&conf, "[limits]\nmax_source_pixels = 100\n").unwrap();
    let path = write_job(
        dir.path(),
        &job(json!([{"version": "v2", "format": "png"}])),
    );
    let base = [
        "run",
        &path,
        "--storage",
        store.to_str().unwrap(),
        "--config",
        conf.to_str().unwrap(),
    ];
    let out = imgworker(&base);
    assert_eq!(last_line(&out)["error"]["code"], "limit_exceeded");
    let mut args = base.to_vec();
    args.extend(["--max-source-pixels", "5000"]);
    assert_eq!(last_line(&imgworker(&args))["status"], "succeeded");
    std::fs::write(&conf, "[limits]\nmax_sorce_pixels = 100\n").unwrap();
    assert_eq!(
        imgworker(&base).status.code(),
        Some(2),
        "a misspelt config key is an error"
    );
}

#[test]
fn schema_describes_job_result_and_manifest() {
    let out = imgworker(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = &v["job"];
    let required: Vec<&str> = job["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for field in ["schema", "id", "type", "image"] {
        assert!(required.contains(&field), "{field}");
    }
    assert_eq!(job["additionalProperties"], false);
    let text = v.to_string();
    for op in imgworker::ops::OP_NAMES {
        assert!(
            text.contains(&format!("\"{op}\"")),
            "op {op} missing from the schema"
        );
    }
    assert!(v["result"]["properties"]["timings_ms"].is_object());
    assert!(v["manifest"]["properties"]["recipe"].is_object());
}

#[test]
fn shipped_example_config_parses() {
    let dir = seeded();
    let path = write_job(
        dir.path(),
        &job(json!([{"version": "v2", "format": "png"}])),
    );
    let store = dir.path().join("store");
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/worker.toml");
    let out = imgworker(&[
        "run",
        &path,
        "--config",
        conf,
        "--storage",
        store.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
