//! In-memory storage, for tests and `memory://`. With the `test-hooks`
//! feature it can be told to fail writes after a number of successes, to
//! test that failed jobs leave nothing.

use std::collections::BTreeMap;
#[cfg(feature = "test-hooks")]
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{check_key, ObjectWriter, OnDeleted, Storage, StorageError};

/// A map from key to bytes.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    objects: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
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
        Ok(under(&map, &prefix)
            .map(|(k, _)| &k[prefix.len()..])
            .filter(|name| !name.contains('/'))
            .map(str::to_string)
            .collect())
    }

    async fn delete_tree(
        &self,
        dir: &str,
        deleted: &mut OnDeleted<'_>,
    ) -> Result<u64, StorageError> {
        check_key(dir)?;
        let prefix = format!("{dir}/");
        let mut count = 0;
        loop {
            let batch: Vec<String> = {
                let mut map = self.objects.lock().unwrap();
                let keys: Vec<String> = under(&map, &prefix)
                    .take(super::DELETE_BATCH)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in &keys {
                    map.remove(k);
                }
                keys
            };
            if batch.is_empty() {
                return Ok(count);
            }
            count += batch.len() as u64;
            deleted(&batch);
        }
    }

    async fn list_tree(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        check_key(dir)?;
        let prefix = format!("{dir}/");
        let map = self.objects.lock().unwrap();
        Ok(under(&map, &prefix)
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect())
    }

    async fn put_streamed(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        check_key(key)?;
        Ok(Box::new(MemoryWriter {
            objects: self.objects.clone(),
            key: key.to_string(),
            data: Vec::new(),
        }))
    }

    fn describe(&self) -> String {
        "memory://".into()
    }
}

/// The objects whose keys start with `prefix` (a folder and its `/`), in
/// key order.
fn under<'a>(
    map: &'a BTreeMap<String, Vec<u8>>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Vec<u8>)> {
    map.range(prefix.to_string()..)
        .take_while(move |(k, _)| k.starts_with(prefix))
}

/// A streamed write to memory: inserted whole on `finish`.
struct MemoryWriter {
    objects: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    key: String,
    data: Vec<u8>,
}

#[async_trait]
impl ObjectWriter for MemoryWriter {
    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), StorageError> {
        let Self { objects, key, data } = *self;
        objects.lock().unwrap().insert(key, data);
        Ok(())
    }

    async fn abort(self: Box<Self>) {}
}
