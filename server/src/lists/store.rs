//! Where API lists are kept: the file store (one JSON file per list under `[lists] dir`,
//! replaced atomically) or the Redis store the fleet shares.

use super::{ApiList, redis_store::RedisStore};
use crate::config::ListsConfig;
use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

/// The store `[lists] store` names.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    File(FileStore),
    Redis(RedisStore),
}

impl Store {
    /// The store of `config`; an invalid Redis URL is an error (nothing connects yet).
    pub(crate) fn from_config(config: &ListsConfig) -> redis::RedisResult<Self> {
        Ok(match config.redis_target() {
            Some(target) => Self::Redis(RedisStore::new(
                &target,
                &config.redis_prefix,
                Duration::from_millis(config.redis_timeout_ms),
            )?),
            None => Self::File(FileStore::new(config.dir.clone())),
        })
    }
}

/// Why the store could not read or write.
#[derive(Debug, thiserror::Error)]
#[error("list store {path}: {reason}")]
pub(crate) struct StoreError {
    path: PathBuf,
    reason: String,
}

impl StoreError {
    fn new(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Lists as `<dir>/<name>.json`.
#[derive(Debug, Clone)]
pub(crate) struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Every stored list; a missing folder holds none. A file that does not parse is an error
    /// naming it (the server does not start on lists it cannot read).
    pub(crate) fn load(&self) -> Result<Vec<ApiList>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::new(&self.dir, e)),
        };
        let mut lists = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| StoreError::new(&self.dir, e))?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| StoreError::new(&path, e))?;
            let list: ApiList =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::new(&path, e))?;
            lists.push(list);
        }
        lists.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(lists)
    }

    /// Writes `list` aside, syncs it and renames it over the old file: a reader (or a crash)
    /// sees the old list or the new one, never half.
    pub(crate) fn save(&self, list: &ApiList) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StoreError::new(&self.dir, e))?;
        let path = self.path(&list.name);
        let aside = self.dir.join(format!(".{}.json.tmp", list.name));
        let json = serde_json::to_vec(list).map_err(|e| StoreError::new(&path, e))?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&aside)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&aside, &path)?;
            // the rename itself is durable once the folder is synced
            std::fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| StoreError::new(&path, e))
    }

    /// Removes the file of list `name` (a missing file is no error).
    pub(crate) fn delete(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::new(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lists::{Kind, WordMeta};
    use espresso_filter_core::Level;

    #[test]
    fn a_saved_list_loads_back_and_a_deleted_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("lists"));
        assert!(store.load().unwrap().is_empty());
        let mut list = ApiList::new(
            "spam".into(),
            "campaign spam".into(),
            Level::Normal,
            Kind::Deny,
        );
        list.words.insert("cheap pills".into(), WordMeta::default());
        store.save(&list).unwrap();
        store.save(&list).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded, vec![list]);
        // no file is left aside
        assert_eq!(
            std::fs::read_dir(dir.path().join("lists")).unwrap().count(),
            1
        );
        store.delete("spam").unwrap();
        store.delete("spam").unwrap();
        assert!(store.load().unwrap().is_empty());
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.json"), "{").unwrap();
        let err = FileStore::new(dir.path().into()).load().unwrap_err();
        assert!(err.to_string().contains("x.json"), "{err}");
    }
}
