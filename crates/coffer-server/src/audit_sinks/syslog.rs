//! RFC 5424 syslog sink: one syslog message per audit record, over UDP, TCP (RFC 6587 octet counting) or a local
//! unix datagram socket (such as `/dev/log`).
//!
//! Each record becomes
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID AuditEvent - JSON
//! ```
//!
//! * `PRI` is `facility * 8 + severity`, the severity taken from the record's `level` (`Informational` → 6
//!   info, `Warning` → 4 warning, `Error` → 3 err, `Critical` → 2 crit, `Verbose` → 7 debug, anything else → 5
//!   notice).
//! * `TIMESTAMP` is the record's `time` with its fraction cut to the 6 digits RFC 5424 allows (`-` if the record
//!   carries no usable time).
//! * `HOSTNAME` is the configured host name or the machine's (`/proc/sys/kernel/hostname`), `-` if unknown.
//! * `PROCID` is the server's process id, `MSGID` is always `AuditEvent`.
//! * Structured data is always `-` (NILVALUE): the sequence number a receiver could de-duplicate on is in the
//!   JSON (`cofferChain.seq`), and there is no registered enterprise number to name an SD element with.
//! * `MSG` is the chained JSON line exactly as the file sink writes it, without a UTF-8 BOM (rsyslog keeps a BOM
//!   in `%msg%`; without it `%msg%` and syslog-ng's `$MSG` are exactly the JSON line).
//!
//! Delivery: `write` returns `Ok` only when every record was handed to the kernel; the audit writer counts an
//! `Err` as a sink error and applies its fail-closed rule. UDP and unix datagrams are sent one per record; a
//! failed send reconnects (a new socket) and is retried once. TCP sends the whole batch as octet-counted frames;
//! before each batch the connection is checked for a peer that has closed it (a syslog server never sends
//! anything, so readable data or EOF means the connection is gone), and a failed write reconnects once and
//! resends the whole batch, so after a broken connection a receiver may see some records twice (same
//! `cofferChain.seq` and `hash`) but never loses one that was acknowledged. While the receiver is unreachable,
//! reconnect attempts back off (1 s doubling to 30 s) so a dead syslog server does not stall the audit writer;
//! `write` fails at once between attempts.
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _, UdpSocket};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use coffer_core::audit::{AuditSink, ChainedRecord};

use crate::config::SyslogConfig;

/// The MSGID of every message.
const MSGID: &str = "AuditEvent";
/// Largest UDP payload over IPv4.
const MAX_UDP_MESSAGE: usize = 65_507;
/// Time allowed for a TCP connect, per resolved address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for one blocking send before the transport counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait between reconnect attempts while the receiver is unreachable.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Facility names and their RFC 5424 codes.
const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Where messages go.
#[derive(Debug, Clone)]
enum Target {
    Udp(String),
    Tcp(String),
    Unix(PathBuf),
}

/// An open transport.
#[derive(Debug)]
enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    /// The socket and the inode of the path it was connected to (to notice a recreated socket).
    Unix(UnixDatagram, Option<u64>),
}

/// The RFC 5424 syslog audit sink.
#[derive(Debug)]
pub struct SyslogSink {
    target: Target,
    facility: u8,
    /// `HOSTNAME APP-NAME PROCID MSGID -` (everything between TIMESTAMP and MSG, without the spaces around it).
    header_tail: String,
    conn: Option<Conn>,
    /// No reconnect attempt before this instant (backoff while the receiver is unreachable).
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl SyslogSink {
    /// Checks the configuration and tries a first connection. An unreachable receiver is not an error here (the
    /// sink reconnects by itself and its writes fail meanwhile); a bad transport, address, facility, APP-NAME or
    /// HOSTNAME is.
    pub fn new(cfg: &SyslogConfig) -> anyhow::Result<Self> {
        let target = match cfg.transport.to_ascii_lowercase().as_str() {
            "udp" => Target::Udp(check_host_port(&cfg.address)?),
            "tcp" => Target::Tcp(check_host_port(&cfg.address)?),
            "unix" => {
                anyhow::ensure!(
                    !cfg.address.is_empty(),
                    "syslog: address must be a socket path for transport unix"
                );
                Target::Unix(PathBuf::from(&cfg.address))
            }
            other => anyhow::bail!("syslog: unknown transport {other:?} (expected udp, tcp or unix)"),
        };
        let facility =
            facility_code(&cfg.facility).with_context(|| format!("syslog: unknown facility {:?}", cfg.facility))?;
        anyhow::ensure!(
            is_header_field(&cfg.app_name, 48),
            "syslog: app_name must be 1 to 48 printable ASCII characters without spaces"
        );
        let hostname = match &cfg.hostname {
            Some(h) => {
                anyhow::ensure!(
                    is_header_field(h, 255),
                    "syslog: hostname must be 1 to 255 printable ASCII characters without spaces"
                );
                h.clone()
            }
            None => machine_hostname(),
        };
        let header_tail = format!("{hostname} {} {} {MSGID} -", cfg.app_name, std::process::id());
        let mut sink = Self {
            target,
            facility,
            header_tail,
            conn: None,
            retry_at: None,
            backoff: MIN_BACKOFF,
        };
        if let Err(e) = sink.connect() {
            tracing::warn!(error = %e, address = %cfg.address, "syslog audit sink: receiver not reachable yet");
        }
        Ok(sink)
    }

    /// The complete RFC 5424 message for a record (no framing, no trailing newline).
    fn message(&self, rec: &ChainedRecord) -> Vec<u8> {
        let pri = u16::from(self.facility) * 8 + u16::from(severity(&rec.level));
        let head = format!("<{pri}>1 {} {} ", timestamp(&rec.time), self.header_tail);
        let mut msg = Vec::with_capacity(head.len() + rec.line.len());
        msg.extend_from_slice(head.as_bytes());
        msg.extend_from_slice(&rec.line);
        msg
    }

    /// Opens a new transport (dropping the old one). Success resets the backoff, failure extends it.
    fn connect(&mut self) -> std::io::Result<()> {
        self.conn = None;
        match open(&self.target) {
            Ok(c) => {
                self.conn = Some(c);
                self.retry_at = None;
                self.backoff = MIN_BACKOFF;
                Ok(())
            }
            Err(e) => {
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Err(e)
            }
        }
    }

    /// Connects if not connected and the backoff allows an attempt.
    fn ensure_connected(&mut self) -> std::io::Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        if let Some(at) = self.retry_at {
            let now = Instant::now();
            if now < at {
                return Err(std::io::Error::new(
                    ErrorKind::NotConnected,
                    format!(
                        "syslog receiver unreachable; next connection attempt in {} ms",
                        at.duration_since(now).as_millis()
                    ),
                ));
            }
        }
        self.connect()
    }

    /// Drops a connection that is known to be dead (TCP peer closed, unix socket recreated).
    fn drop_stale(&mut self) {
        let stale = match &self.conn {
            Some(Conn::Tcp(s)) => tcp_peer_gone(s),
            Some(Conn::Unix(_, ino)) => match &self.target {
                Target::Unix(path) => std::fs::metadata(path).ok().map(|m| m.ino()) != *ino,
                _ => false,
            },
            _ => false,
        };
        if stale {
            self.conn = None;
        }
    }

    /// Sends one datagram, reconnecting once when the send fails.
    fn send_datagram(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.ensure_connected()?;
        match self.send_once(msg) {
            Ok(()) => Ok(()),
            Err(e) if is_msgsize(&e) => Err(e),
            Err(_) => {
                self.connect()?;
                self.send_once(msg)
            }
        }
    }

    fn send_once(&mut self, msg: &[u8]) -> std::io::Result<()> {
        let sent = match &self.conn {
            Some(Conn::Udp(s)) => s.send(msg)?,
            Some(Conn::Unix(s, _)) => s.send(msg)?,
            Some(Conn::Tcp(_)) | None => return Err(ErrorKind::NotConnected.into()),
        };
        if sent == msg.len() {
            Ok(())
        } else {
            Err(std::io::Error::new(ErrorKind::WriteZero, "syslog datagram truncated"))
        }
    }

    fn write_datagrams(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()> {
        let udp = matches!(self.target, Target::Udp(_));
        let mut failed = None;
        for rec in batch {
            let msg = self.message(rec);
            let result = if udp && msg.len() > MAX_UDP_MESSAGE {
                Err(std::io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} bytes do not fit a UDP datagram", msg.len()),
                ))
            } else {
                self.send_datagram(&msg)
            };
            match result {
                Ok(()) => {}
                // Too large for this record only: send the others, then report it.
                Err(e) if e.kind() == ErrorKind::InvalidInput || is_msgsize(&e) => {
                    failed.get_or_insert((rec.seq, e));
                }
                // The transport is gone: the rest would fail too.
                Err(e) => {
                    return Err(std::io::Error::new(e.kind(), format!("syslog record {}: {e}", rec.seq)));
                }
            }
        }
        match failed {
            None => Ok(()),
            Some((seq, e)) => Err(std::io::Error::new(e.kind(), format!("syslog record {seq}: {e}"))),
        }
    }

    fn write_stream(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()> {
        let mut frames = Vec::new();
        for rec in batch {
            let msg = self.message(rec);
            frames.extend_from_slice(format!("{} ", msg.len()).as_bytes());
            frames.extend_from_slice(&msg);
        }
        self.drop_stale();
        self.ensure_connected()?;
        if self.send_stream(&frames).is_ok() {
            return Ok(());
        }
        self.connect()?;
        let result = self.send_stream(&frames);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn send_stream(&mut self, frames: &[u8]) -> std::io::Result<()> {
        match &mut self.conn {
            Some(Conn::Tcp(s)) => {
                s.write_all(frames)?;
                s.flush()
            }
            _ => Err(ErrorKind::NotConnected.into()),
        }
    }
}

impl AuditSink for SyslogSink {
    fn name(&self) -> &str {
        "syslog"
    }

    fn write(&mut self, batch: &[ChainedRecord]) -> std::io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        match self.target {
            Target::Tcp(_) => self.write_stream(batch),
            Target::Udp(_) | Target::Unix(_) => {
                self.drop_stale();
                self.write_datagrams(batch)
            }
        }
    }

    /// Notices dead connections and reconnects (within the backoff), so the next batch finds a connection.
    /// Reports an error only when a reconnect attempt fails.
    fn tick(&mut self) -> std::io::Result<()> {
        self.drop_stale();
        if self.conn.is_some() || self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        self.connect()
    }
}

/// Opens a transport to `target`.
fn open(target: &Target) -> std::io::Result<Conn> {
    match target {
        Target::Udp(addr) => {
            let mut last = None;
            for a in addr.to_socket_addrs()? {
                let local = if a.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                match UdpSocket::bind(local).and_then(|s| s.connect(a).map(|()| s)) {
                    Ok(s) => return Ok(Conn::Udp(s)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| no_address(addr)))
        }
        Target::Tcp(addr) => {
            let mut last = None;
            for a in addr.to_socket_addrs()? {
                match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                    Ok(s) => {
                        s.set_write_timeout(Some(SEND_TIMEOUT))?;
                        s.set_nodelay(true)?;
                        return Ok(Conn::Tcp(s));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| no_address(addr)))
        }
        Target::Unix(path) => {
            let ino = std::fs::metadata(path).ok().map(|m| m.ino());
            let s = UnixDatagram::unbound()?;
            s.connect(path)?;
            s.set_write_timeout(Some(SEND_TIMEOUT))?;
            Ok(Conn::Unix(s, ino))
        }
    }
}

fn no_address(addr: &str) -> std::io::Error {
    std::io::Error::new(ErrorKind::NotFound, format!("{addr} resolves to no address"))
}

/// Whether a TCP connection to a syslog receiver has been closed by the peer. Receivers never send, so EOF,
/// an error or (unexpected) data all mean the connection should be replaced.
fn tcp_peer_gone(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut buf = [0u8; 512];
    let mut reader = s;
    let gone = match reader.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) if e.kind() == ErrorKind::Interrupted => false,
        Ok(_) | Err(_) => true,
    };
    gone || s.set_nonblocking(false).is_err()
}

fn is_msgsize(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::MSGSIZE.raw_os_error())
}

/// `host:port` with a numeric port (the host is resolved at each connect).
fn check_host_port(addr: &str) -> anyhow::Result<String> {
    let port_ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    anyhow::ensure!(port_ok, "syslog: address {addr:?} must be host:port");
    Ok(addr.to_string())
}

/// The RFC 5424 code of a facility name.
fn facility_code(name: &str) -> Option<u8> {
    let name = name.to_ascii_lowercase();
    FACILITIES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// The syslog severity of a record level.
fn severity(level: &str) -> u8 {
    match level {
        "Critical" => 2,
        "Error" => 3,
        "Warning" => 4,
        "Informational" => 6,
        "Verbose" => 7,
        _ => 5,
    }
}

/// 1 to `max` characters of PRINTUSASCII (`%d33-126`).
fn is_header_field(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
}

/// The machine's host name, `-` when unknown or unusable in a syslog header.
fn machine_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| is_header_field(h, 255))
        .unwrap_or_else(|| "-".to_string())
}

/// A record time as an RFC 5424 TIMESTAMP: the fraction cut to at most 6 digits. [`ChainedRecord::time`] is
/// always `YYYY-MM-DDTHH:MM:SS.fffffffZ` (UTC); anything that is not a UTC time of at most nanosecond precision
/// (`YYYY-MM-DDTHH:MM:SS[.digits]Z`) is `-`.
fn timestamp(time: &str) -> String {
    let fraction = time.get(19..time.len().saturating_sub(1)).unwrap_or("");
    let fraction_ok = fraction.is_empty()
        || fraction
            .strip_prefix('.')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    // 30 = 19 + '.' + 9 fraction digits + 'Z'; a header field also rules out spaces.
    if !is_header_field(time, 30) || !fraction_ok || coffer_core::audit::record::parse_time(time).is_none() {
        return "-".into();
    }
    match time.get(..26) {
        Some(head) if time.len() > 27 => format!("{head}Z"),
        _ => time.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::net::{TcpListener, UdpSocket};
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    use coffer_core::audit::{AuditSink as _, ChainedRecord};

    use super::*;

    fn cfg(transport: &str, address: &str) -> SyslogConfig {
        SyslogConfig {
            transport: transport.into(),
            address: address.into(),
            facility: "authpriv".into(),
            app_name: "coffer".into(),
            hostname: Some("hsm1.example".into()),
        }
    }

    fn rec(seq: u64, level: &str) -> ChainedRecord {
        ChainedRecord {
            seq,
            time: "2026-11-22T08:05:42.1234567Z".into(),
            level: level.into(),
            line: format!(r#"{{"category":"AuditEvent","operationName":"KeyGet","n":{seq},"s":"é ü"}}"#).into_bytes(),
        }
    }

    fn expected(seq: u64, pri: u8) -> Vec<u8> {
        let mut m = format!(
            "<{pri}>1 2026-11-22T08:05:42.123456Z hsm1.example coffer {} AuditEvent - ",
            std::process::id()
        )
        .into_bytes();
        m.extend_from_slice(&rec(seq, "Informational").line);
        m
    }

    #[test]
    fn timestamps_keep_at_most_six_fraction_digits() {
        assert_eq!(timestamp("2026-11-22T08:05:42.1234567Z"), "2026-11-22T08:05:42.123456Z");
        assert_eq!(timestamp("2026-11-22T08:05:42.12Z"), "2026-11-22T08:05:42.12Z");
        assert_eq!(timestamp("2026-11-22T08:05:42Z"), "2026-11-22T08:05:42Z");
        assert_eq!(
            timestamp("2026-11-22T08:05:42.123456789Z"),
            "2026-11-22T08:05:42.123456Z"
        );
        assert_eq!(timestamp("2026-11-22T08:05:42.1234567890Z"), "-");
        // What a record carries.
        let t = coffer_core::audit::record::format_time(1_712_213_254_717_861_900);
        assert_eq!(timestamp(&t), format!("{}Z", &t[..26]));
        assert_eq!(timestamp(""), "-");
        assert_eq!(timestamp("2026-11-22 08:05:42Z"), "-");
        assert_eq!(timestamp("2026-11-22T08:05:42.Z"), "-");
        assert_eq!(timestamp("2026-11-22T08:05:42.123"), "-");
        assert_eq!(timestamp("2026-11-22T08:05:42.123Z junk"), "-");
    }

    #[test]
    fn severities_and_facilities() {
        assert_eq!(severity("Informational"), 6);
        assert_eq!(severity("Warning"), 4);
        assert_eq!(severity("Error"), 3);
        assert_eq!(facility_code("kern"), Some(0));
        assert_eq!(facility_code("authpriv"), Some(10));
        assert_eq!(facility_code("AUTH"), Some(4));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("local8"), None);
    }

    #[test]
    fn bad_configuration_is_refused() {
        let mut c = cfg("udp", "127.0.0.1:514");
        c.facility = "nonsense".into();
        assert!(SyslogSink::new(&c).is_err());
        assert!(SyslogSink::new(&cfg("smoke", "127.0.0.1:514")).is_err());
        assert!(SyslogSink::new(&cfg("udp", "127.0.0.1")).is_err());
        assert!(SyslogSink::new(&cfg("tcp", ":514")).is_err());
        assert!(SyslogSink::new(&cfg("unix", "")).is_err());
        let mut c = cfg("udp", "127.0.0.1:514");
        c.app_name = "two words".into();
        assert!(SyslogSink::new(&c).is_err());
        let mut c = cfg("udp", "127.0.0.1:514");
        c.hostname = Some(String::new());
        assert!(SyslogSink::new(&c).is_err());
        // An unreachable receiver is not a configuration error.
        assert!(SyslogSink::new(&cfg("unix", "/nonexistent/log.sock")).is_ok());
    }

    #[test]
    fn machine_hostname_is_a_header_field() {
        let h = machine_hostname();
        assert!(h == "-" || is_header_field(&h, 255), "{h:?}");
        let mut c = cfg("udp", "127.0.0.1:514");
        c.hostname = None;
        let sink = SyslogSink::new(&c).unwrap();
        assert!(
            sink.header_tail.starts_with(&format!("{h} coffer ")),
            "{}",
            sink.header_tail
        );
    }

    #[test]
    fn udp_sends_one_datagram_per_record() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = rx.local_addr().unwrap().to_string();
        let mut sink = SyslogSink::new(&cfg("udp", &addr)).unwrap();
        assert_eq!(sink.name(), "syslog");
        sink.write(&[rec(7, "Informational"), rec(8, "Warning"), rec(9, "Error")])
            .unwrap();
        let mut buf = vec![0u8; 70_000];
        for (seq, pri) in [(7, 86), (8, 84), (9, 83)] {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&buf[..n]),
                String::from_utf8_lossy(&expected(seq, pri))
            );
        }
    }

    #[test]
    fn udp_refuses_records_too_large_for_a_datagram_but_sends_the_others() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = rx.local_addr().unwrap().to_string();
        let mut sink = SyslogSink::new(&cfg("udp", &addr)).unwrap();
        let mut big = rec(2, "Informational");
        big.line = vec![b'x'; 70_000];
        let err = sink
            .write(&[rec(1, "Informational"), big, rec(3, "Informational")])
            .unwrap_err();
        assert!(err.to_string().contains("record 2"), "{err}");
        let mut buf = vec![0u8; 70_000];
        for seq in [1, 3] {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(buf[..n], expected(seq, 86)[..]);
        }
    }

    #[test]
    fn facility_sets_pri() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = rx.local_addr().unwrap().to_string();
        let mut c = cfg("udp", &addr);
        c.facility = "local3".into();
        c.app_name = "hsm-audit".into();
        let mut sink = SyslogSink::new(&c).unwrap();
        sink.write(&[rec(1, "Error")]).unwrap();
        let mut buf = vec![0u8; 70_000];
        let n = rx.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            text.starts_with("<155>1 2026-11-22T08:05:42.123456Z hsm1.example hsm-audit "),
            "{text}"
        );
    }

    /// Reads octet-counted frames from `data`.
    fn frames(mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let sp = data.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().unwrap();
            out.push(data[sp + 1..sp + 1 + len].to_vec());
            data = &data[sp + 1 + len..];
        }
        out
    }

    #[test]
    fn tcp_uses_octet_counting_and_reconnects_when_the_peer_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut sink = SyslogSink::new(&cfg("tcp", &addr)).unwrap();

        // First connection: read one batch, then close.
        let (mut c1, _) = listener.accept().unwrap();
        sink.write(&[rec(1, "Informational"), rec(2, "Warning")]).unwrap();
        let want: Vec<u8> = [expected(1, 86), expected(2, 84)]
            .iter()
            .flat_map(|m| [format!("{} ", m.len()).into_bytes(), m.clone()].concat())
            .collect();
        let mut got = vec![0u8; want.len()];
        c1.read_exact(&mut got).unwrap();
        assert_eq!(got, want);
        assert_eq!(frames(&got), vec![expected(1, 86), expected(2, 84)]);
        drop(c1);
        std::thread::sleep(Duration::from_millis(100));

        // The closed connection is noticed before the next batch, which goes over a new one.
        let t = std::thread::spawn(move || {
            let (mut c2, _) = listener.accept().unwrap();
            c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut all = Vec::new();
            c2.read_to_end(&mut all).unwrap();
            all
        });
        sink.write(&[rec(3, "Error")]).unwrap();
        drop(sink);
        let all = t.join().unwrap();
        assert_eq!(frames(&all), vec![expected(3, 83)]);
    }

    #[test]
    fn tcp_write_fails_when_nobody_listens_and_recovers_after_backoff() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut sink = SyslogSink::new(&cfg("tcp", &addr.to_string())).unwrap();
        assert!(sink.write(&[rec(1, "Informational")]).is_err());
        // Within the backoff no attempt is made, but the write still fails.
        assert!(sink.write(&[rec(1, "Informational")]).is_err());
        let listener = TcpListener::bind(addr).unwrap();
        std::thread::sleep(MIN_BACKOFF * 2 + Duration::from_millis(200));
        sink.tick().unwrap();
        sink.write(&[rec(1, "Informational")]).unwrap();
        let (mut c, _) = listener.accept().unwrap();
        drop(sink);
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap();
        assert_eq!(frames(&all), vec![expected(1, 86)]);
    }

    #[test]
    fn unix_datagrams_and_a_recreated_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = SyslogSink::new(&cfg("unix", path.to_str().unwrap())).unwrap();
        sink.write(&[rec(1, "Informational"), rec(2, "Warning")]).unwrap();
        let mut buf = vec![0u8; 70_000];
        for (seq, pri) in [(1, 86), (2, 84)] {
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(buf[..n], expected(seq, pri)[..]);
        }

        // The receiver restarts: its socket is removed and bound again.
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sink.write(&[rec(3, "Error")]).unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(buf[..n], expected(3, 83)[..]);

        // Gone for good: the write fails.
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        assert!(sink.write(&[rec(4, "Error")]).is_err());
    }

    #[test]
    fn unix_send_error_reconnects_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut sink = SyslogSink::new(&cfg("unix", path.to_str().unwrap())).unwrap();
        // The receiver is replaced; only the failed send can tell, because the inode check is defeated below.
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let Some(Conn::Unix(_, ino)) = &mut sink.conn else {
            panic!("a unix sink should hold a unix connection");
        };
        *ino = std::fs::metadata(&path).ok().map(|m| m.ino());
        sink.write(&[rec(1, "Informational")]).unwrap();
        let mut buf = vec![0u8; 70_000];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(buf[..n], expected(1, 86)[..]);
    }
}
