//! The socket probes: a loopback TCP connection and an AF_UNIX stream pair timed as the pipe
//! is (a write of N bytes, then its read, each call timed), and connect and accept on
//! loopback TCP, each call timed.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use super::calls::{stream_half, Half};
use super::{Sample, Session, Workload};
use crate::clock::ticks;
use crate::CalibrateError;

fn io_error(probe: &'static str, call: &'static str) -> impl Fn(std::io::Error) -> CalibrateError {
    move |source| CalibrateError::Call {
        probe,
        call,
        source,
    }
}

/// A loopback TCP connection with Nagle's delay off, blocking (loopback acknowledges at
/// once, and each round reads back what it wrote): (reading end, writing end).
fn tcp_connection(probe: &'static str) -> Result<[OwnedFd; 2], CalibrateError> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(io_error(probe, "bind"))?;
    let at = listener
        .local_addr()
        .map_err(io_error(probe, "getsockname"))?;
    let client = TcpStream::connect(at).map_err(io_error(probe, "connect"))?;
    client
        .set_nodelay(true)
        .map_err(io_error(probe, "setsockopt"))?;
    let (server, _) = listener.accept().map_err(io_error(probe, "accept"))?;
    Ok([server.into(), client.into()])
}

pub(super) fn tcp_half(
    session: &Session,
    half: Half,
) -> Result<Box<dyn Workload + '_>, CalibrateError> {
    let probes = ["tcp_send", "tcp_receive"];
    stream_half(session, tcp_connection(probes[0])?, probes, half)
}

pub(super) fn unix_half(
    session: &Session,
    half: Half,
) -> Result<Box<dyn Workload + '_>, CalibrateError> {
    let probes = ["unix_send", "unix_receive"];
    let (reader, writer) = UnixStream::pair().map_err(io_error(probes[0], "socketpair"))?;
    stream_half(session, [reader.into(), writer.into()], probes, half)
}

/// A connection to a loopback listener made and taken: the connect's or the accept's
/// time, each call timed (the socket and the closes are not).
struct ConnectAccept {
    listener: TcpListener,
    at: SocketAddrV4,
    half: Half,
    timer: f64,
}

pub(super) fn connect_accept(
    session: &Session,
    half: Half,
) -> Result<Box<dyn Workload + '_>, CalibrateError> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(io_error("connect", "bind"))?;
    let at = match listener
        .local_addr()
        .map_err(io_error("connect", "getsockname"))?
    {
        std::net::SocketAddr::V4(at) => at,
        std::net::SocketAddr::V6(_) => unreachable!("bound to an IPv4 address"),
    };
    Ok(Box::new(ConnectAccept {
        listener,
        at,
        half,
        timer: session.timer,
    }))
}

impl Workload for ConnectAccept {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: self.at.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*self.at.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut total = 0;
        for _ in 0..iterations {
            // SAFETY: plain syscall; the descriptor is owned at once.
            let raw =
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            if raw < 0 {
                return Err(CalibrateError::last_os("connect", "socket"));
            }
            // SAFETY: just made, owned by nobody else.
            let client: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) };
            let start = ticks();
            // SAFETY: a sockaddr_in of the length passed.
            let connected = unsafe {
                libc::connect(
                    client.as_raw_fd(),
                    (&address as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            };
            let between = ticks();
            if connected != 0 {
                return Err(CalibrateError::last_os("connect", "connect"));
            }
            // SAFETY: the listener is open; no address is asked for.
            let accepted = unsafe {
                libc::accept4(
                    self.listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            let end = ticks();
            if accepted < 0 {
                return Err(CalibrateError::last_os("accept", "accept4"));
            }
            // SAFETY: just made, owned by nobody else.
            drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(accepted) });
            total += match self.half {
                Half::Write => between - start,
                Half::Read => end - between,
            };
        }
        Ok(Sample::new(
            total as f64 - self.timer * iterations as f64,
            iterations,
        ))
    }
}
