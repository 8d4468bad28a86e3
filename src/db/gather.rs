//! Single writes that arrive together, sent to the database together: the first request to
//! find no group in flight leads, and runs its own write with every write queued behind it
//! as one statement, on its own connection; the requests it carries wait for its answer.
//!
//! Why: on PostgreSQL a single `POST /contributions` is one statement of one round trip
//! ([`super::as_member`]), and what it still costs is PostgreSQL's work per statement:
//! executor start-up, the commit with its log flush, the wake-ups on both sides. Rows written
//! by one statement share all of that. A lone request leads a group of one and runs as
//! before, with no hop to another thread and no wait for one; while a group's statement runs,
//! the requests that arrive queue behind it, and the first of them leads the next group. So
//! groups form only when requests overlap, and never wait for one another to fill.
//!
//! A group's statement writes all of its rows or none. When it fails (a key taken by a retry,
//! say), each of its requests runs its write again alone, as it would have without a group,
//! and gets that write's own answer.
//!
//! The leader runs on the connection its request holds; the others hold theirs while they
//! wait, as they would while a statement of theirs ran. A leader that panics tells its group
//! to write alone, and passes the lead on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use parking_lot::Mutex;

/// Most writes in one group: bounds one statement's size and what one failure sends back.
pub const MAX_GROUP: usize = 64;

/// Gathers the writes of type `I` (see the module's doc). One group is written at a time:
/// with two at once, one group's statement could run while another's commit waited for its
/// log flush, but the groups were smaller and the rate no higher (`bench/analysis.md`).
pub struct Gather<I> {
    state: Mutex<State<I>>,
    /// Groups of two or more whose statement ran, and the writes they held.
    groups: AtomicU64,
    gathered: AtomicU64,
    /// Groups whose statement failed (their writes went alone).
    failed: AtomicU64,
}

struct State<I> {
    /// The writes waiting. The first is the next leader once it has been told to lead.
    queue: VecDeque<Waiting<I>>,
    /// Whether a leader is writing a group, or has been told to lead and not yet taken the
    /// queue.
    leading: bool,
}

struct Waiting<I> {
    item: Arc<I>,
    turn: SyncSender<Turn>,
}

/// What a waiting request is told.
enum Turn {
    /// Its group's statement ran: whether it wrote this request's rows.
    Done(bool),
    /// Its group's statement failed: it must write alone.
    Alone,
    /// It leads the next group.
    Lead,
}

impl<I> Default for Gather<I> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                leading: false,
            }),
            groups: AtomicU64::new(0),
            gathered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

impl<I> std::fmt::Debug for Gather<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Gather")
            .field("queued", &state.queue.len())
            .field("leading", &state.leading)
            .finish()
    }
}

/// How a group went, as the leader reports it to [`Gather::write`].
pub enum Group {
    /// The statement ran; for each item of the group in order, whether it was written.
    Ran(Vec<bool>),
    /// The statement failed: each write is run again alone.
    Failed,
}

impl<I> Gather<I> {
    /// Groups of two or more whose statement ran, the writes they held, and groups whose
    /// statement failed, for `/metrics`.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.groups.load(Ordering::Relaxed),
            self.gathered.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Writes `item` with whatever writes are queued, and returns whether it was written.
    ///
    /// `group` runs a group of two or more items as one statement on `conn`; `alone` runs one
    /// item by itself on `conn` (a group of one, or each write of a group that failed).
    /// `alone`'s error is the request's own; `group`'s is not, and sends its writes alone.
    pub fn write<C, E>(
        &self,
        conn: &mut C,
        item: I,
        group: impl FnOnce(&mut C, &[&I]) -> Group,
        alone: impl FnOnce(&mut C, &I) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let item = Arc::new(item);
        let (turn, told) = sync_channel(1);
        let waiting = Waiting {
            item: Arc::clone(&item),
            turn,
        };
        // A request that leads at once keeps its write out of the queue, so that nothing
        // joins its group of one between its taking the lead and its write.
        let leads_at_once = {
            let mut state = self.state.lock();
            if std::mem::replace(&mut state.leading, true) {
                state.queue.push_back(waiting);
                None
            } else {
                Some(waiting)
            }
        };
        let mut lead = match leads_at_once {
            Some(waiting) => Leading {
                gather: self,
                group: vec![waiting],
            },
            None => {
                match wait(&told) {
                    Turn::Done(written) => return Ok(written),
                    Turn::Alone => return alone(conn, &item),
                    Turn::Lead => {}
                }
                let mut lead = Leading {
                    gather: self,
                    group: Vec::new(),
                };
                lead.take();
                lead
            }
        };
        if lead.group.len() == 1 {
            // A group of one: written alone, still leading, so that the requests arriving
            // meanwhile queue and go next as one group.
            let out = alone(conn, &item);
            lead.group.clear();
            return out;
        }
        let items: Vec<&I> = lead.group.iter().map(|w| &*w.item).collect();
        let ran = group(conn, &items);
        let counter = match &ran {
            Group::Ran(_) => {
                let n = u64::try_from(items.len()).unwrap_or(u64::MAX);
                self.gathered.fetch_add(n, Ordering::Relaxed);
                &self.groups
            }
            Group::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match lead.answer(ran) {
            Some(written) => Ok(written),
            None => alone(conn, &item),
        }
    }
}

/// Waits for a request's turn; a dropped channel (its leader panicked) means alone.
fn wait(told: &Receiver<Turn>) -> Turn {
    told.recv().unwrap_or(Turn::Alone)
}

/// The lead of one group, whose first write is the leader's own. Dropping it passes the lead
/// to the first request queued since, or ends it; the group's requests still waiting are
/// told to write alone.
struct Leading<'a, I> {
    gather: &'a Gather<I>,
    group: Vec<Waiting<I>>,
}

impl<I> Leading<'_, I> {
    /// Takes the queue (at most [`MAX_GROUP`] writes) as the group. The leader was told to
    /// lead as the first of the queue, and only a leader takes from it, so the leader's own
    /// write comes first.
    fn take(&mut self) {
        let mut state = self.gather.state.lock();
        let n = state.queue.len().min(MAX_GROUP);
        self.group = state.queue.drain(..n).collect();
    }

    /// Passes the lead on, tells each of the group's other requests how it went, and returns
    /// the leader's own answer (None: alone).
    fn answer(mut self, ran: Group) -> Option<bool> {
        let group = std::mem::take(&mut self.group);
        drop(self);
        let turn = |i: usize| match &ran {
            Group::Ran(written) => Turn::Done(written.get(i).copied().unwrap_or(false)),
            Group::Failed => Turn::Alone,
        };
        for (i, waiting) in group.iter().enumerate().skip(1) {
            // A request that is gone (its thread ended) needs no answer.
            let _ = waiting.turn.send(turn(i));
        }
        match turn(0) {
            Turn::Done(written) => Some(written),
            _ => None,
        }
    }
}

impl<I> Drop for Leading<'_, I> {
    fn drop(&mut self) {
        {
            let mut state = self.gather.state.lock();
            match state.queue.front() {
                Some(next) => {
                    let _ = next.turn.send(Turn::Lead);
                }
                None => state.leading = false,
            }
        }
        for waiting in self.group.drain(..) {
            let _ = waiting.turn.send(Turn::Alone);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::RangeInclusive;
    use std::thread;

    use super::*;

    type Answer = Result<bool, u32>;

    /// A write that returns whether its number is even, alone or in a group.
    fn even(n: &u32) -> bool {
        n % 2 == 0
    }

    /// Write 0 leads alone, and holds the lead until the writes `others` have queued behind
    /// it, each with `group` and `alone`. Returns write 0's answer and the others' in order
    /// (an `Err` for a thread that panicked).
    fn behind_a_leader(
        gather: &Arc<Gather<u32>>,
        others: RangeInclusive<u32>,
        group: impl Fn(&mut (), &[&u32]) -> Group + Send + Sync + 'static,
        alone: fn(&mut (), &u32) -> Answer,
    ) -> (Answer, Vec<thread::Result<Answer>>) {
        // A channel, not a barrier: if the first write panics, the test fails instead of
        // waiting for it forever.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let first = {
            let gather = Arc::clone(gather);
            thread::spawn(move || {
                gather.write(
                    &mut (),
                    0,
                    |_, _| panic!("the first write is alone"),
                    |_, n| {
                        held.recv().expect("released");
                        Ok(even(n))
                    },
                )
            })
        };
        until(|| gather.state.lock().leading);
        let queued = others.clone().count();
        let group = Arc::new(group);
        let others: Vec<_> = others
            .map(|n| {
                let (gather, group) = (Arc::clone(gather), Arc::clone(&group));
                thread::spawn(move || gather.write(&mut (), n, |c, items| group(c, items), alone))
            })
            .collect();
        until(|| gather.state.lock().queue.len() == queued);
        // The first write may be gone (a panic): its join below says so.
        let _ = release.send(());
        let first = first.join().expect("the first write ends");
        (
            first,
            others.into_iter().map(thread::JoinHandle::join).collect(),
        )
    }

    /// Waits until `done` holds, for at most 10 s.
    fn until(done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "waited 10 s");
            thread::yield_now();
        }
    }

    #[test]
    fn a_lone_write_runs_alone() {
        let gather = Gather::default();
        let out: Answer = gather.write(
            &mut (),
            4,
            |_, _| panic!("no group of one"),
            |_, n| Ok(even(n)),
        );
        assert_eq!(out, Ok(true));
        assert!(!gather.state.lock().leading);
    }

    /// The writes queued behind a leader go as the next group, each with its own answer.
    #[test]
    fn writes_queued_behind_a_group_go_as_the_next_group() {
        let gather = Arc::new(Gather::default());
        let groups = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let seen = Arc::clone(&groups);
        let (first, others) = behind_a_leader(
            &gather,
            1..=5,
            move |_, items| {
                seen.lock().push(items.iter().map(|n| **n).collect());
                Group::Ran(items.iter().map(|n| even(n)).collect())
            },
            |_, _| Err(0),
        );
        assert_eq!(first, Ok(true));
        let answers: Vec<_> = others
            .into_iter()
            .map(|a| a.expect("no write panicked"))
            .collect();
        assert_eq!(
            answers,
            vec![Ok(false), Ok(true), Ok(false), Ok(true), Ok(false)]
        );
        let groups = groups.lock();
        assert_eq!(groups.len(), 1, "{groups:?}");
        let mut group = groups[0].clone();
        group.sort_unstable();
        assert_eq!(group, vec![1, 2, 3, 4, 5]);
        assert!(!gather.state.lock().leading);
    }

    /// A group whose statement failed: each of its writes runs alone and gets its own answer.
    #[test]
    fn a_failed_group_sends_each_write_alone() {
        let gather = Arc::new(Gather::default());
        let (first, others) = behind_a_leader(
            &gather,
            1..=3,
            |_, _| Group::Failed,
            |_, n| if *n == 2 { Err(*n) } else { Ok(even(n)) },
        );
        assert_eq!(first, Ok(true));
        let answers: Vec<_> = others
            .into_iter()
            .map(|a| a.expect("no write panicked"))
            .collect();
        assert_eq!(answers, vec![Ok(false), Err(2), Ok(false)]);
        assert!(!gather.state.lock().leading);
    }

    /// A leader that panics in its group's statement: the requests it carried write alone,
    /// and the lead is not lost.
    #[test]
    fn a_leader_that_panics_loses_no_write_and_no_lead() {
        let gather = Arc::new(Gather::default());
        let (first, others) = behind_a_leader(
            &gather,
            1..=3,
            |_, _| panic!("the group's statement panicked"),
            |_, n| Ok(even(n)),
        );
        assert_eq!(first, Ok(true));
        // The leader of the group panicked; the two it carried wrote alone.
        assert_eq!(others.iter().filter(|a| a.is_err()).count(), 1);
        assert_eq!(others.iter().filter(|a| a.is_ok()).count(), 2);
        assert!(!gather.state.lock().leading);
        let after: Answer = gather.write(&mut (), 8, |_, _| Group::Failed, |_, n| Ok(even(n)));
        assert_eq!(after, Ok(true));
    }
}
