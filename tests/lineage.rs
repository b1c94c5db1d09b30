//! Re-edits rendered from the original (`"from": "original"`): the composed
//! recipe chain equals one job with every op, five re-edits lose less than
//! five generations of JPEG, and a lineage that cannot be trusted is
//! `broken_lineage` with nothing written.

mod common;

use common::{cfg, decode, jpeg_bytes, memory_engine, png_bytes, run};
use image::RgbaImage;
use imgworker::manifest::Manifest;
use imgworker::result::Status;
use imgworker::storage::MemoryStorage;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const IMAGE: &str = "users/42/images/7";

fn key(object: &str) -> String {
    format!("{IMAGE}/{object}")
}

fn edit(source: &str, from: Option<&str>, ops: Value, outputs: Value) -> Value {
    let mut j = json!({"schema": 1, "id": "reedit", "type": "edit", "image": IMAGE, "source": source, "ops": ops, "outputs": outputs});
    if let Some(f) = from {
        j["from"] = json!(f);
    }
    j
}

fn succeed(engine: &imgworker::pipeline::Engine, job: &Value) {
    let out = run(engine, job);
    assert_eq!(
        out.result.status,
        Status::Succeeded,
        "{job}: {:?}",
        out.result.error
    );
}

fn fail(
    engine: &imgworker::pipeline::Engine,
    storage: &MemoryStorage,
    job: &Value,
    code: &str,
) -> String {
    let before = storage.keys();
    let out = run(engine, job);
    assert_eq!(out.result.status, Status::Failed, "{job}");
    let err = out.result.error.unwrap();
    assert_eq!(err.code.as_str(), code, "{job}: {}", err.message);
    assert_eq!(storage.keys(), before, "a failed job wrote to storage");
    err.message
}

fn manifest(storage: &MemoryStorage, object: &str) -> Manifest {
    serde_json::from_slice(&storage.object(&key(object)).unwrap()).unwrap()
}

/// A smooth photo-like image (gradients and soft bands), where JPEG's
/// generation loss shows as it does on photographs.
fn smooth(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (f64::from(x) / f64::from(w), f64::from(y) / f64::from(h));
        let band = ((fx * 9.0 + fy * 4.0).sin() * 0.5 + 0.5) * 90.0;
        image::Rgba([
            (40.0 + fx * 150.0 + band * 0.4) as u8,
            (60.0 + fy * 120.0 + band * 0.6) as u8,
            (200.0 - fx * 80.0 - fy * 60.0 + band * 0.3) as u8,
            255,
        ])
    })
}

#[test]
fn from_original_equals_the_composed_recipe_in_one_job() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.jpg"), jpeg_bytes(&smooth(320, 240), 92));
    let a = json!([{"op": "adjust", "brightness": 0.05}]);
    let a_out = json!([{"op": "crop", "x": 10, "y": 8, "width": 280, "height": 200}]);
    let b = json!([{"op": "levels", "gamma": 1.2}, {"op": "blur", "sigma": 1.0}]);
    let c = json!([{"op": "resize", "width": 140}, {"op": "sepia", "strength": 0.5}]);
    succeed(
        &engine,
        &edit(
            "original.jpg",
            None,
            a.clone(),
            json!([{"version": "v2", "format": "jpeg", "quality": 80, "ops": a_out}]),
        ),
    );
    succeed(
        &engine,
        &edit(
            "v2.jpg",
            None,
            b.clone(),
            json!([{"version": "v3", "format": "webp", "quality": 75}]),
        ),
    );
    succeed(
        &engine,
        &edit(
            "v3.webp",
            Some("original"),
            c.clone(),
            json!([{"version": "v4", "format": "png"}]),
        ),
    );
    // The same ops in one job from the original.
    let all: Vec<Value> = [&a, &a_out, &b, &c]
        .iter()
        .flat_map(|v| v.as_array().unwrap().clone())
        .collect();
    succeed(
        &engine,
        &edit(
            "original.jpg",
            None,
            json!(all),
            json!([{"version": "one-job", "format": "png"}]),
        ),
    );
    let v4 = storage.object(&key("v4.png")).unwrap();
    assert_eq!(
        v4,
        storage.object(&key("one-job.png")).unwrap(),
        "from-original differs from the composed recipe in one job"
    );
    // The manifest: the parent version, its own ops, the chain, and what
    // was rendered from which object.
    let m = manifest(&storage, "v4.json");
    assert_eq!(m.parent, "v3.webp");
    assert_eq!(serde_json::to_value(&m.recipe.ops).unwrap(), c);
    let chain: Vec<&str> = m
        .recipe
        .lineage()
        .iter()
        .map(|r| r.parent.as_str())
        .collect();
    assert_eq!(chain, ["original.jpg", "v2.jpg", "v3.webp"]);
    let from = m.recipe.from_original.as_ref().expect("from_original");
    assert_eq!(from.object, "original.jpg");
    assert_eq!(serde_json::to_value(&from.ops).unwrap(), json!(all));
    // A version rendered from the original is itself a link of the chain.
    succeed(
        &engine,
        &edit(
            "v4.png",
            Some("original"),
            json!([{"op": "invert"}]),
            json!([{"version": "v5", "format": "png"}]),
        ),
    );
    let mut more = all.clone();
    more.push(json!({"op": "invert"}));
    succeed(
        &engine,
        &edit(
            "original.jpg",
            None,
            json!(more),
            json!([{"version": "one-job-5", "format": "png"}]),
        ),
    );
    assert_eq!(
        storage.object(&key("v5.png")).unwrap(),
        storage.object(&key("one-job-5.png")).unwrap()
    );
}

fn psnr(a: &RgbaImage, b: &[[f64; 3]]) -> f64 {
    let mut se = 0.0;
    for (p, r) in a.pixels().zip(b) {
        for (&got, want) in p.0.iter().zip(r) {
            let d = f64::from(got) - want * 255.0;
            se += d * d;
        }
    }
    let mse = se / (b.len() * 3) as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

#[test]
fn five_re_edits_from_the_original_beat_five_generations_of_jpeg() {
    let (engine, storage) = memory_engine(cfg());
    let original = jpeg_bytes(&smooth(384, 256), 95);
    storage.insert(&key("original.jpg"), original.clone());
    let step = json!([{"op": "adjust", "brightness": 0.02, "contrast": 1.04}]);
    let out = |v: &str| json!([{"version": v, "format": "jpeg", "quality": 75}]);
    // Chained: each version decodes the previous one and encodes again.
    let mut source = "original.jpg".to_string();
    for i in 1..=5 {
        let v = format!("c{i}");
        succeed(&engine, &edit(&source, None, step.clone(), out(&v)));
        source = format!("{v}.jpg");
    }
    // From the original: the fifth edit composes all five in one pass.
    succeed(
        &engine,
        &edit("c4.jpg", Some("original"), step.clone(), out("o5")),
    );
    // Float64 rendering of the whole chain from the decoded original.
    let decoded = decode(&original);
    let reference: Vec<[f64; 3]> = decoded
        .pixels()
        .map(|p| {
            std::array::from_fn(|k| {
                let mut v = f64::from(p.0[k]) / 255.0;
                for _ in 0..5 {
                    v = ((v + 0.02 - 0.5) * 1.04 + 0.5).clamp(0.0, 1.0);
                }
                v
            })
        })
        .collect();
    let chained = psnr(
        &decode(&storage.object(&key("c5.jpg")).unwrap()),
        &reference,
    );
    let from_original = psnr(
        &decode(&storage.object(&key("o5.jpg")).unwrap()),
        &reference,
    );
    println!(
        "PSNR against float64 after five re-edits: chained {chained:.2} dB, from the original {from_original:.2} dB"
    );
    assert!(
        from_original > chained + 1.0,
        "chained {chained:.2} dB, from the original {from_original:.2} dB"
    );
}

#[test]
fn a_lineage_that_cannot_be_trusted_is_broken_lineage() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert(&key("original.png"), png_bytes(&smooth(64, 48)));
    let out = |v: &str| json!([{"version": v, "format": "png"}]);
    let invert = json!([{"op": "invert"}]);
    succeed(
        &engine,
        &edit("original.png", None, invert.clone(), out("v2")),
    );
    succeed(&engine, &edit("v2.png", None, invert.clone(), out("v3")));

    // The original has no manifest: nothing to follow.
    let msg = fail(
        &engine,
        &storage,
        &edit("original.png", Some("original"), invert.clone(), out("x")),
        "broken_lineage",
    );
    assert!(msg.contains("no manifest"), "{msg}");
    // A source that does not exist is still source_not_found.
    fail(
        &engine,
        &storage,
        &edit("absent.png", Some("original"), invert.clone(), out("x")),
        "source_not_found",
    );

    // v3 changed outside imgworker: its bytes no longer match its manifest.
    let v3 = storage.object(&key("v3.png")).unwrap();
    storage.insert(&key("v3.png"), png_bytes(&smooth(64, 48)));
    let msg = fail(
        &engine,
        &storage,
        &edit("v3.png", Some("original"), invert.clone(), out("x")),
        "broken_lineage",
    );
    assert!(msg.contains("changed outside"), "{msg}");
    storage.insert(&key("v3.png"), v3);

    // An unreadable manifest.
    let v3_manifest = storage.object(&key("v3.json")).unwrap();
    storage.insert(&key("v3.json"), b"{not json".to_vec());
    let msg = fail(
        &engine,
        &storage,
        &edit("v3.png", Some("original"), invert.clone(), out("x")),
        "broken_lineage",
    );
    assert!(msg.contains("unreadable"), "{msg}");
    storage.insert(&key("v3.json"), v3_manifest);

    // A cycle: a manifest for the original claiming it was made from v2.
    let mut forged: Value =
        serde_json::from_slice(&storage.object(&key("v2.json")).unwrap()).unwrap();
    let original = storage.object(&key("original.png")).unwrap();
    forged["object"] = json!("original.png");
    forged["version"] = json!("original");
    forged["parent"] = json!("v2.png");
    forged["sha256"] = json!(hex(&Sha256::digest(&original)));
    forged["recipe"] = json!({"parent": "v2.png", "ops": [], "output": {"format": "png"}});
    storage.insert(&key("original.json"), serde_json::to_vec(&forged).unwrap());
    let msg = fail(
        &engine,
        &storage,
        &edit("v3.png", Some("original"), invert.clone(), out("x")),
        "broken_lineage",
    );
    assert!(msg.contains("cycle"), "{msg}");
    storage.remove(&key("original.json"));

    // The original gone: the chain's start does not exist.
    storage.remove(&key("original.png"));
    fail(
        &engine,
        &storage,
        &edit("v3.png", Some("original"), invert.clone(), out("x")),
        "source_not_found",
    );
    storage.insert(&key("original.png"), original);

    // Repaired, the same job renders.
    succeed(&engine, &edit("v3.png", Some("original"), invert, out("x")));
    // `from` is for edits only, and only `source` or `original`.
    let mut purge =
        json!({"schema": 1, "id": "p", "type": "purge", "image": IMAGE, "from": "original"});
    fail(&engine, &storage, &purge, "invalid_job");
    purge = edit("v3.png", Some("grandparent"), json!([]), out("y"));
    fail(&engine, &storage, &purge, "invalid_job");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
