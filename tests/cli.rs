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
    // The message names the full key and where it was looked for.
    let message = r["error"]["message"].as_str().unwrap();
    let root = format!("file://{}", store.display());
    assert!(
        message.contains("a/b/missing.png") && message.contains(&root),
        "{message}"
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
    // A file that is not JSON holds no job: exit 2 and one clear line, no
    // result message.
    let not_json = dir.path().join("broken.json");
    std::fs::write(&not_json, br#"{"schema": 1, "id": "x""#).unwrap();
    let out = imgworker(&["run", not_json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.json is not JSON"), "{err}");
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
fn settings_layer_file_then_environment_then_flags() {
    // The source is 64x32 = 2048 pixels: a limit of 100 refuses it, 5000
    // lets it through. Each layer flips the outcome of the one below.
    let dir = seeded();
    let store = dir.path().join("store");
    let conf = dir.path().join("worker.toml");
    std::fs::write(&conf, "[limits]\nmax_source_pixels = 100\n").unwrap();
    let path = write_job(
        dir.path(),
        &job(json!([{"version": "v2", "format": "png"}])),
    );
    let run = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgworker"));
        cmd.args(["run", &path, "--storage", store.to_str().unwrap()])
            .env("IMGWORKER_CONFIG", &conf)
            .env_remove("IMGWORKER_MAX_SOURCE_PIXELS");
        if let Some(v) = env {
            cmd.env("IMGWORKER_MAX_SOURCE_PIXELS", v);
        }
        if let Some(v) = flag {
            cmd.args(["--max-source-pixels", v]);
        }
        let out = cmd.output().unwrap();
        last_line(&out)["status"].as_str().unwrap().to_string()
    };
    assert_eq!(run(None, None), "failed", "the file's limit applies");
    assert_eq!(
        run(Some("5000"), None),
        "succeeded",
        "environment over file"
    );
    assert_eq!(
        run(Some("5000"), Some("100")),
        "failed",
        "flag over environment"
    );
    assert_eq!(run(Some(""), None), "failed", "an empty variable is unset");
}

/// A 32-byte encryption key (`A` x 32), base64.
const SEAL_KEY: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";

#[test]
fn secrets_are_refused_in_the_config_file_and_never_printed() {
    let dir = seeded();
    let conf = dir.path().join("worker.toml");
    std::fs::write(&conf, "signing_keys = \"k1:file-secret\"\n").unwrap();
    let out = imgworker(&["schema", "--config", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("IMGWORKER_SIGNING_KEYS"), "{stderr}");
    assert!(!stderr.contains("file-secret"), "{stderr}");

    // The settings are logged at debug level, with the secrets redacted.
    let path = write_job(
        dir.path(),
        &job(json!([{"version": "v2", "format": "png"}])),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .args(["run", &path, "--storage", "memory://"])
        .env("IMGWORKER_LOG", "imgworker=debug")
        .env("IMGWORKER_ENCRYPTION_KEYS", format!("k1:{SEAL_KEY}"))
        .env("IMGWORKER_SIGNING_KEYS", "k1:env-secret")
        .env("IMGWORKER_AMQP_URL", "amqp://u:url-secret@h/%2f")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("<redacted>"),
        "settings not logged: {stderr}"
    );
    for secret in [SEAL_KEY, "env-secret", "url-secret"] {
        assert!(!stderr.contains(secret), "{secret} printed: {stderr}");
    }
}

/// A build without the `bench` feature (a worker image) still knows the
/// command, and says which feature it needs.
#[cfg(not(feature = "bench"))]
#[test]
fn bench_without_its_feature_exits_2_and_names_the_feature() {
    let out = imgworker(&["bench", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`bench` cargo feature"), "{stderr}");
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

#[test]
fn devices_lists_adapters_and_explains_auto() {
    let out = imgworker(&["devices", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let adapters = doc["adapters"].as_array().unwrap();
    assert!(
        !adapters.is_empty(),
        "no Vulkan adapter: run scripts/test.sh, or apt-get install mesa-vulkan-drivers libvulkan1"
    );
    for a in adapters {
        assert_eq!(a["backend"], "Vulkan");
        assert!(a["max_storage_buffer_binding_size"].as_u64().unwrap() >= 1 << 27);
    }
    let any_hardware = adapters.iter().any(|a| a["software"] == false);
    let expected = if any_hardware { "gpu" } else { "cpu" };
    assert_eq!(doc["auto"]["backend"], expected, "{doc}");
    assert!(!doc["auto"]["reason"].as_str().unwrap().is_empty());

    let text = imgworker(&["devices"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(adapters[0]["name"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.contains(&format!("auto: {expected}")), "{text}");
}

#[test]
fn run_on_the_gpu_backend_matches_the_cpu_backend() {
    let dir = seeded();
    let mut results = Vec::new();
    for backend in ["gpu", "cpu", "auto"] {
        let store = dir.path().join("store");
        let j = json!({"schema": 1, "id": format!("cli-{backend}"), "type": "edit", "image": "a/b",
            "source": "original.png",
            "ops": [{"op": "rotate", "degrees": 90}, {"op": "grayscale"}],
            "outputs": [{"version": backend, "format": "png"}]});
        let result = run_on(dir.path(), &store, &j, backend);
        let png = std::fs::read(store.join(format!("a/b/{backend}.png"))).unwrap();
        results.push((
            result["backend"].as_str().unwrap().to_string(),
            image::load_from_memory(&png).unwrap().to_rgba8(),
        ));
    }
    assert_eq!(results[0].0, "gpu", "--backend gpu must run on the GPU");
    assert_eq!(results[1].0, "cpu");
    let (max, _) = common::diff(&results[0].1, &results[1].1);
    assert!(max <= 2, "GPU and CPU outputs differ by {max} levels");
    let devices: Value = serde_json::from_slice(&imgworker(&["devices", "--json"]).stdout).unwrap();
    assert_eq!(
        results[2].0, devices["auto"]["backend"],
        "auto ran where `devices` said it would"
    );
}

#[test]
fn gpu_backend_without_an_adapter_is_a_start_up_error() {
    // An ICD list naming no driver leaves the Vulkan loader with no adapter.
    let dir = seeded();
    let path = write_job(dir.path(), &job(json!([{"version": "v", "format": "png"}])));
    let store = dir.path().join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .args([
            "run",
            &path,
            "--storage",
            store.to_str().unwrap(),
            "--backend",
            "gpu",
        ])
        .env("VK_ICD_FILENAMES", "/nonexistent.json")
        .env("VK_DRIVER_FILES", "/nonexistent.json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no usable GPU backend"), "{stderr}");
    assert!(out.stdout.is_empty(), "no job may run");
    assert!(!store.join("a/b/v.png").exists());
}

/// `imgworker run` of `job` on `store` with `backend`; it must succeed.
fn run_on(dir: &Path, store: &Path, job: &Value, backend: &str) -> Value {
    let out = imgworker(&[
        "run",
        &write_job(dir, job),
        "--storage",
        store.to_str().unwrap(),
        "--backend",
        backend,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_line(&out)
}

/// The editing vocabulary through `imgworker run` on both backends: masks,
/// composite (and its `overlay` alias), levels, curves, a LUT, pixelate
/// through a mask, trim, smart crop; then a re-edit from the original.
#[test]
fn editing_ops_and_re_edits_run_on_both_backends() {
    let dir = seeded();
    let store = dir.path().join("store");
    let img = store.join("a/b");
    std::fs::write(
        img.join("patch.png"),
        png_bytes(&test_image(24, 16, 9, true)),
    )
    .unwrap();
    let mut grey = Vec::new();
    image::DynamicImage::ImageLuma8(common::soft_mask(32, 16))
        .write_to(
            &mut std::io::Cursor::new(&mut grey),
            image::ImageFormat::Png,
        )
        .unwrap();
    std::fs::write(img.join("mask.png"), grey).unwrap();
    std::fs::write(img.join("grade.cube"), common::grade_cube_text(5)).unwrap();
    // The smart crop first: its window is chosen from the pixels, which
    // later ops leave a level apart between the backends.
    let ops = json!([
        {"op": "resize", "width": 24, "height": 24, "fit": "cover", "gravity": "attention"},
        {"op": "composite", "source": "patch.png", "x": 4, "y": 2, "blend": "soft_light",
         "mask": {"object": "mask.png", "fit": "fill", "feather": 1.5}},
        {"op": "overlay", "source": "patch.png", "gravity": "south_east", "opacity": 0.5},
        {"op": "levels", "black": 0.05, "gamma": 1.2},
        {"op": "curves", "points": [[0, 0], [0.5, 0.6], [1, 1]]},
        {"op": "lut", "object": "grade.cube"},
        {"op": "pixelate", "size": 4, "mask": {"object": "mask.png", "fit": "cover", "invert": true}},
        {"op": "pad", "top": 3, "left": 3, "color": "#ffffff"},
        {"op": "trim", "background": "#ffffff", "threshold": 0.0}
    ]);
    let mut outs = Vec::new();
    for backend in ["gpu", "cpu"] {
        let j = json!({"schema": 1, "id": format!("edit-{backend}"), "type": "edit", "image": "a/b",
            "source": "original.png", "ops": ops,
            "outputs": [{"version": format!("e-{backend}"), "format": "png"}]});
        let result = run_on(dir.path(), &store, &j, backend);
        assert_eq!(result["backend"], backend);
        let png = std::fs::read(img.join(format!("e-{backend}.png"))).unwrap();
        outs.push(image::load_from_memory(&png).unwrap().to_rgba8());
    }
    assert_eq!(outs[0].dimensions(), (24, 24));
    let (max, mean) = common::diff(&outs[0], &outs[1]);
    assert!(
        max <= 2 && mean < 0.1,
        "GPU and CPU differ: max {max}, mean {mean}"
    );

    // A re-edit of the CPU version, from the original, on each backend.
    let mut again = Vec::new();
    for backend in ["gpu", "cpu"] {
        let j = json!({"schema": 1, "id": format!("re-{backend}"), "type": "edit", "image": "a/b",
            "source": "e-cpu.png", "from": "original", "ops": [{"op": "invert"}],
            "outputs": [{"version": format!("r-{backend}"), "format": "png"}]});
        run_on(dir.path(), &store, &j, backend);
        let m: Value =
            serde_json::from_slice(&std::fs::read(img.join(format!("r-{backend}.json"))).unwrap())
                .unwrap();
        assert_eq!(m["recipe"]["from_original"]["object"], "original.png");
        let png = std::fs::read(img.join(format!("r-{backend}.png"))).unwrap();
        again.push(image::load_from_memory(&png).unwrap().to_rgba8());
    }
    let (max, _) = common::diff(&again[0], &again[1]);
    assert!(max <= 2, "re-edit: GPU and CPU differ by {max}");
    // From the original, the CPU re-edit is the CPU edit inverted exactly.
    for (a, b) in again[1].pixels().zip(outs[1].pixels()) {
        assert_eq!(a.0, [255 - b.0[0], 255 - b.0[1], 255 - b.0[2], b.0[3]]);
    }
}
