//! An epoll instance's interest list, as Linux keeps it: an entry per (descriptor, open
//! file) added, its events and data, until removed or the open file is gone (every
//! descriptor to it closed: the entry holds it weakly). Readiness is level-triggered: an
//! entry is reported for as long as its file is ready, once if EPOLLONESHOT until it is
//! modified.

use std::rc::{Rc, Weak};

use super::fd::OpenFile;

pub struct Entry {
    pub fd: u64,
    pub file: Weak<OpenFile>,
    pub events: u32,
    pub data: u64,
    /// EPOLLONESHOT reported: nothing more until EPOLL_CTL_MOD.
    pub spent: bool,
}

#[derive(Default)]
pub struct Interest {
    pub entries: Vec<Entry>,
}

impl Entry {
    /// Whether this is the entry for descriptor `fd` naming `file`.
    pub fn is(&self, fd: u64, file: &Rc<OpenFile>) -> bool {
        self.fd == fd && self.file.upgrade().is_some_and(|f| Rc::ptr_eq(&f, file))
    }
}

impl Interest {
    /// The entry for descriptor `fd` naming `file`, if it is still there.
    pub fn find(&mut self, fd: u64, file: &Rc<OpenFile>) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.is(fd, file))
    }

    /// Drops the entries whose open file is gone, as Linux does when it is released.
    pub fn forget_closed(&mut self) {
        self.entries.retain(|e| e.file.strong_count() > 0);
    }
}
