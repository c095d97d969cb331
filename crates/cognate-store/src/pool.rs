//! A minimal blocking connection pool, shared by the SQLite readers and the
//! PostgreSQL backend. Connections are opened lazily up to `max`; callers
//! beyond that wait (bounded) for one to come back.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{StoreError, StoreResult};

/// A poolable connection.
pub(crate) trait PoolConn: Send + 'static {
    /// True once the connection can no longer be used (e.g. the server closed
    /// it); such connections are dropped instead of being reused.
    fn is_broken(&self) -> bool;
}

type Connect<C> = Box<dyn Fn() -> StoreResult<C> + Send + Sync>;

struct State<C> {
    idle: Vec<C>,
    /// Connections in existence: idle, checked out, or being opened.
    open: usize,
}

pub(crate) struct Pool<C: PoolConn> {
    state: Mutex<State<C>>,
    returned: Condvar,
    max: usize,
    wait: Duration,
    connect: Connect<C>,
}

impl<C: PoolConn> Pool<C> {
    pub fn new(max: usize, wait: Duration, connect: Connect<C>) -> Self {
        Pool {
            state: Mutex::new(State { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
            max: max.max(1),
            wait,
            connect,
        }
    }

    /// Adds an already open connection (e.g. the one used for migrations).
    pub fn put(&self, conn: C) {
        let mut st = self.lock();
        st.open += 1;
        st.idle.push(conn);
        drop(st);
        self.returned.notify_one();
    }

    pub fn get(&self) -> StoreResult<Pooled<'_, C>> {
        let deadline = Instant::now() + self.wait;
        let mut st = self.lock();
        loop {
            while let Some(conn) = st.idle.pop() {
                if conn.is_broken() {
                    st.open -= 1;
                    tracing::warn!("dropping a broken database connection");
                    continue;
                }
                return Ok(Pooled { pool: self, conn: Some(conn) });
            }
            if st.open < self.max {
                st.open += 1;
                // Connecting can take a while: never hold the lock over it.
                drop(st);
                return match (self.connect)() {
                    Ok(conn) => Ok(Pooled { pool: self, conn: Some(conn) }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::Backend(format!(
                    "timed out after {:?} waiting for a database connection (pool size {})",
                    self.wait, self.max
                )));
            }
            st = match self.returned.wait_timeout(st, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Drops every idle connection, e.g. after one turned out dead because
    /// the server restarted: the others are most likely dead too.
    pub fn discard_idle(&self) {
        let mut st = self.lock();
        let idle = std::mem::take(&mut st.idle);
        st.open -= idle.len();
        drop(st);
        drop(idle);
        self.returned.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        // The state is a plain list and a counter, consistent at every point a
        // panic could occur, so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn give_back(&self, conn: C) {
        let mut st = self.lock();
        if conn.is_broken() {
            st.open -= 1;
            drop(st);
            drop(conn);
        } else {
            st.idle.push(conn);
            drop(st);
        }
        self.returned.notify_one();
    }
}

impl<C: PoolConn> Drop for Pool<C> {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        if idle.is_empty() {
            return;
        }
        // Closing a `postgres::Client` blocks on its private runtime, which
        // panics if the last reference to the store is dropped on an async
        // worker thread. A plain thread is never inside a runtime.
        let closer = std::thread::spawn(move || drop(idle));
        if closer.join().is_err() {
            tracing::warn!("closing pooled database connections panicked");
        }
    }
}

/// A checked-out connection; goes back to the pool (or is discarded if
/// broken) when dropped.
pub(crate) struct Pooled<'a, C: PoolConn> {
    pool: &'a Pool<C>,
    conn: Option<C>,
}

impl<C: PoolConn> std::ops::Deref for Pooled<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        // Only `drop` takes the connection out.
        match &self.conn {
            Some(c) => c,
            None => unreachable!("pooled connection used after release"),
        }
    }
}

impl<C: PoolConn> std::ops::DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        match &mut self.conn {
            Some(c) => c,
            None => unreachable!("pooled connection used after release"),
        }
    }
}

impl<C: PoolConn> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Fake {
        broken: Arc<std::sync::atomic::AtomicBool>,
    }
    impl PoolConn for Fake {
        fn is_broken(&self) -> bool {
            self.broken.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn reuses_connections_and_replaces_broken_ones() {
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = opened.clone();
        let pool = Pool::new(
            2,
            Duration::from_millis(50),
            Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(Fake { broken: Default::default() })
            }),
        );
        {
            let a = pool.get().unwrap();
            let _b = pool.get().unwrap();
            // Pool exhausted: the third caller times out.
            assert!(matches!(pool.get(), Err(StoreError::Backend(_))));
            a.broken.store(true, Ordering::SeqCst);
        }
        assert_eq!(opened.load(Ordering::SeqCst), 2);
        let _c = pool.get().unwrap();
        let _d = pool.get().unwrap();
        // One of the two was broken and had to be replaced.
        assert_eq!(opened.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn waiter_gets_returned_connection() {
        let pool = Arc::new(Pool::new(1, Duration::from_secs(5), Box::new(|| Ok(Fake { broken: Default::default() }))));
        let held = pool.get().unwrap();
        let p2 = pool.clone();
        let waiter = std::thread::spawn(move || p2.get().map(|_| ()).is_ok());
        std::thread::sleep(Duration::from_millis(50));
        drop(held);
        assert!(waiter.join().unwrap());
    }
}
