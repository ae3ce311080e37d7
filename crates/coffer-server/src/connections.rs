//! Connection limits (`[connections]`, docs/NETWORK.md): how many connections are open at once, in total and per
//! client address, and how long a connection may sit without a request in progress.
//!
//! - [`CapAcceptor`] runs before the TLS handshake: a connection beyond `max_connections`, or beyond
//!   `max_connections_per_address` from one address (an IPv6 address counts by its /64; trusted proxies are exempt
//!   from the per-address cap), is closed at once. Its slot is held by the stream ([`Capped`]) until the connection
//!   ends.
//! - [`Watched`] wraps the decrypted stream and closes it (a read error) when
//!   - no request has been in progress for `idle_timeout` (after the TLS handshake, between keep-alive requests,
//!     on HTTP/1.1 and on HTTP/2 alike: HTTP/2 control frames do not keep a connection open), or
//!   - over HTTP/1.1, the head of a request has not arrived completely within `header_read_timeout` of its first
//!     byte (over HTTP/2 an incomplete request head is idle time).
//! - [`Tracked`] wraps the connection's service and counts the requests in progress, which is what "idle" means.
//!   The request body has its own deadline, `body_read_timeout`, enforced where the body is read
//!   (`routes::body`).
//!
//! The unfinished TLS handshake is limited separately (10 s, axum-server's handshake timeout).
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

/// Whether an address is exempt from the per-address cap (a trusted reverse proxy).
pub type Exempt = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// The open connections of one listener.
pub struct Connections {
    limits: Limits,
    exempt: Exempt,
    counts: Mutex<Counts>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// IPv4 addresses count by themselves (IPv4-mapped IPv6 too), IPv6 addresses by their /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl Connections {
    /// Connections under `limits`; `exempt` addresses have no per-address cap.
    pub fn new(limits: Limits, exempt: Exempt) -> Arc<Self> {
        Arc::new(Self {
            limits,
            exempt,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A slot for a new connection from `ip`, or `None` when a cap is reached.
    fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = address_key(ip);
        let per_address = !(self.exempt)(ip);
        let mut c = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.total >= self.limits.max_connections {
            return None;
        }
        if per_address {
            let n = c.per_address.entry(key).or_insert(0);
            if *n >= self.limits.max_connections_per_address {
                return None;
            }
            *n += 1;
        }
        c.total += 1;
        Some(Slot {
            owner: Arc::clone(self),
            key: per_address.then_some(key),
        })
    }
}

/// A connection's place in the counts, given back when the connection ends.
struct Slot {
    owner: Arc<Connections>,
    key: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self
            .owner
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(key) = self.key
            && let Some(n) = c.per_address.get_mut(&key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_address.remove(&key);
            }
        }
    }
}

/// The acceptor before the TLS handshake: takes a slot or closes the connection.
#[derive(Debug, Clone)]
pub struct CapAcceptor {
    pub(crate) connections: Arc<Connections>,
}

impl<S: Send + 'static> axum_server::accept::Accept<tokio::net::TcpStream, S> for CapAcceptor {
    type Stream = Capped<tokio::net::TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let slot = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.connections.try_acquire(peer.ip()));
        std::future::ready(match slot {
            Some(slot) => Ok((
                Capped {
                    inner: stream,
                    _slot: slot,
                },
                service,
            )),
            None => {
                tracing::debug!("connection refused: connection limit reached");
                Err(io::Error::other("connection limit reached"))
            }
        })
    }
}

/// A TCP stream holding its connection slot.
pub struct Capped<T> {
    inner: T,
    _slot: Slot,
}

impl<T: AsyncRead + Unpin> AsyncRead for Capped<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Capped<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the stream and the service of one connection share: requests in progress, when the last one ended.
#[derive(Debug)]
pub struct ConnState {
    in_flight: AtomicUsize,
    /// Requests started so far (a request head that completed ends the header deadline).
    started: AtomicU64,
    idle_since: Mutex<Instant>,
}

impl ConnState {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            idle_since: Mutex::new(Instant::now()),
        })
    }

    fn idle_since(&self) -> Instant {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Marks a request in progress until dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: &Arc<ConnState>) -> Self {
        state.started.fetch_add(1, Ordering::SeqCst);
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's service, counting its requests in progress.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let guard = InFlight::start(&self.state);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let r = fut.await;
            drop(guard);
            r
        })
    }
}

/// The decrypted stream of a connection, closed when it is idle too long or a request head is too slow.
pub struct Watched<T> {
    inner: T,
    state: Arc<ConnState>,
    limits: Limits,
    /// HTTP/1.x (the header deadline applies); HTTP/2 has only the idle deadline.
    http1: bool,
    /// When the first byte of the next request head arrived, and the request count then.
    head_started: Option<(Instant, u64)>,
    sleep: Pin<Box<Sleep>>,
}

/// Wraps a connection's stream and service so that they share its state.
pub fn watch<T, S>(stream: T, service: S, limits: Limits, http1: bool) -> (Watched<T>, Tracked<S>) {
    let state = ConnState::new();
    let watched = Watched {
        inner: stream,
        state: Arc::clone(&state),
        limits,
        http1,
        head_started: None,
        sleep: Box::pin(tokio::time::sleep(limits.idle_timeout)),
    };
    (watched, Tracked { inner: service, state })
}

impl<T> Watched<T> {
    /// When the connection must be closed, if no request is in progress (`None`: a request is in progress).
    fn deadline(&mut self) -> Option<Instant> {
        if self.state.in_flight.load(Ordering::SeqCst) > 0 {
            self.head_started = None;
            return None;
        }
        let started = self.state.started.load(Ordering::SeqCst);
        if self.head_started.is_some_and(|(_, n)| n != started) {
            self.head_started = None;
        }
        let idle = self.state.idle_since() + self.limits.idle_timeout;
        Some(match self.head_started {
            Some((at, _)) => idle.min(at + self.limits.header_read_timeout),
            None => idle,
        })
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "connection closed: idle or request head too slow",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let got_bytes = matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        let now = Instant::now();
        let deadline = self.deadline();
        if got_bytes && self.http1 && deadline.is_some() && self.head_started.is_none() {
            let n = self.state.started.load(Ordering::SeqCst);
            self.head_started = Some((now, n));
        }
        let deadline = self.deadline();
        if let Some(d) = deadline
            && now >= d
        {
            return Poll::Ready(Err(timed_out()));
        }
        if polled.is_pending() {
            // Wake up at the deadline (or, while a request is in progress, to look again later).
            let wake = deadline.unwrap_or(now + self.limits.idle_timeout);
            self.sleep.as_mut().reset(wake);
            if self.sleep.as_mut().poll(cx).is_ready() {
                return match self.deadline() {
                    Some(d) if Instant::now() >= d => Poll::Ready(Err(timed_out())),
                    _ => {
                        // Not due yet (a request started or ended meanwhile): poll again soon.
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                };
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total() {
        let limits = Limits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_connections_per_address: 2,
        };
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let c = Connections::new(limits, Arc::new(move |ip| ip == proxy));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let a1 = c.try_acquire(a).unwrap();
        let _a2 = c.try_acquire("::ffff:192.0.2.1".parse().unwrap()).unwrap();
        assert!(c.try_acquire(a).is_none(), "per address");
        let v6 = c.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert!(c.try_acquire("10.0.0.1".parse().unwrap()).is_none(), "in total");
        drop(a1);
        drop(v6);
        // the proxy is exempt from the per-address cap, not from the total
        let _p1 = c.try_acquire(proxy).unwrap();
        let _p2 = c.try_acquire(proxy).unwrap();
        assert!(c.try_acquire(proxy).is_none());
        // an IPv6 /64 counts as one address
        let c = Connections::new(limits, Arc::new(|_| false));
        let _x = c.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        let _y = c.try_acquire("2001:db8::2".parse().unwrap()).unwrap();
        assert!(c.try_acquire("2001:db8::ffff".parse().unwrap()).is_none());
        assert!(c.try_acquire("2001:db8:0:1::1".parse().unwrap()).is_some());
    }
}
