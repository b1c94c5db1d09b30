//! The same storage behaviour suite on every backend: round trips, atomic
//! replacement, folder listing, size limits, and keys that must be refused.

mod common;

use std::sync::Arc;

use imgworker::storage::{
    Keyring, LocalStorage, MemoryStorage, SealedStorage, Storage, StorageError,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn behaviour(s: Arc<dyn Storage>) {
    let name = s.describe();
    assert!(
        matches!(
            s.get("img/a.jpg", 100).await,
            Err(StorageError::NotFound(_))
        ),
        "{name}"
    );
    s.put("img/a.jpg", b"first").await.unwrap();
    assert_eq!(s.get("img/a.jpg", 100).await.unwrap(), b"first");
    s.put("img/a.jpg", b"second, longer").await.unwrap();
    assert_eq!(
        s.get("img/a.jpg", 100).await.unwrap(),
        b"second, longer",
        "{name}: replace"
    );
    assert!(
        matches!(
            s.get("img/a.jpg", 3).await,
            Err(StorageError::TooLarge { size: 14, .. })
        ),
        "{name}"
    );

    s.put("img/b.json", b"{}").await.unwrap();
    s.put("img/sub/c.png", b"c").await.unwrap();
    s.put("img2/d.png", b"d").await.unwrap();
    s.put("im/e.png", b"e").await.unwrap();
    assert_eq!(
        s.list("img").await.unwrap(),
        ["a.jpg", "b.json"],
        "{name}: direct children only"
    );
    assert_eq!(s.list("nothing/here").await.unwrap(), Vec::<String>::new());

    assert!(s.delete("img/a.jpg").await.unwrap());
    assert!(
        !s.delete("img/a.jpg").await.unwrap(),
        "{name}: second delete finds nothing"
    );
    assert_eq!(s.list("img").await.unwrap(), ["b.json"]);

    for bad in [
        "../x",
        "/etc/passwd",
        "img/../../x",
        "img//x",
        "img/.hidden",
        "img/./x",
        "",
        "img/x\0y",
        "img\\x",
    ] {
        assert!(
            matches!(s.put(bad, b"x").await, Err(StorageError::Forbidden(_))),
            "{name}: put {bad:?}"
        );
        assert!(
            matches!(s.get(bad, 10).await, Err(StorageError::Forbidden(_))),
            "{name}: get {bad:?}"
        );
    }
}

#[test]
fn s3_backend() {
    let s = common::s3_storage("storage-suite", "tenant/a");
    rt().block_on(behaviour(s.clone()));
    // The prefix confines it: another prefix of the same bucket sees nothing.
    let other = Arc::new(common::s3_at(
        &format!("http://{}", common::S3_ADDR),
        "storage-suite",
        "tenant/b",
    ));
    assert!(rt().block_on(other.list("img")).unwrap().is_empty());
}

#[test]
fn sealed_backend() {
    let keys = Keyring::parse("k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap();
    rt().block_on(behaviour(Arc::new(SealedStorage::new(
        Arc::new(MemoryStorage::new()),
        keys,
    ))));
}

#[test]
fn memory_backend() {
    rt().block_on(behaviour(Arc::new(MemoryStorage::new())));
}

#[test]
fn local_backend() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(behaviour(Arc::new(LocalStorage::new(dir.path()).unwrap())));
    // Nothing but the objects is left in the folder: no staging files.
    let mut found = Vec::new();
    for entry in walk(dir.path()) {
        found.push(
            entry
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    found.sort();
    assert_eq!(
        found,
        ["im/e.png", "img/b.json", "img/sub/c.png", "img2/d.png"]
    );
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn local_writes_are_atomic_under_concurrent_readers() {
    // Readers racing a writer that alternates two payloads only ever see one
    // of the two complete payloads, never a mix or a short read.
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(LocalStorage::new(dir.path()).unwrap());
    let a = vec![b'a'; 256 * 1024];
    let b = vec![b'b'; 300 * 1024];
    let rt = rt();
    rt.block_on(s.put("x/obj.bin", &a)).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (s, stop, a, b) = (s.clone(), stop.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = rt.block_on(s.get("x/obj.bin", 1 << 20)).unwrap();
                assert!(got == a || got == b, "torn read of {} bytes", got.len());
                reads += 1;
            }
            reads
        })
    };
    for i in 0..100 {
        rt.block_on(s.put("x/obj.bin", if i % 2 == 0 { &b } else { &a }))
            .unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(walk(dir.path()).len(), 1, "staging files left behind");
}

#[test]
fn open_picks_the_backend_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    assert!(imgworker::storage::open(&url)
        .unwrap()
        .describe()
        .starts_with("file://"));
    assert_eq!(
        imgworker::storage::open("memory://").unwrap().describe(),
        "memory://"
    );
}

/// A storage URL with a scheme no backend handles is a configuration error
/// of its own kind, never `storage_unavailable` (which the queue retries).
#[test]
fn an_unknown_storage_scheme_is_a_configuration_error() {
    for (url, scheme) in [
        ("ftp://host/x", "ftp"),
        ("gs://bucket", "gs"),
        ("S3://b", "S3"),
    ] {
        let err = imgworker::storage::open(url).unwrap_err();
        assert!(
            matches!(&err, StorageError::UnsupportedScheme(s) if s == scheme),
            "{url}: {err:?}"
        );
        assert!(err.is_config(), "{url}");
        assert!(
            err.to_string().contains("unsupported storage scheme"),
            "{err}"
        );
        // Were it ever to reach a job, it would not be a transient failure
        // of the store.
        let job_err = imgworker::JobError::from(err);
        assert_ne!(job_err.code, imgworker::ErrorCode::StorageUnavailable);
    }
    // A malformed s3:// URL is a configuration error too.
    for url in ["s3://", "s3:///prefix"] {
        let err = imgworker::storage::open(url).unwrap_err();
        assert!(matches!(err, StorageError::Config { .. }), "{url}: {err:?}");
    }
    // The transient kind stays what a store that fails gives.
    let unavailable = StorageError::unavailable("read failed", std::io::Error::other("EIO"));
    assert!(!unavailable.is_config());
    let job_err = imgworker::JobError::from(unavailable);
    assert_eq!(job_err.code, imgworker::ErrorCode::StorageUnavailable);
    assert_eq!(job_err.message, "storage unavailable: read failed: EIO");
    let source = std::error::Error::source(&job_err).expect("the storage error is kept");
    assert!(source.downcast_ref::<StorageError>().is_some());
}

/// The binary refuses such a URL at start-up: exit 2, no result, a clear
/// message, and nothing created.
#[test]
fn the_binary_exits_2_on_an_unknown_storage_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.json");
    std::fs::write(
        &job,
        r#"{"schema": 1, "id": "scheme", "type": "edit", "image": "a/b",
            "source": "original.png", "outputs": [{"version": "v", "format": "png"}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgworker"))
        .current_dir(dir.path())
        .args(["run", "--backend", "cpu", "--storage", "ftp://x/y"])
        .arg(&job)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "a result was printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("unsupported storage scheme \"ftp\""),
        "{stderr}"
    );
    assert!(!stderr.contains("storage unavailable"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the job file"
    );
}
