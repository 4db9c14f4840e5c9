//! What each area maps (a file, from which offset), and `/proc/self/maps` as Linux 6.1's
//! `show_map_vma` writes it.

use std::fmt::Write;
use std::ops::Range;
use std::path::PathBuf;

use super::{Prot, Vma};

/// A file some area maps: its path and its identity, as `stat` gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    pub path: PathBuf,
    pub dev: u64,
    pub inode: u64,
    /// Its size when mapped: pages past it are SIGBUS to touch.
    pub size: u64,
}

impl MappedFile {
    /// The file at `path` on the host, whose files the guest's are.
    pub fn at(path: PathBuf) -> Option<Self> {
        let stat = nix::sys::stat::stat(&path).ok()?;
        Some(Self {
            path,
            dev: stat.st_dev,
            inode: stat.st_ino,
            size: stat.st_size as u64,
        })
    }
}

/// The file an area maps (its index in the address space's files) and the file offset of
/// the area's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileArea {
    pub file: u32,
    pub offset: u64,
    /// MAP_SHARED (read-only: writable shared file mappings are refused).
    pub shared: bool,
}

impl FileArea {
    /// The same file `bytes` further on: the part of an area that starts that far in.
    pub fn advanced(self, bytes: u64) -> Self {
        Self {
            offset: self.offset + bytes,
            ..self
        }
    }
}

/// Whether an area mapping `before` for `before_len` bytes and the one after it map one
/// stretch: both no file, or one file continuously (then they may be one area).
pub fn continues(before: Option<FileArea>, before_len: u64, after: Option<FileArea>) -> bool {
    match (before, after) {
        (None, None) => true,
        (Some(b), Some(a)) => {
            b.file == a.file && b.shared == a.shared && b.offset + before_len == a.offset
        }
        _ => false,
    }
}

/// Linux's width of the fields before a name: `25 + sizeof(void *) * 6 - 1`.
const NAME_COLUMN: usize = 72;

/// `/proc/self/maps` for `areas`: the heap is the area overlapping `heap` (the break's range,
/// as Linux names it), the stack the area holding `stack`.
pub fn render(
    areas: impl Iterator<Item = (u64, Vma)>,
    files: &[MappedFile],
    heap: Range<u64>,
    stack: u64,
) -> String {
    let mut out = String::new();
    for (start, vma) in areas {
        let flag = |bit: u32, c: char| if vma.prot.0 & bit != 0 { c } else { '-' };
        let file = vma
            .file
            .map(|area| (&files[area.file as usize], area.offset));
        let (offset, dev, inode) = file.map_or((0, 0, 0), |(f, offset)| (offset, f.dev, f.inode));
        let line_start = out.len();
        let _ = write!(
            out,
            "{start:08x}-{:08x} {}{}{}{} {offset:08x} {:02x}:{:02x} {inode} ",
            vma.end,
            flag(Prot::READ, 'r'),
            flag(Prot::WRITE, 'w'),
            flag(Prot::EXEC, 'x'),
            if vma.shared_anonymous || vma.file.is_some_and(|area| area.shared) {
                's'
            } else {
                'p'
            },
            nix::sys::stat::major(dev),
            nix::sys::stat::minor(dev),
        );
        let name = match file {
            Some((f, _)) => Some(f.path.to_string_lossy().into_owned()),
            // shmem's name for it.
            None if vma.shared_anonymous => Some("/dev/zero (deleted)".into()),
            None if start <= heap.end && vma.end >= heap.start => Some("[heap]".into()),
            None if start <= stack && vma.end >= stack => Some("[stack]".into()),
            None => None,
        };
        if let Some(name) = name {
            let written = out.len() - line_start;
            out.push_str(&" ".repeat(NAME_COLUMN.saturating_sub(written)));
            out.push(' ');
            out.push_str(&name);
        }
        out.push('\n');
    }
    out
}
