//! `RespConn`: a raw blocking TCP client that sends commands as RESP multibulk arrays (or raw
//! bytes) and reads back exactly one complete reply as raw bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::resp::{escape, frame_end};

/// How long a reply may take before the read fails (a hang becomes a test failure).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// True when `e` means the server closed the connection (EOF, reset, broken pipe, aborted).
pub fn is_closed_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

fn closed_error(partial: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "connection closed by server (unparsed bytes: {})",
            escape(partial)
        ),
    )
}

/// Encodes one command as a RESP multibulk array.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + args.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw RESP connection. Bytes read past the end of a reply are kept for the next read.
pub struct RespConn {
    stream: TcpStream,
    buf: Vec<u8>,
    timeout: Duration,
    addr: SocketAddr,
}

impl RespConn {
    /// Connects with the default 5 s read timeout.
    pub fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(DEFAULT_READ_TIMEOUT))?;
        stream.set_write_timeout(Some(DEFAULT_READ_TIMEOUT))?;
        Ok(RespConn {
            stream,
            buf: Vec::new(),
            timeout: DEFAULT_READ_TIMEOUT,
            addr,
        })
    }

    /// The server address this connection talks to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This connection's own address (`ip:port`, as the server names the client).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Changes how long `read_reply` waits for a complete reply.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.timeout = timeout;
        self.stream.set_read_timeout(Some(timeout))
    }

    /// Sends one command as a RESP multibulk array.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.send_raw(&encode_command(args))
    }

    /// Sends bytes exactly as given (inline commands, pipelines, protocol errors).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends a command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Vec<u8>> {
        self.send(args)?;
        self.read_reply()
    }

    /// Convenience for tests: `call` with a redis-cli style line, panicking on I/O errors.
    pub fn cmd(&mut self, line: &str) -> Vec<u8> {
        let args = damselfly_resp::split_args(line.as_bytes())
            .unwrap_or_else(|| panic!("unbalanced quotes in {line:?}"));
        self.call(&args)
            .unwrap_or_else(|e| panic!("{line:?} to {}: {e}", self.addr))
    }

    /// Reads exactly one complete reply (an attribute together with the reply it annotates
    /// counts as one). Fails with `TimedOut` after the read timeout, with `UnexpectedEof` when
    /// the server closes the connection, with `InvalidData` on bytes that are not RESP.
    pub fn read_reply(&mut self) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match frame_end(&self.buf, 0) {
                Ok(Some(end)) => {
                    let rest = self.buf.split_off(end);
                    return Ok(std::mem::replace(&mut self.buf, rest));
                }
                Ok(None) => {}
                Err(e) => {
                    let msg = format!("not a RESP reply: {e}; bytes: {}", escape(&self.buf));
                    self.buf.clear();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout_error());
            }
            self.stream.set_read_timeout(Some(deadline - now))?;
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(closed_error(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(self.timeout_error());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn timeout_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no complete reply within {:?} (partial bytes: {})",
                self.timeout,
                escape(&self.buf)
            ),
        )
    }

    /// Reads everything the server sends until it closes the connection or stays silent for
    /// `silence` (bounded by `max_total`). Returns the bytes and whether the server closed.
    pub fn read_until_close_or_silence(
        &mut self,
        silence: Duration,
        max_total: Duration,
    ) -> io::Result<(Vec<u8>, bool)> {
        let start = Instant::now();
        let mut out = std::mem::take(&mut self.buf);
        let mut closed = false;
        self.stream.set_read_timeout(Some(silence))?;
        let mut chunk = [0u8; 16 * 1024];
        while start.elapsed() < max_total {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_closed_error(&e) => {
                    closed = true;
                    break;
                }
                Err(e) => {
                    self.stream.set_read_timeout(Some(self.timeout))?;
                    return Err(e);
                }
            }
        }
        self.stream.set_read_timeout(Some(self.timeout))?;
        Ok((out, closed))
    }

    /// Waits up to `wait` for the server to close the connection; true if it did. Any bytes that
    /// arrive meanwhile are kept for the next read.
    pub fn is_closed(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 4096];
        let closed = loop {
            let now = Instant::now();
            if now >= deadline {
                break false;
            }
            if self.stream.set_read_timeout(Some(deadline - now)).is_err() {
                break true;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break false
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        let _ = self.stream.set_read_timeout(Some(self.timeout));
        closed
    }

    /// Closes both directions of the socket.
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
