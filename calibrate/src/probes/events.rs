//! The event-loop probe: epoll_wait returning N ready events at once, so that a fit over N
//! parts the call's own cost from each ready event's (the item's poll and the record's copy
//! to user memory).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Sample, Workload};
use crate::clock::ticks;
use crate::error::expect;
use crate::CalibrateError;

/// The size of a `struct epoll_event` on x86-64 (packed): the probe's sizes are these
/// records' bytes, as the simulator counts an epoll_wait's bytes copied out.
pub(super) const EVENT_BYTES: usize = 12;

/// The ready events an epoll_wait returns in each of the probe's sizes.
pub(super) const READY: [usize; 4] = [1, 8, 64, 256];

/// Those sizes in bytes of records.
pub(super) const SIZES: [usize; 4] = [
    READY[0] * EVENT_BYTES,
    READY[1] * EVENT_BYTES,
    READY[2] * EVENT_BYTES,
    READY[3] * EVENT_BYTES,
];

const PROBE: &str = "epoll_wait";

/// An epoll instance for each count of `READY`, watching that many eventfds level-triggered,
/// each with a count that is never read, so that every one stays ready.
struct ReadyEpolls {
    /// (ready events, the epoll instance).
    instances: Vec<(usize, OwnedFd)>,
    /// Held open for the instances' sake.
    _eventfds: Vec<OwnedFd>,
    events: Vec<libc::epoll_event>,
}

fn owned(raw: libc::c_int, call: &'static str) -> Result<OwnedFd, CalibrateError> {
    if raw < 0 {
        return Err(CalibrateError::last_os(PROBE, call));
    }
    // SAFETY: a descriptor just made, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

pub(super) fn ready_epolls() -> Result<Box<dyn Workload>, CalibrateError> {
    let most = READY[READY.len() - 1];
    let eventfds = (0..most)
        .map(|_| {
            // SAFETY: plain syscall.
            let fd = owned(unsafe { libc::eventfd(1, libc::EFD_CLOEXEC) }, "eventfd")?;
            Ok(fd)
        })
        .collect::<Result<Vec<_>, CalibrateError>>()?;
    let instances = READY
        .iter()
        .map(|&count| {
            // SAFETY: plain syscall.
            let epoll = owned(
                unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
                "epoll_create1",
            )?;
            for (token, eventfd) in eventfds.iter().take(count).enumerate() {
                let mut event = libc::epoll_event {
                    events: libc::EPOLLIN as u32,
                    u64: token as u64,
                };
                // SAFETY: open descriptors and a local event.
                let added = unsafe {
                    libc::epoll_ctl(
                        epoll.as_raw_fd(),
                        libc::EPOLL_CTL_ADD,
                        eventfd.as_raw_fd(),
                        &mut event,
                    )
                };
                expect(PROBE, "epoll_ctl", added.into(), 0)?;
            }
            Ok((count, epoll))
        })
        .collect::<Result<Vec<_>, CalibrateError>>()?;
    Ok(Box::new(ReadyEpolls {
        instances,
        _eventfds: eventfds,
        events: vec![libc::epoll_event { events: 0, u64: 0 }; most],
    }))
}

impl Workload for ReadyEpolls {
    fn round(&mut self, iterations: u64, bytes: usize) -> Result<Sample, CalibrateError> {
        let count = bytes / EVENT_BYTES;
        let epoll = self
            .instances
            .iter()
            .find(|(ready, _)| *ready == count)
            .map(|(_, epoll)| epoll.as_raw_fd())
            .expect("a size of the probe's table");
        let out = self.events.as_mut_ptr();
        let start = ticks();
        for _ in 0..iterations {
            // SAFETY: room for `count` events at `out`; a timeout of 0 never blocks.
            let got = unsafe {
                libc::syscall(
                    libc::SYS_epoll_wait,
                    libc::c_long::from(epoll),
                    out,
                    count as libc::c_long,
                    0 as libc::c_long,
                )
            };
            expect(PROBE, "epoll_wait", got, count as libc::c_long)?;
        }
        Ok(Sample::new((ticks() - start) as f64, iterations))
    }
}
