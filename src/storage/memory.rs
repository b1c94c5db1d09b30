//! In-memory storage, for tests and `memory://`. With the `test-hooks`
//! feature it can be told to fail writes after a number of successes, to
//! test that failed jobs leave nothing.

use std::collections::BTreeMap;
#[cfg(feature = "test-hooks")]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{check_key, Storage, StorageError};

/// A map from key to bytes.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    #[cfg(feature = "test-hooks")]
    writes_left: AtomicUsize,
    #[cfg(feature = "test-hooks")]
    fail_writes: AtomicBool,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every write after the next `n` fail with `Unavailable` (a test
    /// hook: only with the `test-hooks` feature).
    #[cfg(feature = "test-hooks")]
    pub fn fail_writes_after(&self, n: usize) {
        self.writes_left.store(n, Ordering::SeqCst);
        self.fail_writes.store(true, Ordering::SeqCst);
    }

    /// Whether the next write must fail ([`Self::fail_writes_after`]).
    #[cfg(feature = "test-hooks")]
    fn injected_failure(&self) -> bool {
        self.fail_writes.load(Ordering::SeqCst)
            && self
                .writes_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
    }

    /// Without the `test-hooks` feature no write is made to fail.
    #[cfg(not(feature = "test-hooks"))]
    fn injected_failure(&self) -> bool {
        false
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    /// Insert directly (test set-up).
    pub fn insert(&self, key: &str, data: Vec<u8>) {
        self.objects.lock().unwrap().insert(key.to_string(), data);
    }

    /// Read directly (test checks).
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(key).cloned()
    }

    /// Remove directly (test set-up).
    pub fn remove(&self, key: &str) {
        self.objects.lock().unwrap().remove(key);
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StorageError> {
        check_key(key)?;
        let map = self.objects.lock().unwrap();
        let data = map
            .get(key)
            .ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        if data.len() as u64 > max_bytes {
            return Err(StorageError::TooLarge {
                key: key.to_string(),
                size: data.len() as u64,
                max: max_bytes,
            });
        }
        Ok(data.clone())
    }

    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        check_key(key)?;
        if self.injected_failure() {
            return Err(StorageError::unavailable_because("injected write failure"));
        }
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_string(), data.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        check_key(key)?;
        Ok(self.objects.lock().unwrap().remove(key).is_some())
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        check_key(dir)?;
        let prefix = format!("{dir}/");
        let map = self.objects.lock().unwrap();
        Ok(map
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| &k[prefix.len()..])
            .filter(|name| !name.contains('/'))
            .map(str::to_string)
            .collect())
    }

    fn describe(&self) -> String {
        "memory://".into()
    }
}
