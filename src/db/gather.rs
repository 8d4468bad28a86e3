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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use parking_lot::Mutex;

/// Most writes in one group: bounds one statement's size and what one failure sends back.
pub const MAX_GROUP: usize = 64;

/// Gathers the writes of type `I` (see the module's doc).
pub struct Gather<I> {
    state: Mutex<State<I>>,
    /// Most groups written at once.
    max_leaders: usize,
    /// Groups of two or more whose statement ran, and the writes they held.
    groups: AtomicU64,
    gathered: AtomicU64,
    /// Groups whose statement failed (their writes went alone).
    failed: AtomicU64,
}

struct State<I> {
    queue: Vec<Waiting<I>>,
    /// Leaders running a group, or told to lead and about to take the queue.
    leaders: usize,
}

struct Waiting<I> {
    item: Arc<I>,
    turn: SyncSender<Turn>,
    /// Told to lead the next group, and not yet taken the queue.
    promoted: bool,
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

/// Most groups written at once by default. With two, one group's statement could run while
/// another's commit waits for its log flush; measured, the groups were smaller and the rate
/// no higher (`bench/analysis.md`), so one.
pub const LEADERS: usize = 1;

impl<I> Default for Gather<I> {
    fn default() -> Self {
        Self::new(LEADERS)
    }
}

impl<I> Gather<I> {
    /// Gathers with at most `max_leaders` groups written at once (at least one).
    pub fn new(max_leaders: usize) -> Self {
        Self {
            max_leaders: max_leaders.max(1),
            state: Mutex::new(State {
                queue: Vec::new(),
                leaders: 0,
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
            .field("leaders", &state.leaders)
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
            promoted: false,
        };
        let leads_at_once = {
            let mut state = self.state.lock();
            if state.leaders < self.max_leaders {
                // It takes no queued write: while fewer groups than the most are running,
                // every write queued has been told to lead.
                state.leaders += 1;
                Some(waiting)
            } else {
                state.queue.push(waiting);
                None
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
                lead.take(&item);
                lead
            }
        };
        let own = lead.group.iter().position(|w| Arc::ptr_eq(&w.item, &item));
        if lead.group.len() == 1 {
            // A group of one: written alone, still leading, so that the requests arriving
            // meanwhile queue and go next as one group.
            let out = alone(conn, &item);
            lead.group.clear();
            return out;
        }
        let items: Vec<&I> = lead.group.iter().map(|w| &*w.item).collect();
        let ran = group(conn, &items);
        match &ran {
            Group::Ran(_) => {
                self.groups.fetch_add(1, Ordering::Relaxed);
                self.gathered.fetch_add(
                    u64::try_from(items.len()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
            }
            Group::Failed => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mine = lead.answer(ran, own);
        match mine {
            Some(written) => Ok(written),
            None => alone(conn, &item),
        }
    }
}

/// Waits for a request's turn; a dropped channel (its leader panicked) means alone.
fn wait(told: &Receiver<Turn>) -> Turn {
    told.recv().unwrap_or(Turn::Alone)
}

/// The lead of one group. Dropping it passes the lead to the first request queued since, or
/// ends it; the group's requests still waiting are told to write alone.
struct Leading<'a, I> {
    gather: &'a Gather<I>,
    group: Vec<Waiting<I>>,
}

impl<I> Leading<'_, I> {
    /// Takes the leader's own write `own`, and the writes queued that no other leader was
    /// told to take (at most [`MAX_GROUP`] in all), as the group.
    fn take(&mut self, own: &Arc<I>) {
        let mut state = self.gather.state.lock();
        let queue = std::mem::take(&mut state.queue);
        for waiting in queue {
            let mine = Arc::ptr_eq(&waiting.item, own);
            if mine || (!waiting.promoted && self.group.len() < MAX_GROUP - 1) {
                self.group.push(waiting);
            } else {
                state.queue.push(waiting);
            }
        }
    }

    /// Tells each of the group's requests but the leader's own (`own`) how it went, passes
    /// the lead on, and returns the leader's own answer (None: alone).
    fn answer(mut self, ran: Group, own: Option<usize>) -> Option<bool> {
        let group = std::mem::take(&mut self.group);
        drop(self);
        let mut mine = None;
        for (i, waiting) in group.into_iter().enumerate() {
            let turn = match &ran {
                Group::Ran(written) => Turn::Done(written.get(i).copied().unwrap_or(false)),
                Group::Failed => Turn::Alone,
            };
            if Some(i) == own {
                mine = match turn {
                    Turn::Done(written) => Some(written),
                    _ => None,
                };
            } else {
                // A request that is gone (its thread ended) needs no answer.
                let _ = waiting.turn.send(turn);
            }
        }
        mine
    }
}

impl<I> Drop for Leading<'_, I> {
    fn drop(&mut self) {
        {
            let mut state = self.gather.state.lock();
            match state.queue.iter_mut().find(|w| !w.promoted) {
                Some(next) => {
                    next.promoted = true;
                    let _ = next.turn.send(Turn::Lead);
                }
                None => state.leaders -= 1,
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
    use std::sync::Barrier;
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
        until(|| gather.state.lock().leaders == 1);
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
        assert_eq!(gather.state.lock().leaders, 0);
    }

    /// The writes queued behind a leader go as the next group, each with its own answer.
    #[test]
    fn writes_queued_behind_a_group_go_as_the_next_group() {
        let gather = Arc::new(Gather::new(1));
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
        assert_eq!(gather.state.lock().leaders, 0);
    }

    /// A group whose statement failed: each of its writes runs alone and gets its own answer.
    #[test]
    fn a_failed_group_sends_each_write_alone() {
        let gather = Arc::new(Gather::new(1));
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
        assert_eq!(gather.state.lock().leaders, 0);
    }

    /// A leader that panics in its group's statement: the requests it carried write alone,
    /// and the lead is not lost.
    #[test]
    fn a_leader_that_panics_loses_no_write_and_no_lead() {
        let gather = Arc::new(Gather::new(1));
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
        assert_eq!(gather.state.lock().leaders, 0);
        let after: Answer = gather.write(&mut (), 8, |_, _| Group::Failed, |_, n| Ok(even(n)));
        assert_eq!(after, Ok(true));
    }

    /// With two leaders, two lone writes run at once, and a third waits for either.
    #[test]
    fn two_leaders_write_at_once() {
        let gather = Arc::new(Gather::new(2));
        let both = Arc::new(Barrier::new(3));
        let leaders: Vec<_> = (0..2u32)
            .map(|n| {
                let (gather, both) = (Arc::clone(&gather), Arc::clone(&both));
                thread::spawn(move || {
                    gather.write(
                        &mut (),
                        n,
                        |_, _| panic!("each leads alone"),
                        |_, n| {
                            // Both are writing at once, or this waits forever.
                            both.wait();
                            Ok::<_, u32>(even(n))
                        },
                    )
                })
            })
            .collect();
        until(|| gather.state.lock().leaders == 2);
        let third = {
            let gather = Arc::clone(&gather);
            thread::spawn(move || {
                gather.write(
                    &mut (),
                    3,
                    |_, _| Group::Failed,
                    |_, n| Ok::<_, u32>(even(n)),
                )
            })
        };
        until(|| gather.state.lock().queue.len() == 1);
        both.wait();
        let answers: Vec<_> = leaders
            .into_iter()
            .map(|t| t.join().expect("the thread ends"))
            .collect();
        assert_eq!(answers, vec![Ok(true), Ok(false)]);
        assert_eq!(third.join().expect("the thread ends"), Ok(false));
        assert_eq!(gather.state.lock().leaders, 0);
    }
}
