//! Socket addresses: the `struct sockaddr_*` a guest gives bind and connect, read as Linux
//! reads them (`unix_validate_addr`, `inet_bind`, `tcp_v4_connect`, `inet6_bind`), and the
//! bytes getsockname, getpeername and accept give back.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use nix::errno::Errno;

/// `offsetof(struct sockaddr_un, sun_path)`: the family.
const FAMILY_SIZE: usize = 2;
/// `sizeof(struct sockaddr_un)`.
const SOCKADDR_UN_SIZE: usize = 110;
/// `sizeof(struct sockaddr_in)`.
const SOCKADDR_IN_SIZE: usize = 16;
/// The shortest `struct sockaddr_in6` Linux takes (`SIN6_LEN_RFC2133`: no scope id).
const SOCKADDR_IN6_MIN: usize = 24;
/// `sizeof(struct sockaddr_in6)`.
const SOCKADDR_IN6_SIZE: usize = 28;

/// The address families whose sockets are modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Unix,
    Inet,
    Inet6,
}

/// A row of the family table: what `socket`'s first argument names.
struct Family {
    domain: Domain,
    family: i32,
    name: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        domain: Domain::Unix,
        family: libc::AF_UNIX,
        name: "AF_UNIX",
    },
    Family {
        domain: Domain::Inet,
        family: libc::AF_INET,
        name: "AF_INET",
    },
    Family {
        domain: Domain::Inet6,
        family: libc::AF_INET6,
        name: "AF_INET6",
    },
];

impl Domain {
    pub fn of(family: i32) -> Option<Self> {
        FAMILIES
            .iter()
            .find(|f| f.family == family)
            .map(|f| f.domain)
    }

    fn row(self) -> &'static Family {
        FAMILIES
            .iter()
            .find(|f| f.domain == self)
            .expect("every domain has a row")
    }

    pub fn family(self) -> i32 {
        self.row().family
    }

    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The name of a socket that has none yet, as getsockname gives it.
    pub fn unbound(self) -> Address {
        match self {
            Domain::Unix => Address::Unnamed,
            Domain::Inet => Address::Inet(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            Domain::Inet6 => Address::Inet6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)),
        }
    }
}

/// A socket's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// An AF_UNIX socket with no name: a socket of a pair, or an unbound client.
    Unnamed,
    /// An AF_UNIX name in the file system (without its terminating NUL).
    Path(Vec<u8>),
    /// An AF_UNIX name in the abstract namespace (without its leading NUL).
    Abstract(Vec<u8>),
    Inet(SocketAddrV4),
    Inet6(SocketAddrV6),
}

/// Which call reads an address: they differ in what they take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    Bind,
    Connect,
}

impl Address {
    /// Reads the `bytes` (the length the guest gave) as a `domain` socket's address for
    /// `purpose`, with Linux's errors. An AF_UNIX bind of the family alone is `Unnamed`
    /// (autobind).
    pub fn parse(domain: Domain, bytes: &[u8], purpose: Use) -> Result<Self, Errno> {
        let family = bytes
            .get(..FAMILY_SIZE)
            .map(|f| i32::from(u16::from_le_bytes([f[0], f[1]])));
        match domain {
            Domain::Unix => {
                if purpose == Use::Bind
                    && bytes.len() == FAMILY_SIZE
                    && family == Some(libc::AF_UNIX)
                {
                    return Ok(Address::Unnamed);
                }
                if bytes.len() <= FAMILY_SIZE
                    || bytes.len() > SOCKADDR_UN_SIZE
                    || family != Some(libc::AF_UNIX)
                {
                    return Err(Errno::EINVAL);
                }
                let path = &bytes[FAMILY_SIZE..];
                if path[0] == 0 {
                    return Ok(Address::Abstract(path[1..].to_vec()));
                }
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Ok(Address::Path(path[..end].to_vec()))
            }
            Domain::Inet => {
                if bytes.len() < SOCKADDR_IN_SIZE {
                    return Err(Errno::EINVAL);
                }
                let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                // bind takes AF_UNSPEC with INADDR_ANY as AF_INET, for old programs.
                let unspecified_any =
                    purpose == Use::Bind && family == Some(libc::AF_UNSPEC) && ip.is_unspecified();
                if family != Some(libc::AF_INET) && !unspecified_any {
                    return Err(Errno::EAFNOSUPPORT);
                }
                Ok(Address::Inet(SocketAddrV4::new(ip, port(bytes))))
            }
            Domain::Inet6 => {
                if bytes.len() < SOCKADDR_IN6_MIN {
                    return Err(Errno::EINVAL);
                }
                if family != Some(libc::AF_INET6) {
                    return Err(Errno::EAFNOSUPPORT);
                }
                let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
                let ip: [u8; 16] = bytes[8..24].try_into().unwrap();
                let scope = if bytes.len() >= SOCKADDR_IN6_SIZE {
                    u32::from_le_bytes(bytes[24..28].try_into().unwrap())
                } else {
                    0
                };
                // Loopback has no flows or scopes: Linux gives back 0 for both.
                let _ = (word(4), scope);
                Ok(Address::Inet6(SocketAddrV6::new(
                    Ipv6Addr::from(ip),
                    port(bytes),
                    0,
                    0,
                )))
            }
        }
    }

    /// The `struct sockaddr_*` Linux gives back for this name, at the length it gives.
    pub fn encode(&self) -> Vec<u8> {
        let family = |f: i32| (f as u16).to_le_bytes().to_vec();
        match self {
            Address::Unnamed => family(libc::AF_UNIX),
            Address::Path(path) => [family(libc::AF_UNIX), path.clone(), vec![0]].concat(),
            Address::Abstract(name) => [family(libc::AF_UNIX), vec![0], name.clone()].concat(),
            Address::Inet(a) => {
                let mut out = family(libc::AF_INET);
                out.extend_from_slice(&a.port().to_be_bytes());
                out.extend_from_slice(&a.ip().octets());
                out.resize(SOCKADDR_IN_SIZE, 0);
                out
            }
            Address::Inet6(a) => {
                let mut out = family(libc::AF_INET6);
                out.extend_from_slice(&a.port().to_be_bytes());
                out.extend_from_slice(&a.flowinfo().to_be_bytes());
                out.extend_from_slice(&a.ip().octets());
                out.extend_from_slice(&a.scope_id().to_le_bytes());
                out
            }
        }
    }

    /// The port of an internet address.
    pub fn port(&self) -> Option<u16> {
        match self {
            Address::Inet(a) => Some(a.port()),
            Address::Inet6(a) => Some(a.port()),
            _ => None,
        }
    }

    /// The same address with another port (an internet address; any other as it is).
    pub fn with_port(&self, port: u16) -> Self {
        match self {
            Address::Inet(a) => Address::Inet(SocketAddrV4::new(*a.ip(), port)),
            Address::Inet6(a) => Address::Inet6(SocketAddrV6::new(*a.ip(), port, 0, 0)),
            other => other.clone(),
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unnamed => write!(f, "an unnamed AF_UNIX socket"),
            Address::Path(path) => write!(f, "{}", String::from_utf8_lossy(path)),
            Address::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            Address::Inet(a) => write!(f, "{a}"),
            Address::Inet6(a) => write!(f, "[{}]:{}", a.ip(), a.port()),
        }
    }
}

/// The port of a `sockaddr_in` or `sockaddr_in6`, in network order at bytes 2 and 3.
fn port(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[2], bytes[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(path: &[u8]) -> Vec<u8> {
        [&(libc::AF_UNIX as u16).to_le_bytes()[..], path].concat()
    }

    #[test]
    fn unix_names_are_read_as_linux_reads_them() {
        let bind = |b: &[u8]| Address::parse(Domain::Unix, b, Use::Bind);
        let connect = |b: &[u8]| Address::parse(Domain::Unix, b, Use::Connect);
        assert_eq!(bind(&unix(b"")), Ok(Address::Unnamed));
        assert_eq!(connect(&unix(b"")), Err(Errno::EINVAL));
        assert_eq!(
            bind(&unix(b"/tmp/s\0junk")),
            Ok(Address::Path(b"/tmp/s".to_vec()))
        );
        assert_eq!(
            bind(&unix(b"\0a\0b")),
            Ok(Address::Abstract(b"a\0b".to_vec()))
        );
        assert_eq!(bind(&[1]), Err(Errno::EINVAL));
        assert_eq!(bind(&unix(&[b'x'; 109])), Err(Errno::EINVAL));
        let named = Address::Path(b"/tmp/s".to_vec());
        assert_eq!(named.encode(), unix(b"/tmp/s\0"));
    }

    #[test]
    fn internet_addresses_round_trip() {
        let v4 = Address::Inet(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
        assert_eq!(
            Address::parse(Domain::Inet, &v4.encode(), Use::Connect),
            Ok(v4)
        );
        let v6 = Address::Inet6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 0, 0));
        assert_eq!(
            Address::parse(Domain::Inet6, &v6.encode(), Use::Bind),
            Ok(v6.clone())
        );
        assert_eq!(
            Address::parse(Domain::Inet, &v6.encode()[..15], Use::Bind),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            Address::parse(Domain::Inet, &v6.encode(), Use::Connect),
            Err(Errno::EAFNOSUPPORT)
        );
    }
}
