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

use super::{check_key, ObjectWriter, OnDeleted, Storage, StorageError};

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
        let mut staged = Staged::new(dest)?;
        staged.file.write_all(data)?;
        staged.commit(dest)
    }
}

/// A file being written that no listing shows yet: an anonymous
/// `O_TMPFILE` inode, or where the filesystem has none a hidden name
/// (removed if the write is given up).
struct Staged {
    file: File,
    hidden: Option<PathBuf>,
}

impl Staged {
    /// Start a file that will become `dest`.
    fn new(dest: &Path) -> std::io::Result<Self> {
        let dir = dest
            .parent()
            .ok_or_else(|| std::io::Error::other("key has no folder"))?;
        fs::create_dir_all(dir)?;
        if let Ok(file) = OpenOptions::new()
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_TMPFILE)
            .open(dir)
        {
            return Ok(Self { file, hidden: None });
        }
        let staged = LocalStorage::staging_name(dest);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&staged)?;
        Ok(Self {
            file,
            hidden: Some(staged),
        })
    }

    /// Sync the data and give the file its name, replacing any object
    /// there, then sync the folder.
    fn commit(mut self, dest: &Path) -> std::io::Result<()> {
        let res = self.link(dest);
        if res.is_ok() {
            // Named now: nothing to clean up.
            self.hidden = None;
        }
        res?;
        let dir = dest
            .parent()
            .ok_or_else(|| std::io::Error::other("key has no folder"))?;
        File::open(dir)?.sync_all()
    }

    fn link(&self, dest: &Path) -> std::io::Result<()> {
        self.file.sync_data()?;
        match &self.hidden {
            Some(hidden) => fs::rename(hidden, dest),
            None => match link_anonymous(&self.file, dest) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let staged = LocalStorage::staging_name(dest);
                    link_anonymous(&self.file, &staged)?;
                    fs::rename(&staged, dest).inspect_err(|_| {
                        let _ = fs::remove_file(&staged);
                    })
                }
                other => other,
            },
        }
    }
}

impl Drop for Staged {
    /// A write given up leaves nothing: the anonymous inode goes with its
    /// descriptor, a hidden name is removed.
    fn drop(&mut self) {
        if let Some(hidden) = &self.hidden {
            let _ = fs::remove_file(hidden);
        }
    }
}

/// A streamed write to a local file ([`Storage::put_streamed`]).
struct LocalWriter {
    staged: Option<Staged>,
    dest: PathBuf,
}

#[async_trait]
impl ObjectWriter for LocalWriter {
    async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let mut staged = self
            .staged
            .take()
            .ok_or_else(|| StorageError::unavailable_because("write after a failed write"))?;
        let data = data.to_vec();
        let (staged, res) = tokio::task::spawn_blocking(move || {
            let res = staged.file.write_all(&data);
            (staged, res)
        })
        .await
        .map_err(|e| StorageError::unavailable("write task failed", e))?;
        res.map_err(|e| unavailable("write failed", e))?;
        self.staged = Some(staged);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StorageError> {
        let staged = self
            .staged
            .take()
            .ok_or_else(|| StorageError::unavailable_because("finish after a failed write"))?;
        let dest = self.dest.clone();
        tokio::task::spawn_blocking(move || staged.commit(&dest))
            .await
            .map_err(|e| StorageError::unavailable("write task failed", e))?
            .map_err(|e| unavailable("write failed", e))
    }

    async fn abort(self: Box<Self>) {}
}

/// Every regular file under `top`, sorted; a missing `top` has none.
fn walk_files(top: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![top.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let t = entry.file_type()?;
            if t.is_dir() {
                dirs.push(entry.path());
            } else if t.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Delete `files`, returning the keys (paths under `root`) deleted and the
/// error that stopped it, if one did. A file already gone is skipped.
fn delete_files(root: &Path, files: Vec<PathBuf>) -> (Vec<String>, Option<std::io::Error>) {
    let mut keys = Vec::with_capacity(files.len());
    for f in files {
        match fs::remove_file(&f) {
            Ok(()) => keys.push(
                f.strip_prefix(root)
                    .unwrap_or(&f)
                    .to_string_lossy()
                    .into_owned(),
            ),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return (keys, Some(e)),
        }
    }
    (keys, None)
}

/// Remove `top` and the folders under it that are empty, deepest first.
fn remove_empty_dirs(top: &Path) {
    let mut dirs = vec![top.to_path_buf()];
    let mut all = Vec::new();
    while let Some(d) = dirs.pop() {
        if let Ok(entries) = fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(e.path());
                }
            }
        }
        all.push(d);
    }
    // Deeper folders come later in `all`; a folder that is not empty stays.
    for d in all.iter().rev() {
        let _ = fs::remove_dir(d);
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

    async fn list_tree(&self, dir: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let top = self.path(dir)?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for f in walk_files(&top)? {
                let key = f
                    .strip_prefix(&root)
                    .unwrap_or(&f)
                    .to_string_lossy()
                    .into_owned();
                // Hidden staging files are writes in progress, not objects.
                if key.split('/').any(|seg| seg.starts_with('.')) {
                    continue;
                }
                let size = fs::metadata(&f)?.len();
                out.push((key, size));
            }
            out.sort();
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::unavailable("list task failed", e))?
        .map_err(|e: std::io::Error| unavailable("list failed", e))
    }

    async fn put_streamed(&self, key: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        let dest = self.path(key)?;
        let d = dest.clone();
        let staged = tokio::task::spawn_blocking(move || Staged::new(&d))
            .await
            .map_err(|e| StorageError::unavailable("write task failed", e))?
            .map_err(|e| unavailable("write failed", e))?;
        Ok(Box::new(LocalWriter {
            staged: Some(staged),
            dest,
        }))
    }

    async fn delete_tree(
        &self,
        dir: &str,
        deleted: &mut OnDeleted<'_>,
    ) -> Result<u64, StorageError> {
        let top = self.path(dir)?;
        let root = self.root.clone();
        // One walk lists the folder's files (keys only, never content),
        // hidden staging files of interrupted writes included: they hold
        // data too.
        let files = tokio::task::spawn_blocking(move || walk_files(&top))
            .await
            .map_err(|e| StorageError::unavailable("list task failed", e))?
            .map_err(|e| unavailable("list failed", e))?;
        let mut count = 0;
        for chunk in files.chunks(super::DELETE_BATCH) {
            let chunk = chunk.to_vec();
            let root = root.clone();
            let keys = tokio::task::spawn_blocking(move || delete_files(&root, chunk))
                .await
                .map_err(|e| StorageError::unavailable("delete task failed", e))?;
            let (keys, err) = keys;
            count += keys.len() as u64;
            if !keys.is_empty() {
                deleted(&keys);
            }
            if let Some(e) = err {
                return Err(unavailable("delete failed", e));
            }
        }
        let top = self.path(dir)?;
        tokio::task::spawn_blocking(move || remove_empty_dirs(&top))
            .await
            .map_err(|e| StorageError::unavailable("delete task failed", e))?;
        Ok(count)
    }

    fn describe(&self) -> String {
        // Absolute, so that a message names the folder whatever the
        // reader's working directory.
        let root = std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone());
        format!("file://{}", root.display())
    }
}
