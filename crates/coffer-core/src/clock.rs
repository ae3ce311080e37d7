//! Time as a port: the only place that reads the wall clock.

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, Unix seconds.
    fn now(&self) -> i64;
    /// Now, Unix nanoseconds (audit timestamps).
    fn now_nanos(&self) -> i128 {
        i128::from(self.now()) * 1_000_000_000
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
    fn now_nanos(&self) -> i128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
            .unwrap_or(0)
    }
}

/// A clock fixed at a settable time, for tests.
#[derive(Debug, Default)]
pub struct FixedClock(pub std::sync::atomic::AtomicI64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
