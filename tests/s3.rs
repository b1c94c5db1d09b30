//! Versions, lineage, re-edits, purge and encryption at rest on a real
//! S3-protocol server (moto) on loopback; a store that is down or slow.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{block, cfg, png_bytes, run, test_image};
use imgworker::backend::Backend;
use imgworker::pipeline::Engine;
use imgworker::storage::{Keyring, S3Storage, SealedStorage, Storage};
use serde_json::{json, Value};

const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn engine(storage: Arc<dyn Storage>) -> Engine {
    Engine::new(cfg(), storage, Backend::Cpu)
}

fn sealed(raw: &Arc<S3Storage>, keys: &str) -> Arc<dyn Storage> {
    Arc::new(SealedStorage::new(
        raw.clone(),
        Keyring::parse(keys).unwrap(),
    ))
}

fn edit(id: &str, image: &str, source: &str, version: &str, ops: Value) -> Value {
    json!({"schema": 1, "id": id, "type": "edit", "image": image, "source": source,
           "ops": ops, "outputs": [{"version": version, "format": "png"}]})
}

fn manifest(s: &Arc<S3Storage>, key: &str) -> Value {
    serde_json::from_slice(&block(s.get(key, 1 << 20)).unwrap()).unwrap()
}

fn assert_succeeded(outcome: &imgworker::pipeline::Outcome) {
    assert_eq!(
        outcome.result.status.as_str(),
        "succeeded",
        "{:?}",
        outcome.result.error
    );
}

fn code(outcome: &imgworker::pipeline::Outcome) -> String {
    outcome
        .result
        .error
        .as_ref()
        .map(|e| e.code.as_str().to_string())
        .unwrap_or_default()
}

#[test]
fn edit_re_edit_and_a_three_step_lineage() {
    let s3 = common::s3_storage("lineage", "");
    let src = test_image(40, 30, 1, false);
    block(s3.put("u/7/original.png", &png_bytes(&src))).unwrap();
    let e = engine(s3.clone());
    for (i, (source, version, op)) in [
        ("original.png", "v1", json!({"op": "rotate", "degrees": 90})),
        ("v1.png", "v2", json!({"op": "invert"})),
        (
            "v2.png",
            "v3",
            json!({"op": "crop", "x": 0, "y": 0, "width": 10, "height": 10}),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let out = run(
            &e,
            &edit(&format!("l{i}"), "u/7", source, version, json!([op])),
        );
        assert_succeeded(&out);
    }
    let m = manifest(&s3, "u/7/v3.json");
    let mut chain = Vec::new();
    let mut r = &m["recipe"];
    while r.is_object() {
        chain.push((
            r["parent"].as_str().unwrap().to_string(),
            r["ops"][0]["op"].as_str().unwrap().to_string(),
        ));
        r = &r["parent_recipe"];
    }
    assert_eq!(
        chain,
        [
            ("v2.png".into(), "crop".into()),
            ("v1.png".into(), "invert".into()),
            ("original.png".into(), "rotate".into())
        ]
    );
    // The stored v3 is what re-deriving from the original gives.
    let expected = imgworker::ops::run_chain_cpu(
        imgworker::ops::Frame {
            img: src,
            orientation: 1,
        },
        &[],
        &Default::default(),
    )
    .unwrap();
    let v3 = common::decode(&block(s3.get("u/7/v3.png", 1 << 20)).unwrap());
    let mut want = image::imageops::rotate90(&expected.img);
    image::imageops::invert(&mut want);
    let want = image::imageops::crop_imm(&want, 0, 0, 10, 10).to_image();
    assert_eq!(v3, want);
}

#[test]
fn encryption_at_rest() {
    let s3 = common::s3_storage("sealed", "");
    let src = test_image(32, 24, 2, true);
    block(s3.put("e/1/original.png", &png_bytes(&src))).unwrap();

    // Written sealed with k1: the stored bytes are not the image.
    let out = run(
        &engine(sealed(&s3, K1)),
        &edit("s1", "e/1", "original.png", "v1", json!([{"op": "invert"}])),
    );
    assert_succeeded(&out);
    let stored = block(s3.get("e/1/v1.png", 1 << 20)).unwrap();
    assert!(
        !stored.starts_with(b"\x89PNG"),
        "stored bytes must not be the plaintext"
    );
    assert!(image::load_from_memory(&stored).is_err());
    let m = manifest(&s3, "e/1/v1.json");
    assert_eq!(m["encryption"]["key_id"], "k1");
    assert_eq!(m["encryption"]["algorithm"], "AES-256-GCM");

    // Re-edit from the sealed version.
    let out = run(
        &engine(sealed(&s3, K1)),
        &edit("s2", "e/1", "v1.png", "v2", json!([{"op": "invert"}])),
    );
    assert_succeeded(&out);
    let back = block(sealed(&s3, K1).get("e/1/v2.png", 1 << 20)).unwrap();
    assert_eq!(
        common::decode(&back),
        src,
        "invert twice gives the source back"
    );

    // No keys, or only the wrong key: a clear permanent error.
    let out = run(
        &engine(s3.clone()),
        &edit("s3", "e/1", "v1.png", "x", json!([])),
    );
    assert_eq!(code(&out), "decode_failed");
    assert!(out
        .result
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("sealed"));
    let out = run(
        &engine(sealed(&s3, K2)),
        &edit("s4", "e/1", "v1.png", "x", json!([])),
    );
    assert_eq!(code(&out), "decode_failed");
    assert!(out.result.error.as_ref().unwrap().message.contains("k1"));

    // A tampered object fails authentication.
    let mut t = stored.clone();
    let mid = t.len() / 2;
    t[mid] ^= 0x40;
    block(s3.put("e/1/tampered.png", &t)).unwrap();
    let out = run(
        &engine(sealed(&s3, K1)),
        &edit("s5", "e/1", "tampered.png", "x", json!([])),
    );
    assert_eq!(code(&out), "decode_failed");
    assert!(out
        .result
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("authentication"));

    // Rotation: k2 writes, k1 objects still read.
    let rotated = sealed(&s3, &format!("{K2},{K1}"));
    let out = run(
        &engine(rotated.clone()),
        &edit("s6", "e/1", "v1.png", "v3", json!([])),
    );
    assert_succeeded(&out);
    assert_eq!(manifest(&s3, "e/1/v3.json")["encryption"]["key_id"], "k2");
    assert!(
        block(sealed(&s3, K2).get("e/1/v3.png", 1 << 20)).is_ok(),
        "k2 alone opens v3"
    );
    assert!(
        block(sealed(&s3, K1).get("e/1/v3.png", 1 << 20)).is_err(),
        "k1 alone does not"
    );
    // Nothing was written by the failed jobs.
    assert!(block(s3.get("e/1/x.png", 1 << 20)).is_err());
}

#[test]
fn purge_removes_exactly_the_images_objects() {
    let s3 = common::s3_storage("purge", "p");
    for key in [
        "u/1/original.png",
        "u/1/v1.png",
        "u/1/v1.json",
        "u/10/original.png",
        "u/10/v1.png",
        "u/1x/a.png",
    ] {
        block(s3.put(key, b"x")).unwrap();
    }
    let out = run(
        &engine(s3.clone()),
        &json!({"schema": 1, "id": "purge-1", "type": "purge", "image": "u/1"}),
    );
    assert_succeeded(&out);
    assert_eq!(out.result.removed, Some(3));
    assert!(block(s3.list("u/1")).unwrap().is_empty());
    assert_eq!(block(s3.list("u/10")).unwrap(), ["original.png", "v1.png"]);
    assert_eq!(block(s3.list("u/1x")).unwrap(), ["a.png"]);
}

#[test]
fn a_store_that_is_down_is_storage_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Arc::new(common::s3_at(&format!("http://127.0.0.1:{port}"), "b", ""));
    let started = Instant::now();
    let out = run(
        &engine(down),
        &edit("down", "u/1", "original.png", "v", json!([])),
    );
    assert_eq!(code(&out), "storage_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_slow_store_does_not_hold_a_job_past_its_deadline() {
    // A server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let slow = Arc::new(common::s3_at(&format!("http://127.0.0.1:{port}"), "b", ""));
    let mut c = cfg();
    c.limits.deadline = Duration::from_secs(2);
    let e = Engine::new(c, slow, Backend::Cpu);
    let started = Instant::now();
    let out = run(&e, &edit("slow", "u/1", "original.png", "v", json!([])));
    let took = started.elapsed();
    assert_eq!(code(&out), "storage_unavailable", "{:?}", out.result.error);
    assert!(
        took < Duration::from_secs(4),
        "the job outlived its 2 s deadline: {took:?}"
    );
}

#[test]
fn the_cli_reads_and_writes_s3_configured_by_the_aws_environment() {
    let s3 = common::s3_storage("cli", "tenant");
    block(s3.put(
        "c/1/original.png",
        &png_bytes(&test_image(20, 10, 3, false)),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        edit(
            "cli-s3",
            "c/1",
            "original.png",
            "v1",
            json!([{"op": "flip", "axis": "vertical"}]),
        )
        .to_string(),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imgworker"));
    let out = common::s3_env(&mut cmd)
        .args([
            "run",
            job.to_str().unwrap(),
            "--storage",
            "s3://cli/tenant",
            "--backend",
            "cpu",
        ])
        .env("IMGWORKER_ENCRYPTION_KEYS", K1)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("AQEBAQEB"), "key material in the logs");
    assert!(stderr.contains("s3://cli/tenant"), "{stderr}");
    let stored = block(s3.get("c/1/v1.png", 1 << 20)).unwrap();
    assert!(imgworker::storage::sealed::is_sealed(&stored));
    assert_eq!(manifest(&s3, "c/1/v1.json")["encryption"]["key_id"], "k1");
    // Nothing was written locally.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
