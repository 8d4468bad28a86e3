//! SQLite checkpoints, off the writers' path.
//!
//! In WAL mode a commit appends pages to the write-ahead log, and a checkpoint copies them
//! back into the database file. SQLite's default is for the connection whose commit takes the
//! log past 1,000 pages to do that, inside its `COMMIT`: here, while it still holds this
//! process's writer turn (`conn::write_tx_with`), so every other writer waited for the copy
//! and its `fsync`. The pool's connections leave checkpoints to one thread instead, with its
//! own connection: woken after a request's database work, it checkpoints (`PASSIVE`: it
//! never waits for a reader or a writer, and skips when there is nothing to copy), then rests
//! [`INTERVAL`] before the next one, so a busy service checkpoints about 20 times a second
//! and an idle one not at all. Once the log is long, the thread copies what was committed
//! during its checkpoint in the writer turn, so that the next writer starts the log over
//! (see `checkpoint` below).
//!
//! Durability is unchanged: a commit is in the log either way, and a checkpoint copies only
//! committed pages. A process that dies between checkpoints leaves a longer log, which the
//! next connection replays as it always does.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Integer;
use parking_lot::{Condvar, Mutex};

use super::conn::{establish, sqlite_turn, DatabaseUrl};
use super::AnyConnection;

/// Rest between two checkpoints while writes keep coming.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// How long the second pass waits for the writer turn before it gives up until next time.
const TURN_WAIT: Duration = Duration::from_secs(1);

/// Log length, in frames (pages), past which the log is made to start over: SQLite's own
/// auto-checkpoint length.
const RESTART_AFTER: i32 = 1000;

/// What the pool's connections set so that their commits never checkpoint.
pub const POOL_PRAGMA: &str = "PRAGMA wal_autocheckpoint = 0";

#[derive(Default)]
struct Signal {
    woken: bool,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    signal: Mutex<Signal>,
    bell: Condvar,
}

/// The checkpointing thread of one SQLite pool. Dropping it stops the thread (after the
/// checkpoint it may be running) and waits for it.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; it connects to `url` at its first checkpoint.
    pub fn start(url: DatabaseUrl) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&url, &theirs))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint soon (after the rest, if one has just run). Cheap: a lock and,
    /// when the thread is not already due, a wake-up.
    pub fn wake(&self) {
        let mut signal = self.shared.signal.lock();
        if !signal.woken {
            signal.woken = true;
            self.shared.bell.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.signal.lock().stopping = true;
        self.shared.bell.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the SQLite checkpoint thread panicked");
            }
        }
    }
}

fn run(url: &DatabaseUrl, shared: &Shared) {
    let mut conn: Option<AnyConnection> = None;
    loop {
        {
            let mut signal = shared.signal.lock();
            while !signal.woken && !signal.stopping {
                shared.bell.wait(&mut signal);
            }
            if signal.stopping {
                return;
            }
            signal.woken = false;
        }
        if let Err(error) = checkpoint(url, &mut conn) {
            // The database may be away (a full disk, a read-only file): the next wake-up
            // tries again on a new connection.
            tracing::warn!(%error, "SQLite checkpoint failed");
            conn = None;
        }
        // The rest: wake-ups during it are kept for after it; only a stop cuts it short.
        let rest_end = Instant::now() + INTERVAL;
        let mut signal = shared.signal.lock();
        while !signal.stopping && !shared.bell.wait_until(&mut signal, rest_end).timed_out() {}
    }
}

/// The result row of `PRAGMA wal_checkpoint`.
#[derive(QueryableByName)]
struct Outcome {
    /// 1 when another checkpoint held the lock and this one did nothing.
    #[diesel(sql_type = Integer)]
    busy: i32,
    /// Frames in the log.
    #[diesel(sql_type = Integer)]
    log: i32,
}

fn passive(conn: &mut AnyConnection) -> Result<Outcome, String> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
        .get_result::<Outcome>(conn)
        .map_err(|e| e.to_string())
}

/// Checkpoints on the thread's connection, opened when there is none: first beside the
/// writers; then, once the log is [`RESTART_AFTER`] frames long, once more in this process's
/// writer turn. A writer starts the log over from its beginning only when its transaction
/// began with every frame already copied, which a steady stream of writes never leaves
/// room for: without the second pass the log kept growing (past 1 GiB in 24 s of batches).
/// The second pass copies only what was committed during the first.
fn checkpoint(url: &DatabaseUrl, conn: &mut Option<AnyConnection>) -> Result<(), String> {
    let conn = match conn {
        Some(open) => open,
        None => conn.insert(establish(url).map_err(|e| e.to_string())?),
    };
    let first = passive(conn)?;
    if first.busy == 0 && first.log < RESTART_AFTER {
        return Ok(());
    }
    let Ok(_turn) = sqlite_turn(TURN_WAIT) else {
        // A long write holds the turn: the next wake-up tries again.
        tracing::debug!("SQLite checkpoint's second pass skipped: the writer turn is busy");
        return Ok(());
    };
    let second = passive(conn)?;
    if second.busy != 0 {
        // Another process's checkpoint holds the lock: this one is skipped, not retried.
        tracing::debug!("SQLite checkpoint skipped: another one is running");
    }
    Ok(())
}
