//! A local folder as storage (the embedded default).
//!
//! Writes never expose a partial object: data goes into an anonymous
//! `O_TMPFILE` inode in the target folder, is synced, and is then linked
//! into place, so a crash at any point leaves either nothing or the whole
//! object. Replacing an existing object links under a hidden name and renames
//! over the old one (hidden names are never listed). Where the filesystem has
//! no `O_TMPFILE`, the hidden name is written directly and removed on failure.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{check_key, Storage, StorageError};

/// Storage in a folder of the local filesystem.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

static STAGING_SEQ: AtomicU64 = AtomicU64::new(0);

fn unavailable(what: &str, e: std::io::Error) -> StorageError {
    StorageError::unavailable(what, e)
}

impl LocalStorage {
    /// Use `root` (created if missing).
    pub fn new(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root).map_err(|e| unavailable("cannot create storage folder", e))?;
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn staging_name(dest: &Path) -> PathBuf {
        let n = STAGING_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = dest
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        dest.with_file_name(format!(".{name}.{}-{n}.partial", std::process::id()))
    }

    fn put_sync(dest: &Path, data: &[u8]) -> std::io::Result<()> {
        let dir = dest
            .parent()
            .ok_or_else(|| std::io::Error::other("key has no folder"))?;
        fs::create_dir_all(dir)?;
        match OpenOptions::new()
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
        {
            Ok(mut f) => {
                f.write_all(data)?;
                f.sync_data()?;
                match link_anonymous(&f, dest) {
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        let staged = Self::staging_name(dest);
                        link_anonymous(&f, &staged)?;
                        fs::rename(&staged, dest).inspect_err(|_| {
                            let _ = fs::remove_file(&staged);
                        })?;
                    }
                    other => other?,
                }
            }
            Err(_) => {
                let staged = Self::staging_name(dest);
                let res = (|| {
                    let mut f = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o644)
                        .open(&staged)?;
                    f.write_all(data)?;
                    f.sync_data()?;
                    fs::rename(&staged, dest)
                })();
                if res.is_err() {
                    let _ = fs::remove_file(&staged);
                }
                res?;
            }
        }
        File::open(dir)?.sync_all()
    }
}

/// Give an `O_TMPFILE` inode a name.
fn link_anonymous(f: &File, dest: &Path) -> std::io::Result<()> {
    let src =
        CString::new(format!("/proc/self/fd/{}", f.as_raw_fd())).map_err(std::io::Error::other)?;
    let dst = CString::new(dest.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            src.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StorageError> {
        let path = self.path(key)?;
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let f = File::open(&path).map_err(|e| match e.kind() {
                ErrorKind::NotFound => StorageError::NotFound(key.clone()),
                _ => unavailable("read failed", e),
            })?;
            let meta = f.metadata().map_err(|e| unavailable("read failed", e))?;
            if !meta.is_file() {
                return Err(StorageError::NotFound(key));
            }
            if meta.len() > max_bytes {
                return Err(StorageError::TooLarge {
                    key,
                    size: meta.len(),
                    max: max_bytes,
                });
            }
            let mut buf = Vec::with_capacity(meta.len() as usize);
            f.take(max_bytes + 1)
                .read_to_end(&mut buf)
                .map_err(|e| unavailable("read failed", e))?;
            if buf.len() as u64 > max_bytes {
                return Err(StorageError::TooLarge {
                    key,
                    size: buf.len() as u64,
                    max: max_bytes,
                });
            }
            Ok(buf)
        })
        .await
        .map_err(|e| StorageError::unavailable("read task failed", e))?
    }

    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key)?;
        let data = data.to_vec();
        tokio::task::spawn_blocking(move || Self::put_sync(&path, &data))
            .await
            .map_err(|e| StorageError::unavailable("write task failed", e))?
            .map_err(|e| unavailable("write failed", e))
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| *d != self.root) {
                    let _ = fs::remove_dir(dir); // only succeeds when empty
                }
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(unavailable("delete failed", e)),
        }
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>, StorageError> {
        let path = self.path(dir)?;
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(unavailable("list failed", e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| unavailable("list failed", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn describe(&self) -> String {
        // Absolute, so that a message names the folder whatever the
        // reader's working directory.
        let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        format!("file://{}", root.display())
    }
}
