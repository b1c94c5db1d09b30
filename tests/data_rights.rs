//! The users' data rights (docs/contract.md, "Data rights"): an export
//! archives an image or a whole account (streamed, sealed when encryption
//! is on, within its limits, nothing visible when it fails, 1 GiB in
//! bounded memory); a recursive purge deletes a whole account, batch by
//! batch, on the S3 test server, on a local folder through `imgworker run`,
//! and through the queue, sparing sibling accounts; hostile folders are
//! refused.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::broker::{self, Worker};
use common::{cfg, memory_engine, png_bytes, run, sha256_hex, test_image};
use imgworker::backend::Backend;
use imgworker::pipeline::Engine;
use imgworker::storage::{Keyring, ObjectWriter, OnDeleted, SealedStorage, Storage, StorageError};
use serde_json::{json, Value};

/// The account the tests delete, its objects' folders, and what must
/// survive: a sibling whose name extends it, one it extends, and the
/// siblings' exports.
const ACCOUNT: &str = "users/42";
const SPARED: &[&str] = &[
    "users/420/images/1/original.png",
    "users/4/images/1/original.png",
    "users/42x/a.png",
    "exports/users/420/e1.tar",
    "other/42/images/1/original.png",
];

/// `n` keys of the account, spread over nested folders of 100 objects,
/// plus one export archive of the account.
fn account_keys(n: usize) -> Vec<String> {
    let mut keys: Vec<String> = (0..n)
        .map(|i| format!("{ACCOUNT}/images/{}/v{i}.png", i / 100))
        .collect();
    keys.push(format!("exports/{ACCOUNT}/e1.tar"));
    keys
}

fn purge(id: &str, image: &str) -> Value {
    json!({"schema": 1, "id": id, "type": "purge", "image": image, "recursive": true})
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Write `keys` (a few bytes each), 8 at a time: the S3 test server is
/// one Python process, and more at once only queue in it.
fn fill(storage: Arc<dyn Storage>, keys: Vec<String>) {
    block(async move {
        let mut set = tokio::task::JoinSet::new();
        for key in keys {
            let s = storage.clone();
            set.spawn(async move { s.put(&key, key.as_bytes()).await });
            while set.len() >= 8 {
                set.join_next().await.unwrap().unwrap().unwrap();
            }
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    });
}

#[test]
fn account_deletion_on_s3_deletes_2000_objects_and_spares_the_siblings() {
    let s3 = common::s3_storage("rights", "tenant");
    let keys = account_keys(2000);
    let mut all = keys.clone();
    all.extend(SPARED.iter().map(|k| k.to_string()));
    fill(s3.clone(), all);
    let engine = Engine::new(cfg(), s3.clone(), Backend::Cpu);

    let out = run(&engine, &purge("del-1", ACCOUNT));
    assert_eq!(
        out.result.error.as_ref().map(|e| e.code.as_str()),
        None,
        "{:?}",
        out.result.error
    );
    assert_eq!(out.result.removed, Some(keys.len() as u64));
    for folder in 0..20 {
        let dir = format!("{ACCOUNT}/images/{folder}");
        assert!(
            block(s3.list(&dir)).unwrap().is_empty(),
            "{dir} still holds objects"
        );
    }
    assert!(block(s3.list(&format!("exports/{ACCOUNT}")))
        .unwrap()
        .is_empty());
    for key in SPARED {
        assert_eq!(
            block(s3.get(key, 1 << 20)).unwrap(),
            key.as_bytes(),
            "{key} was touched"
        );
    }
    // Redelivered: nothing left to delete, and that is a success.
    let again = run(&engine, &purge("del-1", ACCOUNT));
    assert!(again.result.error.is_none(), "{:?}", again.result.error);
    assert_eq!(again.result.removed, Some(0));
}

fn imgworker(args: &[&str], store: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .args(args)
        .args(["--storage", store.to_str().unwrap(), "--backend", "cpu"])
        .env("IMGWORKER_LOG", "info")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn last_line(out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("no result line")).unwrap()
}

#[test]
fn account_deletion_on_a_local_folder_through_imgworker_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let local: Arc<dyn Storage> = Arc::new(imgworker::storage::LocalStorage::new(&store).unwrap());
    let keys = account_keys(2000);
    let mut all = keys.clone();
    all.extend(SPARED.iter().map(|k| k.to_string()));
    fill(local, all);
    // A staging file an interrupted write left behind holds data too.
    std::fs::write(store.join("users/42/images/3/.v7.png.1-1.partial"), b"x").unwrap();
    let job = dir.path().join("purge.json");
    std::fs::write(&job, purge("del-2", ACCOUNT).to_string()).unwrap();

    let trail = dir.path().join("audit.jsonl");
    let out = imgworker(
        &[
            "run",
            job.to_str().unwrap(),
            "--audit-file",
            trail.to_str().unwrap(),
        ],
        &store,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let result = last_line(&out);
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["removed"], keys.len() as u64 + 1, "{result}");
    // The audit file holds one JSON line per deleted object.
    let events: Vec<Value> = std::fs::read_to_string(&trail)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), keys.len() + 1);
    assert!(events
        .iter()
        .all(|e| e["job_id"] == "del-2" && e["action"] == "delete" && e["outcome"] == "ok"));
    let deleted: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["key"].as_str().unwrap()).collect();
    for key in &keys {
        assert!(deleted.contains(key.as_str()), "{key} not audited");
    }
    // Every deleted key is audited, once.
    let audited = stderr
        .lines()
        .filter(|l| l.contains("audit") && l.contains("action=\"delete\""))
        .count();
    assert_eq!(audited, keys.len() + 1, "audit lines");
    assert!(!store.join(ACCOUNT).exists(), "the account folder remains");
    assert!(!store.join("exports/users/42").exists());
    for key in SPARED {
        assert_eq!(
            std::fs::read(store.join(key)).unwrap(),
            key.as_bytes(),
            "{key}"
        );
    }
    let again = imgworker(&["run", job.to_str().unwrap()], &store);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(last_line(&again)["removed"], 0);
}

#[test]
fn hostile_account_folders_are_refused() {
    let (engine, storage) = memory_engine(cfg());
    storage.insert("users/42/images/1/original.png", b"x".to_vec());
    storage.insert("other/1/original.png", b"x".to_vec());
    for (image, code) in [
        ("", "forbidden_key"),
        ("/", "forbidden_key"),
        ("..", "forbidden_key"),
        ("users/..", "forbidden_key"),
        ("/users/42", "forbidden_key"),
        ("users/42/", "forbidden_key"),
        // Every account at once, or a folder outside the account roots.
        ("users", "forbidden_key"),
        ("other/1", "forbidden_key"),
        ("usersx/1", "forbidden_key"),
    ] {
        let out = run(&engine, &purge("bad", image));
        let err = out.result.error.as_ref().map(|e| e.code.as_str());
        assert_eq!(err, Some(code), "{image:?}: {:?}", out.result.error);
    }
    // `recursive` belongs to purges, and is a boolean.
    let mut edit = json!({"schema": 1, "id": "e", "type": "edit", "image": "users/42/images/1",
        "source": "original.png", "outputs": [{"version": "v", "format": "png"}], "recursive": true});
    let out = run(&engine, &edit);
    assert_eq!(out.result.error.unwrap().code.as_str(), "invalid_job");
    edit = json!({"schema": 1, "id": "p", "type": "purge", "image": ACCOUNT, "recursive": "yes"});
    let out = run(&engine, &edit);
    assert_eq!(out.result.error.unwrap().code.as_str(), "invalid_job");
    // Nothing was deleted by the refused jobs.
    assert_eq!(storage.keys().len(), 2);
    // Another account root, configured.
    let mut c = cfg();
    c.data_rights.account_roots = vec!["tenants".into()];
    let (engine, storage) = memory_engine(c);
    storage.insert("tenants/7/a/b.png", b"x".to_vec());
    let out = run(&engine, &purge("t", "tenants/7"));
    assert_eq!(out.result.removed, Some(1), "{:?}", out.result.error);
    let out = run(&engine, &purge("u", ACCOUNT));
    assert_eq!(out.result.error.unwrap().code.as_str(), "forbidden_key");
}

#[test]
fn an_export_prefix_inside_an_account_root_stops_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("purge.json");
    std::fs::write(&job, purge("x", ACCOUNT).to_string()).unwrap();
    for extra in [
        &["--export-prefix", "users/exports"][..],
        &["--export-prefix", "users/42"][..],
        &["--account-root", "exports/users"][..],
        &["--export-prefix", "../x"][..],
    ] {
        let mut args = vec!["run", job.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = imgworker(&args, &dir.path().join("store"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("export_prefix") || stderr.contains("account root"),
            "{extra:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_deletion_through_the_queue() {
    let url = broker::vhost("rights");
    broker::prepare(&url, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let local: Arc<dyn Storage> = Arc::new(imgworker::storage::LocalStorage::new(&store).unwrap());
    let keys = account_keys(300);
    let mut all = keys.clone();
    all.extend(SPARED.iter().map(|k| k.to_string()));
    tokio::task::spawn_blocking(move || fill(local, all))
        .await
        .unwrap();
    let w = Worker::start(&url, &store, &[]);
    // The user asks for their data, then deletes their account.
    broker::publish(
        &url,
        &[serde_json::to_vec(&export("q-export", ACCOUNT, true)).unwrap()],
        None,
    )
    .await;
    broker::wait_depth(&url, "test.results", 1, Duration::from_secs(60), Some(&w)).await;
    let exported = broker::results(&url).await;
    assert_eq!(exported[0]["status"], "succeeded", "{exported:?}");
    assert_eq!(
        exported[0]["export"]["objects"],
        keys.len() as u64 - 1,
        "{exported:?}"
    );
    let archive = store.join("exports/users/42/q-export.tar");
    let index = entries(&std::fs::read(&archive).unwrap()).pop().unwrap();
    assert_eq!(index.0, "index.json");

    let bodies: Vec<Vec<u8>> = [
        purge("q-del", ACCOUNT),
        purge("q-root", "users"),
        purge("q-outside", "other/42"),
    ]
    .iter()
    .map(|j| serde_json::to_vec(j).unwrap())
    .collect();
    broker::publish(&url, &bodies, None).await;
    broker::wait_depth(&url, "test.results", 3, Duration::from_secs(60), Some(&w)).await;
    let results = broker::results(&url).await;
    let by_id = |id: &str| {
        results
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no result for {id}: {results:?}"))
    };
    assert_eq!(by_id("q-del")["status"], "succeeded", "{results:?}");
    // The account's objects, its earlier export and the new one.
    assert_eq!(by_id("q-del")["removed"], keys.len() as u64 + 1);
    for id in ["q-root", "q-outside"] {
        assert_eq!(by_id(id)["error"]["code"], "forbidden_key", "{results:?}");
    }
    assert!(!store.join(ACCOUNT).exists());
    assert!(!archive.exists());
    for key in SPARED {
        assert!(store.join(key).exists(), "{key}");
    }
    // The audit trail holds exactly these jobs' accesses: the export read
    // every object and wrote the archive, the deletion deleted every
    // object and both archives, the refused jobs touched nothing.
    let mut got = std::collections::BTreeSet::new();
    let mut messages = 0;
    for (_, body) in broker::drain_queue(&url, "imgworker.audit").await {
        let e: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(e["outcome"], "ok", "{e}");
        assert!(e["worker"].as_str().is_some_and(|w| !w.is_empty()), "{e}");
        got.insert((
            e["job_id"].as_str().unwrap().to_string(),
            e["action"].as_str().unwrap().to_string(),
            e["key"].as_str().unwrap().to_string(),
        ));
        messages += 1;
    }
    let mut want = std::collections::BTreeSet::new();
    let account: Vec<&String> = keys.iter().filter(|k| k.starts_with(ACCOUNT)).collect();
    for key in &account {
        want.insert(("q-export".to_string(), "read".to_string(), key.to_string()));
        want.insert(("q-del".to_string(), "delete".to_string(), key.to_string()));
    }
    want.insert((
        "q-export".into(),
        "write".into(),
        "exports/users/42/q-export.tar".into(),
    ));
    for archive in ["exports/users/42/e1.tar", "exports/users/42/q-export.tar"] {
        want.insert(("q-del".into(), "delete".into(), archive.into()));
    }
    assert_eq!(got, want);
    assert_eq!(messages, want.len(), "an access recorded twice");
}

// ---- Export ----------------------------------------------------------------

fn export(id: &str, image: &str, recursive: bool) -> Value {
    json!({"schema": 1, "id": id, "type": "export", "image": image, "recursive": recursive})
}

/// The entries of a tar archive: (path, bytes), in order.
fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

/// Two images of account `users/7`, each an original and an edited version
/// with its manifest (one re-edited), a large object (several sealing
/// segments), and a sibling account.
fn account_with_versions(storage: &Arc<dyn Storage>) -> Vec<String> {
    let engine = Engine::new(cfg(), storage.clone(), Backend::Cpu);
    for (n, image) in ["users/7/images/1", "users/7/images/2"].iter().enumerate() {
        let src = png_bytes(&test_image(40, 30, n as u32 + 1, false));
        block(storage.put(&format!("{image}/original.png"), &src)).unwrap();
        let edit = json!({"schema": 1, "id": format!("e{n}"), "type": "edit", "image": image,
            "source": "original.png", "ops": [{"op": "invert"}],
            "outputs": [{"version": "v1", "format": "png"}]});
        assert!(run(&engine, &edit).result.error.is_none());
    }
    let reedit = json!({"schema": 1, "id": "e9", "type": "edit", "image": "users/7/images/1",
        "source": "v1.png", "ops": [{"op": "flip", "axis": "vertical"}],
        "outputs": [{"version": "v2", "format": "png"}]});
    assert!(run(&engine, &reedit).result.error.is_none());
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    block(storage.put("users/7/notes/big.bin", &big)).unwrap();
    block(storage.put("users/70/images/1/original.png", b"sibling")).unwrap();
    let mut keys: Vec<String> = block(storage.list_tree("users/7"))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys
}

fn succeeded(out: &imgworker::pipeline::Outcome) -> imgworker::result::ExportResult {
    assert!(out.result.error.is_none(), "{:?}", out.result.error);
    out.result.export.clone().expect("an export result")
}

#[test]
fn an_account_export_on_s3_holds_every_object_and_an_index_and_is_deterministic() {
    let s3 = common::s3_storage("export", "plain");
    let storage: Arc<dyn Storage> = s3.clone();
    let keys = account_with_versions(&storage);
    assert_eq!(keys.len(), 9, "{keys:?}");
    let engine = Engine::new(cfg(), storage.clone(), Backend::Cpu);

    let first = succeeded(&run(&engine, &export("x-1", "users/7", true)));
    assert_eq!(first.key, "exports/users/7/x-1.tar");
    assert_eq!(first.objects, keys.len() as u64);
    let archive = block(s3.get(&first.key, 1 << 30)).unwrap();
    assert_eq!(archive.len() as u64, first.bytes);
    assert_eq!(sha256_hex(&archive), first.sha256);
    let got = entries(&archive);
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    let mut want: Vec<&str> = keys.iter().map(String::as_str).collect();
    want.push("index.json");
    assert_eq!(
        paths, want,
        "every object once, in key order, the index last"
    );
    for (path, data) in &got[..keys.len()] {
        assert_eq!(data, &block(s3.get(path, 1 << 30)).unwrap(), "{path}");
    }
    // The index describes each image, its objects and its versions' lineage.
    let index: Value = serde_json::from_slice(&got.last().unwrap().1).unwrap();
    assert_eq!(index["folder"], "users/7");
    assert_eq!(index["objects"], keys.len());
    let images: Vec<&str> = index["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        ["users/7/images/1", "users/7/images/2", "users/7/notes"]
    );
    let first_image = &index["images"][0];
    let versions = first_image["versions"].as_array().unwrap();
    let lineage: Vec<(&str, &str)> = versions
        .iter()
        .map(|m| (m["object"].as_str().unwrap(), m["parent"].as_str().unwrap()))
        .collect();
    assert_eq!(lineage, [("v1.png", "original.png"), ("v2.png", "v1.png")]);
    for o in first_image["objects"].as_array().unwrap() {
        let path = o["path"].as_str().unwrap();
        let data = &got.iter().find(|(p, _)| p == path).unwrap().1;
        assert_eq!(o["sha256"], sha256_hex(data), "{path}");
    }
    assert!(
        !paths.iter().any(|p| p.starts_with("users/70")),
        "a sibling was exported"
    );

    // Redelivered: the same archive, byte for byte, under the same key.
    let again = succeeded(&run(&engine, &export("x-1", "users/7", true)));
    assert_eq!(again, first);
    // One image only: its own objects, none of the nested or sibling ones.
    let one = succeeded(&run(&engine, &export("x-2", "users/7/images/2", false)));
    assert_eq!(one.key, "exports/users/7/images/2/x-2.tar");
    let got = entries(&block(s3.get(&one.key, 1 << 30)).unwrap());
    let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "users/7/images/2/original.png",
            "users/7/images/2/v1.json",
            "users/7/images/2/v1.png",
            "index.json"
        ]
    );
    // Account deletion removes the account's exports with it.
    let purged = run(&engine, &purge("x-3", "users/7"));
    assert_eq!(purged.result.removed, Some(keys.len() as u64 + 2));
    assert!(block(s3.list_tree("exports/users/7")).unwrap().is_empty());
    assert!(block(s3.get("users/70/images/1/original.png", 100)).is_ok());
}

const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

#[test]
fn an_export_is_sealed_segment_by_segment_when_encryption_is_on() {
    let s3 = common::s3_storage("export", "sealed");
    let sealed: Arc<dyn Storage> =
        Arc::new(SealedStorage::new(s3.clone(), Keyring::parse(K1).unwrap()));
    let keys = account_with_versions(&sealed);
    let engine = Engine::new(cfg(), sealed.clone(), Backend::Cpu);
    let result = succeeded(&run(&engine, &export("s-1", "users/7", true)));
    assert!(
        result.bytes > 3 * 65_536,
        "several segments: {}",
        result.bytes
    );
    let raw = block(s3.get(&result.key, 1 << 30)).unwrap();
    assert!(
        raw.starts_with(b"IWSEAL2\0"),
        "not the streamed sealed format"
    );
    for clear in [&b"index.json"[..], b"original.png", b"\x89PNG"] {
        assert!(
            !raw.windows(clear.len()).any(|w| w == clear),
            "plaintext in the sealed archive"
        );
    }
    let opened = block(sealed.get(&result.key, 1 << 30)).unwrap();
    assert_eq!(sha256_hex(&opened), result.sha256);
    assert_eq!(entries(&opened).len(), keys.len() + 1);
    // Altered anywhere, truncated at a segment boundary, or moved to
    // another key, it does not open.
    let header = 8 + 1 + 2 + 7;
    let segment = 65_536 + 16;
    let mut altered = raw.clone();
    altered[header + segment + 100] ^= 1;
    let truncated = raw[..header + 2 * segment].to_vec();
    for (key, bytes) in [
        ("exports/users/7/t1.tar", altered),
        ("exports/users/7/t2.tar", truncated),
        ("exports/users/7/t3.tar", raw.clone()),
    ] {
        block(s3.put(key, &bytes)).unwrap();
        let e = block(sealed.get(key, 1 << 30)).unwrap_err();
        assert!(matches!(e, StorageError::Sealed(_)), "{key}: {e}");
    }
}

#[test]
fn export_limits_and_hostile_exports_write_nothing() {
    let (_, storage) = memory_engine(cfg());
    let storage: Arc<dyn Storage> = storage;
    account_with_versions(&storage);
    let mut c = cfg();
    c.limits.max_export_objects = 3;
    let out = run(
        &Engine::new(c, storage.clone(), Backend::Cpu),
        &export("l-1", "users/7", true),
    );
    assert_eq!(out.result.error.unwrap().code.as_str(), "limit_exceeded");
    let mut c = cfg();
    c.limits.max_export_bytes = 1000;
    let out = run(
        &Engine::new(c, storage.clone(), Backend::Cpu),
        &export("l-2", "users/7", true),
    );
    assert_eq!(out.result.error.unwrap().code.as_str(), "limit_exceeded");
    let engine = Engine::new(cfg(), storage.clone(), Backend::Cpu);
    for image in ["", "/", "..", "users", "other/7", "users/7/../70"] {
        let out = run(&engine, &export("h", image, true));
        assert_eq!(
            out.result.error.unwrap().code.as_str(),
            "forbidden_key",
            "{image:?}"
        );
    }
    let with_ops =
        json!({"schema": 1, "id": "h2", "type": "export", "image": "users/7", "ops": []});
    assert_eq!(
        run(&engine, &with_ops).result.error.unwrap().code.as_str(),
        "invalid_job"
    );
    assert!(block(storage.list_tree("exports")).unwrap().is_empty());
}

/// A store whose reads of one key fail, to stop an export midway.
#[derive(Debug)]
struct FailingRead {
    inner: Arc<dyn Storage>,
    key: String,
}

#[async_trait::async_trait]
impl Storage for FailingRead {
    async fn get(&self, key: &str, max: u64) -> Result<Vec<u8>, StorageError> {
        if key == self.key {
            return Err(StorageError::Forbidden(format!(
                "injected failure reading {key}"
            )));
        }
        self.inner.get(key, max).await
    }
    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        self.inner.put(key, data).await
    }
    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        self.inner.delete(key).await
    }
    async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        self.inner.list(dir).await
    }
    async fn delete_tree(
        &self,
        dir: &str,
        deleted: &mut OnDeleted<'_>,
    ) -> Result<u64, StorageError> {
        self.inner.delete_tree(dir, deleted).await
    }
    async fn list_tree(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        self.inner.list_tree(dir).await
    }
    async fn put_streamed(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        self.inner.put_streamed(key).await
    }
    fn describe(&self) -> String {
        "failing".into()
    }
}

#[test]
fn an_export_that_fails_midway_leaves_no_archive() {
    let s3 = common::s3_storage("export", "failing");
    let storage: Arc<dyn Storage> = s3.clone();
    // Enough before the failing object to upload parts (8 MiB each).
    let filler: Vec<u8> = (0..(20u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    block(s3.put("users/8/a/big.bin", &filler)).unwrap();
    block(s3.put("users/8/b/original.png", b"x")).unwrap();
    let failing = Arc::new(FailingRead {
        inner: storage,
        key: "users/8/b/original.png".into(),
    });
    let engine = Engine::new(cfg(), failing, Backend::Cpu);
    let out = run(&engine, &export("f-1", "users/8", true));
    assert_eq!(out.result.error.unwrap().code.as_str(), "forbidden_key");
    assert!(
        block(s3.list_tree("exports/users/8")).unwrap().is_empty(),
        "a partial archive is visible"
    );
}

/// Peak resident memory of the children this process has waited for, in
/// bytes.
fn children_peak_rss() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn a_1_gib_export_through_imgworker_run_stays_under_300_mib() {
    const OBJECTS: usize = 64;
    const SIZE: usize = 16 << 20;
    let s3 = common::s3_storage("export", "big");
    let storage: Arc<dyn Storage> = s3.clone();
    block(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..OBJECTS {
            let s = storage.clone();
            set.spawn(async move {
                let data: Vec<u8> = (0..SIZE as u32)
                    .map(|j| ((j ^ (i as u32) << 24).wrapping_mul(2_654_435_761) >> 7) as u8)
                    .collect();
                s.put(&format!("users/9/images/{}/v{i}.bin", i / 8), &data)
                    .await
            });
            while set.len() >= 4 {
                set.join_next().await.unwrap().unwrap().unwrap();
            }
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("export.json");
    std::fs::write(&job, export("big-1", "users/9", true).to_string()).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgworker"));
    let out = common::s3_env(&mut cmd)
        .args([
            "run",
            job.to_str().unwrap(),
            "--storage",
            "s3://export/big",
            "--backend",
            "cpu",
        ])
        .env("IMGWORKER_LOG", "warn")
        .output()
        .unwrap();
    let peak = children_peak_rss();
    eprintln!("exported 1 GiB with a peak RSS of {} MiB", peak >> 20);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = last_line(&out);
    assert_eq!(result["export"]["objects"], OBJECTS, "{result}");
    let bytes = result["export"]["bytes"].as_u64().unwrap();
    assert!(bytes > (OBJECTS * SIZE) as u64, "{bytes}");
    let stored = block(s3.list_tree("exports/users/9")).unwrap();
    assert_eq!(stored, [("exports/users/9/big-1.tar".to_string(), bytes)]);
    assert!(
        peak < 300 << 20,
        "peak RSS {} MiB exporting {} MiB",
        peak >> 20,
        bytes >> 20
    );
    // Free the test server's memory.
    block(s3.delete_tree("users/9", &mut |_| {})).unwrap();
    block(s3.delete_tree("exports/users/9", &mut |_| {})).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_audit_events_are_not_kept_is_not_acked_until_they_are() {
    use lapin::options::QueueBindOptions;
    use lapin::types::FieldTable;
    let url = broker::vhost("audit-refused");
    broker::prepare(&url, 5).await;
    let (_dir, store) = broker::store_with_source((64, 48));
    // A job whose events come back goes back to the queue after 0.5, 1,
    // 2, 4 s: the refusal below (about 3 s) does not use up its 5
    // deliveries.
    let w = Worker::start(&url, &store, &["--retry-backoff-ms", "500"]);
    w.wait_ready();
    // No queue takes the audit events (unbound after the worker declared
    // its topology): the broker returns them.
    let conn = broker::connect(&url).await;
    let ch = conn.create_channel().await.unwrap();
    ch.queue_unbind(
        "imgworker.audit".into(),
        "imgworker.audit".into(),
        "".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let job = json!({"schema": 1, "id": "audited", "type": "edit", "image": "t/img",
        "source": "original.png", "outputs": [{"version": "v1", "format": "png"}]});
    broker::publish(&url, &[serde_json::to_vec(&job).unwrap()], None).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        broker::depth(&url, "test.results").await,
        Some(0),
        "a result was published although its audit events were not kept; log:\n{}",
        w.log()
    );
    assert!(
        w.log().contains("routed a publish to no queue"),
        "the returned events went unnoticed; log:\n{}",
        w.log()
    );
    // The audit queue is bound again: the next attempt is kept and acked.
    ch.queue_bind(
        "imgworker.audit".into(),
        "imgworker.audit".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    conn.close(200, "ok".into()).await.unwrap();
    broker::wait_depth(&url, "test.results", 1, Duration::from_secs(60), Some(&w)).await;
    let results = broker::results(&url).await;
    assert_eq!(results[0]["status"], "succeeded", "{results:?}");
    let kept: Vec<(String, String)> = broker::drain_queue(&url, "imgworker.audit")
        .await
        .iter()
        .map(|(_, body)| {
            let e: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(e["job_id"], "audited");
            (
                e["action"].as_str().unwrap().to_string(),
                e["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("read", "t/img/original.png"),
        ("read", "t/img/original.json"),
        ("write", "t/img/v1.png"),
        ("write", "t/img/v1.json"),
    ]
    .iter()
    .map(|(a, k)| (a.to_string(), k.to_string()))
    .collect();
    assert_eq!(kept, want, "the kept attempt's events, once");
    assert_eq!(broker::depth(&url, "imgworker.dead").await, Some(0));
}
