//! C2PA Content Credentials (docs/contract.md, "Content Credentials"),
//! read back by an independent reader: the c2pa-python package
//! (`tests/tools/c2pa_tool.py`, installed in `target/test-venv` by
//! scripts/test.sh), with the test CA (`tests/fixtures/c2pa`) as its only
//! trust anchor. Every
//! output format is signed through `imgworker run`; three re-edits of an
//! AI generator's signed image through the queue on the S3 test server
//! keep the generator's manifest and chain the versions as the worker's
//! own manifests do; a tampered version reads as invalid; a key that does
//! not match its certificate, or a certificate C2PA refuses, stops the
//! worker at start-up.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::broker::{self, Worker};
use common::{png_bytes, test_image};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_imgworker");
const IPTC: &str = "http://cv.iptc.org/newscodes/digitalsourcetype/";

/// The test PKI (`tests/fixtures/c2pa`, made by its `make.sh`): a CA and,
/// signed by it, the worker's certificate (EC P-256), an AI image
/// generator's, one without the extended key usage C2PA requires
/// (`no-eku`), and a key that belongs to no certificate (`stray.key`).
struct Pki;

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/c2pa")
            .join(name)
    }

    /// `imgworker` flags signing with the certificate chain `cert` and `key`.
    fn flags(&self, cert: &str, key: &str) -> Vec<String> {
        vec![
            "--c2pa-cert-file".into(),
            self.path(cert).display().to_string(),
            "--c2pa-key-file".into(),
            self.path(key).display().to_string(),
        ]
    }
}

/// Run `tests/tools/c2pa_tool.py` with `args` in the test virtualenv's
/// Python; its stdout.
fn c2pa_tool<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh, which installs c2pa-python into target/test-venv",
        python.display()
    );
    let out = Command::new(python)
        .arg(root.join("tests/tools/c2pa_tool.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "c2pa_tool.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What the independent reader says about each file, in order.
fn read_c2pa(files: &[&Path]) -> Vec<Value> {
    let ca = Pki.path("ca.pem");
    let args = [Path::new("read"), &ca]
        .into_iter()
        .chain(files.iter().copied());
    String::from_utf8(c2pa_tool(args))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The active manifest of a store.
fn active(store: &Value) -> &Value {
    let label = store["active_manifest"]
        .as_str()
        .expect("an active manifest");
    &store["manifests"][label]
}

/// The actions of a manifest's `c2pa.actions.v2` assertion.
fn actions(manifest: &Value) -> Vec<Value> {
    manifest["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"] == "c2pa.actions.v2")
        .map(|a| a["data"]["actions"].as_array().unwrap().clone())
        .unwrap_or_default()
}

/// The manifest's only `parentOf` ingredient.
fn parent(manifest: &Value) -> &Value {
    let parents: Vec<&Value> = manifest["ingredients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["relationship"] == "parentOf")
        .collect();
    assert_eq!(parents.len(), 1, "{manifest:#}");
    parents[0]
}

fn imgworker(args: &[&str], extra: &[String]) -> Output {
    Command::new(BIN)
        .args(args)
        .args(extra)
        .args(["--backend", "cpu"])
        .env("IMGWORKER_LOG", "info")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The action each recipe op is recorded as.
fn c2pa_action(op: &str) -> &'static str {
    match op {
        "resize" => "c2pa.resized",
        "crop" | "trim" => "c2pa.cropped",
        "rotate" | "flip" | "auto_orient" => "c2pa.orientation",
        "adjust" | "grayscale" | "invert" | "sepia" | "levels" | "curves" | "lut" => {
            "c2pa.color_adjustments"
        }
        "blur" | "sharpen" | "pixelate" => "c2pa.filtered",
        _ => "c2pa.edited",
    }
}

/// Check a version's store against the worker's own manifest of it: the
/// actions are `c2pa.opened`, the recipe's ops in order, and
/// `c2pa.converted` when the format changed; each carries the declared
/// source type; the parent is the manifest's parent.
fn assert_matches_recipe(store: &Value, ours: &Value, parent_format: &str, source_type: &str) {
    let m = active(store);
    assert_eq!(m["title"], ours["object"]);
    let acts = actions(m);
    let mut want = vec![("c2pa.opened".to_string(), Value::Null)];
    for op in ours["recipe"]["ops"].as_array().unwrap() {
        let name = op["op"].as_str().unwrap();
        want.push((c2pa_action(name).into(), json!(name)));
    }
    if ours["format"] != parent_format {
        want.push(("c2pa.converted".into(), Value::Null));
    }
    let got: Vec<(String, Value)> = acts
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["parameters"]["op"].clone(),
            )
        })
        .collect();
    assert_eq!(got, want, "{m:#}");
    for a in &acts {
        assert_eq!(
            a["digitalSourceType"],
            format!("{IPTC}{source_type}"),
            "{a:#}"
        );
        assert_eq!(a["softwareAgent"]["name"], "imgworker", "{a:#}");
    }
    assert_eq!(parent(m)["title"], ours["parent"], "{m:#}");
}

/// No user or image id, no job id, no storage key, no location.
fn assert_no_personal_data(store: &Value, forbidden: &[&str]) {
    let text = store.to_string();
    for f in forbidden {
        assert!(!text.contains(f), "the manifest store holds {f:?}: {text}");
    }
    for tag in [
        "exif:GPS",
        "stds.exif",
        "stds.schema-org.CreativeWork",
        "c2pa.training-mining",
    ] {
        assert!(
            !text.contains(tag),
            "the manifest store holds {tag}: {text}"
        );
    }
}

#[test]
fn every_output_format_carries_content_credentials_that_match_the_recipe() {
    let pki = Pki;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let image = "users/7163901/images/3";
    std::fs::create_dir_all(store.join(image)).unwrap();
    std::fs::write(
        store.join(image).join("original.png"),
        png_bytes(&test_image(96, 64, 5, false)),
    )
    .unwrap();
    let job = dir.path().join("job.json");
    let formats = ["jpeg", "png", "webp", "avif"];
    std::fs::write(
        &job,
        json!({
            "schema": 1, "id": "cc-formats-91", "type": "edit", "image": image,
            "source": "original.png",
            "digital_source_type": "trainedAlgorithmicMedia",
            "ops": [{"op": "resize", "width": 80}, {"op": "adjust", "brightness": 0.1}],
            "outputs": formats.iter().map(|f| json!({
                "version": format!("v-{f}"), "format": f,
                "ops": [{"op": "rotate", "degrees": 90}, {"op": "sharpen", "sigma": 1.0}],
            })).collect::<Vec<_>>(),
        })
        .to_string(),
    )
    .unwrap();
    let storage = store.display().to_string();
    let out = imgworker(
        &["run", job.to_str().unwrap(), "--storage", &storage],
        &pki.flags("worker.chain", "worker.key"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<PathBuf> = result["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| store.join(image).join(o["object"].as_str().unwrap()))
        .collect();
    assert_eq!(files.len(), formats.len());
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let read = read_c2pa(&paths);
    for ((file, r), output) in files
        .iter()
        .zip(&read)
        .zip(result["outputs"].as_array().unwrap())
    {
        assert_eq!(r["state"], "Trusted", "{}: {r:#}", file.display());
        assert_eq!(r["codes"], json!([]), "{}", file.display());
        let ours: Value =
            serde_json::from_slice(&std::fs::read(file.with_extension("json")).unwrap()).unwrap();
        // The manifest and the result describe the signed bytes.
        let bytes = std::fs::read(file).unwrap();
        assert_eq!(ours["sha256"], common::sha256_hex(&bytes));
        assert_eq!(output["sha256"], ours["sha256"]);
        assert_matches_recipe(&r["store"], &ours, "png", "trainedAlgorithmicMedia");
        assert_eq!(
            active(&r["store"])["claim_generator_info"][0]["name"],
            "imgworker"
        );
        assert_no_personal_data(
            &r["store"],
            &["users", "7163901", "images/3", "cc-formats-91"],
        );
    }

    // Each signed version is still an image: a re-edit of each decodes it.
    for f in formats {
        let job2 = dir.path().join(format!("re-{f}.json"));
        std::fs::write(
            &job2,
            json!({
                "schema": 1, "id": format!("cc-re-{f}"), "type": "edit", "image": image,
                "source": format!("v-{f}.{}", if f == "jpeg" { "jpg" } else { f }),
                "outputs": [{"version": format!("w-{f}"), "format": "png"}],
            })
            .to_string(),
        )
        .unwrap();
        let out = imgworker(&["run", job2.to_str().unwrap(), "--storage", &storage], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // A re-edit rendered from the original names the version it was asked
    // to edit as its parent, and keeps that version's manifest.
    let job3 = dir.path().join("from-original.json");
    std::fs::write(
        &job3,
        json!({
            "schema": 1, "id": "cc-from-original", "type": "edit", "image": image,
            "source": "v-png.png", "from": "original",
            "ops": [{"op": "flip", "axis": "horizontal"}],
            "outputs": [{"version": "x-png", "format": "png"}],
        })
        .to_string(),
    )
    .unwrap();
    let out = imgworker(
        &["run", job3.to_str().unwrap(), "--storage", &storage],
        &pki.flags("worker.chain", "worker.key"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let x = store.join(image).join("x-png.png");
    let ours: Value =
        serde_json::from_slice(&std::fs::read(x.with_extension("json")).unwrap()).unwrap();
    let r = &read_c2pa(&[&x])[0];
    assert_eq!(r["state"], "Trusted", "{r:#}");
    assert_eq!(ours["parent"], "v-png.png");
    let m = active(&r["store"]);
    assert_eq!(parent(m)["title"], "v-png.png", "{m:#}");
    let kept = parent(m)["active_manifest"]
        .as_str()
        .expect("v-png's manifest is kept");
    assert_eq!(r["store"]["manifests"][kept]["title"], "v-png.png");
    let got: Vec<String> = actions(m)
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, ["c2pa.opened", "c2pa.orientation"]);

    // A version whose pixels are changed after signing reads as invalid.
    let png = store.join(image).join("v-png.png");
    let mut bytes = std::fs::read(&png).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 0x5a;
    let tampered = dir.path().join("tampered.png");
    std::fs::write(&tampered, &bytes).unwrap();
    // And a version written without credentials carries none.
    let unsigned = store.join(image).join("w-png.png");
    let read = read_c2pa(&[&tampered, &unsigned]);
    assert_eq!(read[0]["state"], "Invalid", "{:#}", read[0]);
    assert!(
        read[0]["codes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains("mismatch")),
        "{:#}",
        read[0]
    );
    assert_eq!(read[1]["state"], "None", "{:#}", read[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_re_edits_through_the_queue_keep_the_generators_manifest_and_chain_the_versions() {
    let pki = Pki;
    let s3 = common::s3_storage("provenance", "chain");
    let image = "users/8402217/images/20";
    // An AI generator signed the original: c2pa.created, trainedAlgorithmicMedia.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.png");
    std::fs::write(&plain, png_bytes(&test_image(120, 80, 9, false))).unwrap();
    let generated = dir.path().join("generated.png");
    c2pa_tool([
        PathBuf::from("generate"),
        pki.path("generator.chain"),
        pki.path("generator.key"),
        plain,
        generated.clone(),
    ]);
    use imgworker::storage::Storage;
    s3.put(
        &format!("{image}/original.png"),
        &std::fs::read(&generated).unwrap(),
    )
    .await
    .unwrap();

    let url = broker::vhost("provenance");
    broker::prepare(&url, 5).await;
    let flags = pki.flags("worker.chain", "worker.key");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let vars = common::s3_vars();
    let mut env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("IMGWORKER_LOG", "info,lapin=off"));
    let w = Worker::spawn(&url, Path::new("s3://provenance/chain"), &flags, &env);
    // Each edit is published once the one before has its result.
    let chain = [
        (
            "original.png",
            "v1",
            "jpeg",
            json!([{"op": "crop", "x": 4, "y": 4, "width": 100, "height": 70}]),
        ),
        ("v1.jpg", "v2", "png", json!([{"op": "grayscale"}])),
        (
            "v2.png",
            "v3",
            "webp",
            json!([{"op": "resize", "width": 50}, {"op": "blur", "sigma": 0.8}]),
        ),
    ];
    for (n, (source, version, format, ops)) in chain.iter().enumerate() {
        let job = json!({
            "schema": 1, "id": format!("cc-chain-{n}"), "type": "edit", "image": image,
            "source": source, "ops": ops,
            "digital_source_type": "compositeWithTrainedAlgorithmicMedia",
            "outputs": [{"version": version, "format": format}],
        });
        broker::publish(&url, &[serde_json::to_vec(&job).unwrap()], None).await;
        broker::wait_depth(
            &url,
            "test.results",
            n as u64 + 1,
            Duration::from_secs(60),
            Some(&w),
        )
        .await;
    }
    let results = broker::results(&url).await;
    assert!(
        results.iter().all(|r| r["status"] == "succeeded"),
        "{results:#?}\n{}",
        w.log()
    );

    // The versions and the worker's own manifests, from the S3 test server.
    let mut files = Vec::new();
    let mut ours = Vec::new();
    for (object, version) in [("v1.jpg", "v1"), ("v2.png", "v2"), ("v3.webp", "v3")] {
        let bytes = s3.get(&format!("{image}/{object}"), 1 << 24).await.unwrap();
        let file = dir.path().join(object);
        std::fs::write(&file, bytes).unwrap();
        files.push(file);
        let m = s3
            .get(&format!("{image}/{version}.json"), 1 << 20)
            .await
            .unwrap();
        ours.push(serde_json::from_slice::<Value>(&m).unwrap());
    }
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let read = read_c2pa(&paths);
    let formats = ["png", "jpeg", "png"];
    for ((r, m), parent_format) in read.iter().zip(&ours).zip(formats) {
        assert_eq!(r["state"], "Trusted", "{r:#}");
        assert_matches_recipe(
            &r["store"],
            m,
            parent_format,
            "compositeWithTrainedAlgorithmicMedia",
        );
        assert_no_personal_data(
            &r["store"],
            &[
                "users",
                "8402217",
                "images/20",
                "cc-chain",
                "s3:",
                "provenance/chain",
            ],
        );
    }

    // v3's store holds the whole chain: follow each parent ingredient to
    // its manifest, as the worker's manifests follow `parent`, back to the
    // generator's, kept whole and still valid.
    let store = &read[2]["store"];
    assert_eq!(
        store["manifests"].as_object().unwrap().len(),
        4,
        "{store:#}"
    );
    let mut manifest = active(store);
    for m in ours.iter().rev() {
        assert_eq!(manifest["title"], m["object"]);
        let p = parent(manifest);
        assert_eq!(p["title"], m["parent"]);
        let label = p["active_manifest"]
            .as_str()
            .expect("the parent's manifest is kept");
        manifest = &store["manifests"][label];
    }
    assert_eq!(
        manifest["claim_generator_info"][0]["name"],
        "test-image-generator"
    );
    let created = actions(manifest);
    assert_eq!(created[0]["action"], "c2pa.created");
    assert_eq!(
        created[0]["digitalSourceType"],
        format!("{IPTC}trainedAlgorithmicMedia")
    );
    // The generator's signature is still its own, from its own certificate.
    assert!(manifest["signature_info"]["common_name"]
        .as_str()
        .unwrap()
        .contains("generator"));
    assert!(active(store)["signature_info"]["common_name"]
        .as_str()
        .unwrap()
        .contains("worker"));
}

#[test]
fn credentials_that_cannot_sign_stop_the_worker_at_start_up() {
    let pki = Pki;
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        json!({"schema": 1, "id": "x", "type": "edit", "image": "u/1", "source": "original.png",
               "outputs": [{"version": "v"}]})
        .to_string(),
    )
    .unwrap();
    let storage = dir.path().join("store").display().to_string();
    let key_text = std::fs::read_to_string(pki.path("stray.key")).unwrap();
    let key_body = key_text.lines().nth(1).unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            pki.flags("worker.chain", "stray.key"),
            "does not match the certificate",
        ),
        (
            pki.flags("no-eku.chain", "no-eku.key"),
            "cannot sign Content Credentials",
        ),
        (
            pki.flags("worker.chain", "worker.chain"),
            "not a PKCS#8 PEM key",
        ),
        (
            pki.flags("stray.chain", "worker.key"),
            "reading the C2PA certificate",
        ),
        (
            pki.flags("worker.key", "worker.key"),
            "holds no PEM certificate",
        ),
        (
            pki.flags("worker.chain", "worker.key")[..2].to_vec(),
            "only the certificate is set",
        ),
    ];
    for (flags, message) in cases {
        for cmd in ["run", "serve"] {
            let args: Vec<&str> = match cmd {
                "run" => vec!["run", job.to_str().unwrap(), "--storage", &storage],
                _ => vec![
                    "serve",
                    "--storage",
                    &storage,
                    "--amqp-url",
                    "amqp://127.0.0.1:1/%2f",
                ],
            };
            let out = imgworker(&args, &flags);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{cmd} {flags:?}: {stderr}");
            assert!(stderr.contains(message), "{cmd} {flags:?}: {stderr}");
            assert!(!stderr.contains(&key_body), "the key was logged: {stderr}");
        }
    }
    // The key from the environment, as a secret, works like the file.
    let out = Command::new(BIN)
        .args([
            "run",
            job.to_str().unwrap(),
            "--storage",
            &storage,
            "--backend",
            "cpu",
        ])
        .args(&pki.flags("worker.chain", "worker.key")[..2])
        .env("IMGWORKER_C2PA_KEY", &key_text)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not match the certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains(&key_body), "the key was logged: {stderr}");
}

#[test]
fn a_digital_source_type_outside_the_vocabulary_or_on_a_purge_is_an_invalid_job() {
    let (engine, _) = common::memory_engine(common::cfg());
    let edit = json!({"schema": 1, "id": "t", "type": "edit", "image": "u/1",
                      "source": "original.png", "digital_source_type": "aiGenerated",
                      "outputs": [{"version": "v", "format": "png"}]});
    let purge = json!({"schema": 1, "id": "t", "type": "purge", "image": "u/1",
                       "digital_source_type": "trainedAlgorithmicMedia"});
    for job in [edit, purge] {
        let out = common::run(&engine, &job);
        let error = out.result.error.expect("refused");
        assert_eq!(
            error.code.as_str(),
            "invalid_job",
            "{job}: {}",
            error.message
        );
    }
}
