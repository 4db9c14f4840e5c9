//! `--sysroot DIR`, as qemu-user's `-L`: an absolute path the guest names, and the
//! interpreter a program names, are looked up under DIR first, and on the host when DIR has
//! no such file. A symbolic link in DIR whose target is absolute (Debian's
//! `/lib64/ld-linux-x86-64.so.2`) is followed within DIR, as a chroot would follow it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Linux's limit on symbolic links followed in one lookup.
const MAX_LINKS: usize = 40;

/// Where the guest's absolute `path` is under `root`, if a file is there.
pub fn resolve(root: &Path, path: &[u8]) -> Option<PathBuf> {
    let mut candidate = root.join(OsStr::from_bytes(path.strip_prefix(b"/")?));
    for _ in 0..MAX_LINKS {
        let metadata = std::fs::symlink_metadata(&candidate).ok()?;
        if !metadata.file_type().is_symlink() {
            return Some(candidate);
        }
        let target = std::fs::read_link(&candidate).ok()?;
        candidate = match target.strip_prefix("/") {
            Ok(inside) => root.join(inside),
            Err(_) => candidate.parent()?.join(target),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_links_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let lib = root.path().join("lib");
        std::fs::create_dir(&lib).unwrap();
        std::fs::write(lib.join("ld.so"), b"loader").unwrap();
        std::os::unix::fs::symlink("/lib/ld.so", root.path().join("ld-link")).unwrap();
        std::os::unix::fs::symlink("lib/ld.so", root.path().join("relative")).unwrap();
        assert_eq!(resolve(root.path(), b"/ld-link"), Some(lib.join("ld.so")));
        assert_eq!(resolve(root.path(), b"/relative"), Some(lib.join("ld.so")));
        assert_eq!(resolve(root.path(), b"/missing"), None);
        assert_eq!(resolve(root.path(), b"relative"), None);
    }
}
