//! Working directories for the three runs: each starts as a copy of the user's, at the
//! same path (so that getcwd agrees), and what the run wrote is read off afterwards.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::observed::FileChange;

/// The most a working directory copied for each run may hold.
pub const MAX_COPY_BYTES: u64 = 64 << 20;

/// A new empty directory under the system's temporary directory, removed with all it
/// holds when dropped (on every path out, errors included).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> io::Result<Self> {
        static DIRS: AtomicUsize = AtomicUsize::new(0);
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ringsim-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Entries by relative path: regular files with their bytes, directories, and symbolic
/// links with their targets (not followed, so only what the run itself made is seen).
pub type Tree = BTreeMap<String, FileChange>;

/// Copies `from` into the empty directory `to`: directories, regular files, and symbolic
/// links as links. Fails when the regular files exceed `MAX_COPY_BYTES`.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let mut budget = MAX_COPY_BYTES;
    copy_into(from, to, &mut budget)
}

fn copy_into(from: &Path, to: &Path, budget: &mut u64) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(from)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        } else if kind.is_dir() {
            std::fs::create_dir(&target)?;
            copy_into(&entry.path(), &target, budget)?;
            keep_times(&entry.metadata()?, &target)?;
        } else if kind.is_file() {
            let size = entry.metadata()?.len();
            *budget = budget.checked_sub(size).ok_or_else(|| {
                io::Error::other(format!(
                    "the working directory holds more than {} MiB of files, which --check \
                     copies for each run: run it from a smaller directory",
                    MAX_COPY_BYTES >> 20
                ))
            })?;
            std::fs::copy(entry.path(), &target)?;
            keep_times(&entry.metadata()?, &target)?;
        }
    }
    Ok(())
}

/// Gives the copy its original's access and modification times, as `cp -a` does: a program
/// shows them (`ls -l`, gzip's header, tar's), and each run's copy is made at another moment.
fn keep_times(original: &std::fs::Metadata, copy: &Path) -> io::Result<()> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    use std::os::unix::fs::MetadataExt;
    let accessed = TimeSpec::new(original.atime(), original.atime_nsec());
    let modified = TimeSpec::new(original.mtime(), original.mtime_nsec());
    // By path, so that a copy the user may not open still gets them.
    utimensat(
        nix::fcntl::AT_FDCWD,
        copy,
        &accessed,
        &modified,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// What is under `dir`.
pub fn read_tree(dir: &Path) -> io::Result<Tree> {
    let mut tree = Tree::new();
    read_into(dir, dir, &mut tree)?;
    Ok(tree)
}

fn read_into(root: &Path, dir: &Path, tree: &mut Tree) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .expect("under the root")
            .display()
            .to_string();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path)?.display().to_string();
            tree.insert(relative, FileChange::Symlink(target));
        } else if kind.is_dir() {
            tree.insert(relative, FileChange::Directory);
            read_into(root, &path, tree)?;
        } else if kind.is_file() {
            tree.insert(relative, FileChange::Written(std::fs::read(&path)?));
        }
    }
    Ok(())
}

/// What changed from `before` to `after`.
pub fn changes(before: &Tree, after: &Tree) -> BTreeMap<String, FileChange> {
    let mut changes = BTreeMap::new();
    for (path, entry) in after {
        if before.get(path) != Some(entry) {
            changes.insert(path.clone(), entry.clone());
        }
    }
    for path in before.keys().filter(|p| !after.contains_key(*p)) {
        changes.insert(path.clone(), FileChange::Removed);
    }
    changes
}
