//! setsockopt and getsockopt: the options real servers set, kept per socket and given back
//! as Linux gives them (`sk_setsockopt`, `do_tcp_setsockopt`, `do_ipv6_setsockopt`).
//!
//! The options are a table: each row says how its value is kept and what it is before it
//! is set. Most are accepted and reported back with no effect on the model, which has no
//! packets to delay, keep alive or route; the ones that change what a program sees
//! (IPV6_V6ONLY, SO_REUSEADDR, SO_REUSEPORT, SO_LINGER) are read where they act. An
//! option Linux has that is not in the table is ENOPROTOOPT, as a kernel without it would
//! answer.

use nix::errno::Errno;

use super::fs::give;
use super::host_net;
use super::socket::{room_at, socket_of};
use crate::kernel::net::address::Domain;
use crate::kernel::pipe::Reset;
use crate::kernel::socket::Socket;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// `sysctl_wmem_max` and `sysctl_rmem_max`, Linux's defaults: the most SO_SNDBUF and
/// SO_RCVBUF take before doubling.
const BUFFER_MAX: u32 = 212_992;
/// `SOCK_MIN_SNDBUF` and `SOCK_MIN_RCVBUF` on x86-64.
const MIN_SNDBUF: i32 = 4608;
const MIN_RCVBUF: i32 = 2304;

/// How an option's value is kept.
#[derive(Clone, Copy)]
enum Kind {
    /// An int, given back as 0 or 1.
    Flag,
    /// An int, given back as set; EINVAL outside `min..=max`.
    Int { min: i32, max: i32 },
    /// A buffer size: Linux doubles what is set, within bounds.
    Buffer { min: i32 },
    /// A `struct linger` (on, seconds).
    Linger,
    /// A `struct timeval` timeout: only 0 (none) is modelled.
    Timeout,
    /// Read-only, from the socket's state.
    State(fn(&Socket) -> i32),
}

/// Which sockets have an option.
#[derive(Clone, Copy, PartialEq, Eq)]
enum For {
    All,
    /// TCP, over IPv4 or IPv6.
    Tcp,
    /// TCP or UDP, over IPv4 or IPv6.
    Inet,
    Inet6,
}

struct Row {
    level: i32,
    name: i32,
    kind: Kind,
    on: For,
    /// The value before it is set: for AF_UNIX and UDP, and for TCP.
    default: (i32, i32),
}

const fn row(level: i32, name: i32, kind: Kind, on: For, default: (i32, i32)) -> Row {
    Row {
        level,
        name,
        kind,
        on,
        default,
    }
}

const SOL: i32 = libc::SOL_SOCKET;
const TCP: i32 = libc::IPPROTO_TCP;
const ANY_INT: Kind = Kind::Int {
    min: i32::MIN,
    max: i32::MAX,
};

/// Linux's defaults: `net.core.{w,r}mem_default` for AF_UNIX, `net.ipv4.tcp_{w,r}mem`'s
/// middle figures for TCP, `tcp_keepalive_*`, `ip_default_ttl`.
const OPTIONS: &[Row] = &[
    row(
        SOL,
        libc::SO_TYPE,
        Kind::State(|s| s.kind),
        For::All,
        (0, 0),
    ),
    row(
        SOL,
        libc::SO_DOMAIN,
        Kind::State(|s| s.domain.family()),
        For::All,
        (0, 0),
    ),
    row(
        SOL,
        libc::SO_PROTOCOL,
        Kind::State(|s| s.protocol),
        For::All,
        (0, 0),
    ),
    row(
        SOL,
        libc::SO_ACCEPTCONN,
        Kind::State(|s| s.listener().is_some() as i32),
        For::All,
        (0, 0),
    ),
    row(SOL, libc::SO_REUSEADDR, Kind::Flag, For::All, (0, 0)),
    row(SOL, libc::SO_REUSEPORT, Kind::Flag, For::All, (0, 0)),
    row(SOL, libc::SO_KEEPALIVE, Kind::Flag, For::All, (0, 0)),
    row(SOL, libc::SO_BROADCAST, Kind::Flag, For::All, (0, 0)),
    row(SOL, libc::SO_OOBINLINE, Kind::Flag, For::All, (0, 0)),
    row(SOL, libc::SO_DONTROUTE, Kind::Flag, For::All, (0, 0)),
    row(SOL, libc::SO_PASSCRED, Kind::Flag, For::All, (0, 0)),
    row(
        SOL,
        libc::SO_PRIORITY,
        Kind::Int { min: 0, max: 6 },
        For::All,
        (0, 0),
    ),
    row(
        SOL,
        libc::SO_SNDBUF,
        Kind::Buffer { min: MIN_SNDBUF },
        For::All,
        (212_992, 16_384),
    ),
    row(
        SOL,
        libc::SO_RCVBUF,
        Kind::Buffer { min: MIN_RCVBUF },
        For::All,
        (212_992, 131_072),
    ),
    row(SOL, libc::SO_LINGER, Kind::Linger, For::All, (0, 0)),
    row(SOL, libc::SO_RCVTIMEO, Kind::Timeout, For::All, (0, 0)),
    row(SOL, libc::SO_SNDTIMEO, Kind::Timeout, For::All, (0, 0)),
    row(TCP, libc::TCP_NODELAY, Kind::Flag, For::Tcp, (0, 0)),
    row(TCP, libc::TCP_CORK, Kind::Flag, For::Tcp, (0, 0)),
    row(TCP, libc::TCP_QUICKACK, Kind::Flag, For::Tcp, (1, 1)),
    row(
        TCP,
        libc::TCP_KEEPIDLE,
        Kind::Int {
            min: 1,
            max: 32_767,
        },
        For::Tcp,
        (7200, 7200),
    ),
    row(
        TCP,
        libc::TCP_KEEPINTVL,
        Kind::Int {
            min: 1,
            max: 32_767,
        },
        For::Tcp,
        (75, 75),
    ),
    row(
        TCP,
        libc::TCP_KEEPCNT,
        Kind::Int { min: 1, max: 127 },
        For::Tcp,
        (9, 9),
    ),
    row(
        TCP,
        libc::TCP_USER_TIMEOUT,
        Kind::Int {
            min: 0,
            max: i32::MAX,
        },
        For::Tcp,
        (0, 0),
    ),
    row(libc::IPPROTO_IP, libc::IP_TOS, ANY_INT, For::Inet, (0, 0)),
    row(
        libc::IPPROTO_IP,
        libc::IP_TTL,
        Kind::Int { min: 1, max: 255 },
        For::Inet,
        (64, 64),
    ),
    row(
        libc::IPPROTO_IPV6,
        libc::IPV6_V6ONLY,
        Kind::Flag,
        For::Inet6,
        (0, 0),
    ),
];

/// The levels a socket of `domain` has: AF_UNIX only SOL_SOCKET; TCP also its own and IP's,
/// and over IPv6 IPv6's.
fn has_level(domain: Domain, level: i32) -> bool {
    match level {
        SOL => true,
        TCP | libc::IPPROTO_IP => domain != Domain::Unix,
        libc::IPPROTO_IPV6 => domain == Domain::Inet6,
        _ => false,
    }
}

/// The row of option (`level`, `name`) for `socket`: EOPNOTSUPP for a level an AF_UNIX
/// socket lacks, ENOPROTOOPT for a level its family lacks; an option of a level it has that
/// is not in the table is ENOPROTOOPT too, counted as not modelled (Linux may have it).
fn find(socket: &Socket, level: i32, name: i32) -> Result<&'static Row, SysError> {
    if socket.domain == Domain::Unix && level != SOL {
        return Err(Errno::EOPNOTSUPP.into());
    }
    if !has_level(socket.domain, level) {
        return Err(Errno::ENOPROTOOPT.into());
    }
    OPTIONS
        .iter()
        .find(|r| r.level == level && r.name == name)
        .filter(|r| match r.on {
            For::All => true,
            For::Tcp => socket.is_inet() && !socket.is_datagram(),
            For::Inet => socket.is_inet(),
            For::Inet6 => socket.domain == Domain::Inet6,
        })
        .ok_or_else(|| SysError::Lacking {
            errno: Errno::ENOPROTOOPT,
            what: format!("socket option {name} of level {level}"),
        })
}

/// The `struct timeval` and `struct linger` sizes.
const TIMEVAL_SIZE: usize = 16;
const LINGER_SIZE: usize = 8;

/// setsockopt(fd, level, name, value, len).
pub fn setsockopt(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::setsockopt(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let (level, name, len) = (a[1] as i32, a[2] as i32, a[4] as i32);
    // SOL_SOCKET and TCP read an int before they look at the option.
    if (level == SOL || (level == TCP && socket.is_inet())) && len < 4 {
        return Err(Errno::EINVAL.into());
    }
    let row = find(socket, level, name)?;
    let size = match row.kind {
        Kind::Linger => LINGER_SIZE,
        Kind::Timeout => TIMEVAL_SIZE,
        // IP's options take an unsigned char when given fewer bytes than an int.
        _ if level == libc::IPPROTO_IP && (1..4).contains(&len) => 1,
        _ => 4,
    };
    if len < size as i32 {
        return Err(Errno::EINVAL.into());
    }
    let value = k.proc.mem.read_vec(a[3], size)?;
    let int = match value[..] {
        [byte] => i32::from(byte),
        _ => i32::from_le_bytes(value[..4].try_into().unwrap()),
    };
    if let Some(special) = special_setting(k, socket, (level, name), int) {
        return special;
    }
    let stored = match row.kind {
        Kind::State(_) => return Err(Errno::ENOPROTOOPT.into()),
        Kind::Flag => i32::from(int != 0).to_le_bytes().to_vec(),
        Kind::Int { min, max } if !(min..=max).contains(&int) => return Err(Errno::EINVAL.into()),
        Kind::Int { .. } => int.to_le_bytes().to_vec(),
        Kind::Buffer { min } => {
            let doubled = (int as u32).min(BUFFER_MAX) as i32 * 2;
            doubled.max(min).to_le_bytes().to_vec()
        }
        // Off, Linux keeps no time.
        Kind::Linger if int == 0 => vec![0; LINGER_SIZE],
        Kind::Linger => [&1i32.to_le_bytes()[..], &value[4..8]].concat(),
        Kind::Timeout if value.iter().any(|&b| b != 0) => {
            return Err(SysError::Unsupported(format!(
                "a socket timeout (option {name}): blocking calls do not time out"
            )))
        }
        Kind::Timeout => value,
    };
    // IPV6_V6ONLY is fixed once the socket has a port.
    if (level, name) == (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) && socket.is_bound() {
        return Err(Errno::EINVAL.into());
    }
    socket.options.borrow_mut().insert((level, name), stored);
    Ok(0)
}

/// The settings Linux treats apart from their kind: SO_REUSEPORT only for internet
/// sockets, IP_TTL's −1 (back to the default), IP_TOS's ECN bits (kept by TCP),
/// SO_PRIORITY above 6 with privilege. `None`: as the table says.
fn special_setting(k: &Kernel, socket: &Socket, option: (i32, i32), int: i32) -> Option<SysResult> {
    let set = |value: Option<i32>| {
        let mut options = socket.options.borrow_mut();
        match value {
            Some(v) => options.insert(option, v.to_le_bytes().to_vec()),
            None => options.remove(&option),
        };
        Some(Ok(0))
    };
    match option {
        (SOL, libc::SO_REUSEPORT) if int != 0 && !socket.is_inet() => {
            Some(Err(Errno::EOPNOTSUPP.into()))
        }
        (libc::IPPROTO_IP, libc::IP_TTL) if int == -1 => set(None),
        (libc::IPPROTO_IP, libc::IP_TOS) if !socket.is_datagram() => set(Some(int & !0x3)),
        (SOL, libc::SO_PRIORITY) if k.proc.credentials.uid.effective == 0 => set(Some(int)),
        _ => None,
    }
}

/// getsockopt(fd, level, name, value, len): the value set or the default, cut to the
/// length given; SO_ERROR gives a pending reset once.
pub fn getsockopt(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::getsockopt(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let (level, name) = (a[1] as i32, a[2] as i32);
    let room = room_at(k, a[4])?;
    let value = if (level, name) == (SOL, libc::SO_ERROR) {
        // A pending error, once: a UDP refusal, a refused connect, an RST's.
        socket.settle_syn_sent();
        let error = socket.error.take().or_else(|| {
            let end = file.stream()?;
            let Reset::Pending(errno) = end.rx.borrow().reset else {
                return None;
            };
            end.rx.borrow_mut().reset = Reset::Done;
            Some(errno)
        });
        error.map_or(0, |errno| errno as i32).to_le_bytes().to_vec()
    } else {
        let row = find(socket, level, name)?;
        let default = if socket.is_inet() && !socket.is_datagram() {
            row.default.1
        } else {
            row.default.0
        };
        match row.kind {
            Kind::State(of) => of(socket).to_le_bytes().to_vec(),
            Kind::Linger => socket
                .options
                .borrow()
                .get(&(level, name))
                .cloned()
                .unwrap_or_else(|| vec![0; LINGER_SIZE]),
            Kind::Timeout => vec![0; TIMEVAL_SIZE],
            _ => socket
                .int_option(level, name)
                .unwrap_or(default)
                .to_le_bytes()
                .to_vec(),
        }
    };
    // IP's options give a value that fits one in an unsigned char when asked for fewer
    // bytes than an int (`do_ip_getsockopt`).
    let value = match value[..] {
        [low, 0, 0, 0] if level == libc::IPPROTO_IP && (1..4).contains(&room) => vec![low],
        _ => value,
    };
    let n = value.len().min(room);
    give(k, a[3], &value[..n])?;
    give(k, a[4], &(n as u32).to_le_bytes())?;
    Ok(0)
}
