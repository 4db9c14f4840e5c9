//! Pipes, modelled in the kernel: a 64 KiB buffer, writes of up to `PIPE_BUF` bytes kept
//! whole, end of file once no writer is left, and EPIPE once no reader is. Blocking is the
//! scheduler's: a host pipe read by one simulated task and written by another would block
//! the simulator's one thread.

use std::collections::VecDeque;
use std::rc::Rc;

use super::fd::OpenFile;

/// Linux's default pipe capacity (16 pages).
pub const CAPACITY: usize = 65536;
/// Writes of up to this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;

pub struct Pipe {
    /// Names the pipe in wait reasons.
    pub id: u64,
    buf: VecDeque<u8>,
    /// Open file descriptions of each end.
    pub readers: u32,
    pub writers: u32,
    /// One way of a socket, after an RST came to its reader (see `Reset`).
    pub reset: Reset,
    /// How many times it changed for its readers (bytes in, an end closed) and for its
    /// writers (bytes out, an end closed): whom a change wakes, and so which edge-triggered
    /// epoll entries it re-arms (Linux's wake-up keys, EPOLLIN or EPOLLOUT).
    pub changes: Changes,
    /// Open files passed with the bytes (SCM_RIGHTS over an AF_UNIX stream), in order.
    rights: VecDeque<Rights>,
    /// Bytes written and read since it was made: where the rights sit in the stream.
    written: u64,
    taken: u64,
    /// Rights a read just took, for the reader to install or drop.
    pub delivered: Vec<Rc<OpenFile>>,
    /// A SOCK_SEQPACKET way's message lengths, in order: a write is one message, a read
    /// takes at most one and drops what did not fit. `None`: a byte stream.
    records: Option<VecDeque<usize>>,
    /// The whole length of the message the last read cut short (MSG_TRUNC).
    pub truncated: Option<usize>,
}

/// Open files sent with the bytes `[at, end)` of a stream: a read that reaches them takes
/// them and stops at `end`, as Linux's `unix_stream_read_generic` stops after a message
/// that carried descriptors.
struct Rights {
    at: u64,
    end: u64,
    files: Vec<Rc<OpenFile>>,
}

/// What an RST left for the socket that reads a way: Linux's `sk_err`, then its closed state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reset {
    #[default]
    None,
    /// An error not yet reported: ECONNRESET (the peer closed with data unread), or EPIPE
    /// (an RST after the peer's FIN, or in answer to a write to a closed peer).
    Pending(nix::errno::Errno),
    /// Reported: reads see end of file, writes EPIPE.
    Done,
}

/// Changes that concern readers, and those that concern writers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub for_readers: u64,
    pub for_writers: u64,
}

impl Changes {
    /// Both kinds: a close or a reset wakes everyone.
    pub fn both(&mut self) {
        self.for_readers += 1;
        self.for_writers += 1;
    }
}

impl std::ops::Add for Changes {
    type Output = Changes;
    fn add(self, other: Changes) -> Changes {
        Changes {
            for_readers: self.for_readers + other.for_readers,
            for_writers: self.for_writers + other.for_writers,
        }
    }
}

/// What a read or write on a pipe can do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Ready {
    /// It moved this many bytes (0 for a read: end of file).
    Moved(usize),
    /// It must wait (or fail with EAGAIN when non-blocking).
    Wait,
    /// A write with no reader left: EPIPE and SIGPIPE.
    Broken,
}

impl Pipe {
    pub fn new(id: u64) -> Self {
        Self {
            id,
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
            reset: Reset::None,
            changes: Changes::default(),
            rights: VecDeque::new(),
            written: 0,
            taken: 0,
            delivered: Vec::new(),
            records: None,
            truncated: None,
        }
    }

    /// One way of a SOCK_SEQPACKET connection: messages kept whole.
    pub fn for_messages(id: u64) -> Self {
        Self {
            records: Some(VecDeque::new()),
            ..Self::new(id)
        }
    }

    /// Takes up to `len` bytes, through `take` (which gets them in at most two pieces).
    /// A message way takes its next message, `len` bytes of it at most.
    pub fn read(&mut self, len: usize, take: impl FnMut(&[u8])) -> Ready {
        self.truncated = None;
        let message = match &mut self.records {
            Some(records) => records.pop_front(),
            None => None,
        };
        if message.is_none() && self.buf.is_empty() {
            let empty_stream = self.records.is_none() && len == 0;
            return if self.writers == 0 || empty_stream {
                Ready::Moved(0)
            } else {
                Ready::Wait
            };
        }
        let mut n = len.min(message.unwrap_or(self.buf.len()));
        let mut consumed = message.unwrap_or(n);
        let until = self.taken + consumed as u64;
        if let Some(rights) = self.rights.front().filter(|r| r.at < until) {
            if message.is_none() {
                n = n.min((rights.end - self.taken) as usize);
                consumed = n;
            }
            self.delivered = self.rights.pop_front().expect("just seen").files;
        }
        if n < consumed {
            self.truncated = message;
        }
        self.taken += consumed as u64;
        self.copy_front(n, take);
        self.buf.drain(..consumed);
        self.changes.for_writers += 1;
        Ready::Moved(n)
    }

    /// The length of the next message of a way that keeps messages (SOCK_SEQPACKET).
    pub fn next_message(&self) -> Option<usize> {
        self.records.as_ref()?.front().copied()
    }

    /// Copies up to `len` bytes (of the next message, on a message way) through `take`,
    /// leaving them to be read (MSG_PEEK); the rights sent with them stay too.
    pub fn peek(&self, len: usize, take: impl FnMut(&[u8])) -> usize {
        let next = match &self.records {
            Some(records) => records.front().copied().unwrap_or(0),
            None => self.buf.len(),
        };
        let n = len.min(next);
        self.copy_front(n, take);
        n
    }

    /// Gives the first `n` bytes through `take`, in at most two pieces.
    fn copy_front(&self, n: usize, mut take: impl FnMut(&[u8])) {
        let (front, back) = self.buf.as_slices();
        let first = n.min(front.len());
        take(&front[..first]);
        if n > first {
            take(&back[..n - first]);
        }
    }

    /// Puts in what fits of `bytes`, the rest of a write of `whole` bytes: a write of at
    /// most `PIPE_BUF` bytes goes in whole or not at all.
    pub fn write(&mut self, bytes: &[u8], whole: usize) -> Ready {
        if self.readers == 0 {
            return Ready::Broken;
        }
        let room = CAPACITY - self.buf.len();
        if let Some(records) = &mut self.records {
            // A message goes in whole; one longer than the buffer, into an empty one.
            if bytes.len() > room && !self.buf.is_empty() {
                return Ready::Wait;
            }
            records.push_back(bytes.len());
            self.buf.extend(bytes);
            self.written += bytes.len() as u64;
            self.changes.for_readers += 1;
            return Ready::Moved(bytes.len());
        }
        let n = if whole <= PIPE_BUF {
            if room < bytes.len() {
                return Ready::Wait;
            }
            bytes.len()
        } else {
            bytes.len().min(room)
        };
        if n == 0 && !bytes.is_empty() {
            return Ready::Wait;
        }
        self.buf.extend(&bytes[..n]);
        self.written += n as u64;
        self.changes.for_readers += 1;
        Ready::Moved(n)
    }

    /// Sends `files` with the last `len` bytes written.
    pub fn attach(&mut self, files: Vec<Rc<OpenFile>>, len: usize) {
        self.rights.push_back(Rights {
            at: self.written - len as u64,
            end: self.written,
            files,
        });
    }

    /// One reader fewer (an end closed or shut).
    pub fn close_reader(&mut self) {
        self.readers -= 1;
        self.changes.both();
    }

    /// One writer fewer.
    pub fn close_writer(&mut self) {
        self.writers -= 1;
        self.changes.both();
    }

    /// An RST comes to the way's reader, leaving it `errno` to report (see `reset`).
    pub fn set_reset(&mut self, errno: nix::errno::Errno) {
        self.reset = Reset::Pending(errno);
        self.changes.both();
    }

    /// Bytes waiting to be read (FIONREAD, poll).
    pub fn available(&self) -> usize {
        self.buf.len()
    }

    /// Whether a write of one byte could go in now (poll's POLLOUT: Linux wants a page).
    pub fn writable(&self) -> bool {
        CAPACITY - self.buf.len() >= PIPE_BUF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(pipe: &mut Pipe, len: usize) -> (Ready, Vec<u8>) {
        let mut out = Vec::new();
        let ready = pipe.read(len, |piece| out.extend_from_slice(piece));
        (ready, out)
    }

    #[test]
    fn bytes_come_out_in_order_and_eof_needs_no_writer() {
        let mut pipe = Pipe::new(1);
        assert_eq!(pipe.write(b"hello", 5), Ready::Moved(5));
        assert_eq!(read_all(&mut pipe, 3), (Ready::Moved(3), b"hel".to_vec()));
        assert_eq!(read_all(&mut pipe, 9), (Ready::Moved(2), b"lo".to_vec()));
        assert_eq!(read_all(&mut pipe, 9).0, Ready::Wait);
        pipe.writers = 0;
        assert_eq!(read_all(&mut pipe, 9).0, Ready::Moved(0));
    }

    #[test]
    fn small_writes_are_whole_and_large_ones_fill_what_is_left() {
        let mut pipe = Pipe::new(1);
        let big = vec![7u8; CAPACITY - 10];
        assert_eq!(pipe.write(&big, big.len()), Ready::Moved(CAPACITY - 10));
        assert_eq!(pipe.write(&[1; 20], 20), Ready::Wait);
        assert_eq!(pipe.write(&[1; 20], 5000), Ready::Moved(10));
        assert_eq!(pipe.write(&[1; 20], 5000), Ready::Wait);
        pipe.readers = 0;
        assert_eq!(pipe.write(&[1], 1), Ready::Broken);
    }

    #[test]
    fn a_message_way_keeps_messages_whole_and_drops_what_a_read_cuts() {
        let mut pipe = Pipe::for_messages(1);
        assert_eq!(pipe.write(b"hello", 5), Ready::Moved(5));
        assert_eq!(pipe.write(b"", 0), Ready::Moved(0));
        assert_eq!(pipe.write(b"world!", 6), Ready::Moved(6));
        assert_eq!(pipe.available(), 11);
        let mut peeked = Vec::new();
        assert_eq!(pipe.peek(9, |piece| peeked.extend_from_slice(piece)), 5);
        assert_eq!(peeked, b"hello");
        assert_eq!(read_all(&mut pipe, 3), (Ready::Moved(3), b"hel".to_vec()));
        assert_eq!(pipe.truncated, Some(5));
        assert_eq!(read_all(&mut pipe, 9), (Ready::Moved(0), Vec::new()));
        assert_eq!(
            read_all(&mut pipe, 9),
            (Ready::Moved(6), b"world!".to_vec())
        );
        assert_eq!(pipe.truncated, None);
        assert_eq!(read_all(&mut pipe, 9).0, Ready::Wait);
    }
}
