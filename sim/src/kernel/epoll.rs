//! An epoll instance's interest list, as Linux keeps it: an entry per (descriptor, open
//! file) added, its events and data, until removed or the open file is gone (every
//! descriptor to it closed: the entry holds it weakly). A level-triggered entry is reported
//! for as long as its file is ready, once if EPOLLONESHOT until it is modified. An
//! edge-triggered one (EPOLLET) is reported when its file is ready and has changed since it
//! was last reported: Linux queues an entry when the file wakes its waiters (bytes in or
//! out, an end closed), and here each modelled file counts those changes (`changes`).

use std::rc::{Rc, Weak};

use super::fd::{Channel, OpenFile};
use super::pipe::Changes;
use super::signal::SignalView;

pub struct Entry {
    pub fd: u64,
    pub file: Weak<OpenFile>,
    pub events: u32,
    pub data: u64,
    /// EPOLLONESHOT reported: nothing more until EPOLL_CTL_MOD.
    pub spent: bool,
    /// EPOLLET: the file's changes that concern the entry when it was last reported
    /// (`None`: not since added or modified).
    pub reported_at: Option<Changes>,
}

/// EPOLLET.
pub const EDGE_TRIGGERED: u32 = 1 << 31;

/// The changes of `file` that concern an entry asking for `events`: those for its readers
/// if it asks for EPOLLIN, for its writers if EPOLLOUT. A host descriptor's are not seen;
/// a signalfd's are the signals that came for the caller's process (`view`).
pub fn changes(file: &OpenFile, events: u32, view: SignalView) -> Changes {
    let all = match &file.channel {
        Channel::Pipe(end) => end.pipe.borrow().changes,
        Channel::Socket(socket) => super::socket::changes(socket),
        Channel::Event(end) => end.counter.borrow().changes,
        Channel::Timer(end) => end.timer.borrow().changes,
        Channel::Signal(_) => Changes {
            for_readers: view.arrivals,
            for_writers: 0,
        },
        Channel::Host | Channel::HostSocket(_) | Channel::Random | Channel::Epoll(_) => {
            Changes::default()
        }
    };
    let wants = |bit: i32| events & bit as u32 != 0;
    Changes {
        for_readers: if wants(libc::EPOLLIN) {
            all.for_readers
        } else {
            0
        },
        for_writers: if wants(libc::EPOLLOUT) {
            all.for_writers
        } else {
            0
        },
    }
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
