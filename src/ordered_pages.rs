//! Pages of a long read shared between two threads, each on its own connection, and handed on
//! in order on the calling thread.
//!
//! A SQLite preview reads a network's contributions page by page, and only the calling thread
//! folds them into the totals and the inputs digest, which must see them in id order. With the
//! pages dealt out in fixed pairs (one here, one on the spare connection), the calling thread
//! read half the pages and folded all of them while the other thread waited for its next
//! page: a 52-week `recent` preview took about 190 ms of the calling thread's CPU and 115 ms of
//! the other's (bench/analysis.md). Here either thread claims the next page when it is free,
//! so the one that folds reads fewer pages, and the other reads ahead.

use std::collections::BTreeMap;
use std::sync::mpsc;

use parking_lot::{Condvar, Mutex};

/// Gives the last id of the page after an id, read on a connection (None: that page runs to
/// the end).
pub type PageEnd<'f, C, E> = &'f (dyn Fn(&mut C, &str) -> Result<Option<String>, E> + Sync);

/// Reads the page after an id up to an id (or to the end), on a connection.
pub type ReadPage<'f, C, P, E> = &'f (dyn Fn(&mut C, &str, Option<&str>) -> Result<P, E> + Sync);

/// Where the read stands, shared by both threads.
struct Cursor {
    /// Where the next page starts; None once the last page is claimed.
    after: Option<String>,
    /// Pages claimed so far: the next page's number.
    claimed: usize,
    /// Pages handed on so far.
    handed: usize,
    /// The calling thread has stopped (done, or an error): the other stops too.
    stopped: bool,
    /// The other thread has claimed its first page, or ended: until then the calling thread
    /// claims none, so the first page is always the other thread's.
    spare_began: bool,
}

/// The shared cursor and the bound on pages read ahead.
struct Shared<'f, C, E> {
    cursor: Mutex<Cursor>,
    /// Signalled when a page is handed on or the read stops.
    moved: Condvar,
    /// Pages claimed and not yet handed on, at most: what bounds the memory held.
    ahead: usize,
    /// The end of the page after an id (None: it runs to the end).
    end: PageEnd<'f, C, E>,
}

/// A page claimed by one thread: its number, and where it starts and ends.
struct Claim {
    n: usize,
    after: String,
    upto: Option<String>,
}

/// What a claim that does not wait found.
enum Claimed {
    /// A page to read.
    Page(Claim),
    /// Already `ahead` pages claimed and not handed on.
    Full,
    /// Every page is claimed (this many).
    All(usize),
}

impl<C, E> Shared<'_, C, E> {
    /// Claims the next page if one may be claimed now. The page's end is read on `conn`
    /// while the cursor is held, so the two threads' pages meet exactly.
    fn claim(&self, conn: &mut C) -> Result<Claimed, E> {
        let mut cur = self.cursor.lock();
        self.claim_held(&mut cur, conn)
    }

    fn claim_held(&self, cur: &mut Cursor, conn: &mut C) -> Result<Claimed, E> {
        let Some(after) = cur.after.take() else {
            return Ok(Claimed::All(cur.claimed));
        };
        if cur.stopped || cur.claimed - cur.handed >= self.ahead {
            cur.after = Some(after);
            return Ok(Claimed::Full);
        }
        let upto = match (self.end)(conn, &after) {
            Ok(upto) => upto,
            Err(e) => {
                cur.after = Some(after);
                return Err(e);
            }
        };
        cur.after.clone_from(&upto);
        let n = cur.claimed;
        cur.claimed += 1;
        Ok(Claimed::Page(Claim { n, after, upto }))
    }

    /// The other thread's claim of the next page, waiting while `ahead` are out; None when
    /// all are claimed or the read stopped.
    fn claim_waiting(&self, conn: &mut C) -> Result<Option<Claim>, E> {
        let mut cur = self.cursor.lock();
        loop {
            if cur.stopped {
                return Ok(None);
            }
            match self.claim_held(&mut cur, conn)? {
                Claimed::Page(claim) => {
                    if !cur.spare_began {
                        cur.spare_began = true;
                        self.moved.notify_all();
                    }
                    return Ok(Some(claim));
                }
                Claimed::All(_) => return Ok(None),
                Claimed::Full => self.moved.wait(&mut cur),
            }
        }
    }

    /// Waits until the other thread has claimed its first page or ended.
    fn wait_for_spare(&self) {
        let mut cur = self.cursor.lock();
        while !cur.spare_began {
            self.moved.wait(&mut cur);
        }
    }

    /// The other thread has ended: the calling thread waits for it no more.
    fn spare_ended(&self) {
        self.cursor.lock().spare_began = true;
        self.moved.notify_all();
    }

    fn handed(&self, n: usize) {
        self.cursor.lock().handed = n;
        self.moved.notify_all();
    }

    fn stop(&self) {
        self.cursor.lock().stopped = true;
        self.moved.notify_all();
    }
}

/// Tells the calling thread that the other has ended, however it ends.
struct EndedOnDrop<'s, 'f, C, E>(&'s Shared<'f, C, E>);

impl<C, E> Drop for EndedOnDrop<'_, '_, C, E> {
    fn drop(&mut self) {
        self.0.spare_ended();
    }
}

/// Stops the other thread when the calling thread leaves, however it leaves.
struct StopOnDrop<'s, 'f, C, E>(&'s Shared<'f, C, E>);

impl<C, E> Drop for StopOnDrop<'_, '_, C, E> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Reads pages from the start (`""`) to the end, on `here` and on `spare` (in a scoped
/// thread), and hands each to `each` on this thread, in order; returns how many pages were
/// read on `spare`. `end(conn, after)` gives the
/// last id of the page after `after` (None: that page runs to the end); `read(conn, after,
/// upto)` reads the page after `after` up to `upto`. At most `ahead` pages are read and not yet
/// handed on. The first error stops both threads and is returned; `each` is then not called
/// again.
pub fn in_order<C, P, E>(
    here: &mut C,
    spare: &mut C,
    ahead: usize,
    end: PageEnd<'_, C, E>,
    read: ReadPage<'_, C, P, E>,
    mut each: impl FnMut(P) -> Result<(), E>,
) -> Result<usize, E>
where
    C: Send,
    P: Send,
    E: Send,
{
    let shared = Shared {
        cursor: Mutex::new(Cursor {
            after: Some(String::new()),
            claimed: 0,
            handed: 0,
            stopped: false,
            spare_began: false,
        }),
        moved: Condvar::new(),
        ahead: ahead.max(1),
        end,
    };
    let (to_here, from_spare) = mpsc::sync_channel::<(usize, Result<P, E>)>(shared.ahead);
    std::thread::scope(|scope| {
        let shared = &shared;
        let other = scope.spawn(move || spare_reads(shared, spare, read, &to_here));
        let stop = StopOnDrop(shared);
        let handed = hand_on(shared, here, read, &from_spare, &mut each);
        // Before joining the other thread: the stop wakes it if it waits for room to claim,
        // and a send it makes then fails.
        drop(stop);
        drop(from_spare);
        let on_spare = other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        handed.map(|()| on_spare)
    })
}

/// The other thread: claims and reads pages until all are claimed or the read stops; returns
/// how many it read and sent.
fn spare_reads<C, P, E>(
    shared: &Shared<'_, C, E>,
    conn: &mut C,
    read: ReadPage<'_, C, P, E>,
    to_here: &mpsc::SyncSender<(usize, Result<P, E>)>,
) -> usize {
    let _ended = EndedOnDrop(shared);
    let mut sent = 0;
    loop {
        let (n, page) = match shared.claim_waiting(conn) {
            Ok(Some(c)) => (c.n, read(conn, &c.after, c.upto.as_deref())),
            Ok(None) => return sent,
            Err(e) => (usize::MAX, Err(e)),
        };
        let failed = page.is_err();
        if to_here.send((n, page)).is_err() || failed {
            return sent;
        }
        sent += 1;
    }
}

/// The calling thread: hands on the next page when it has it; otherwise reads the next
/// unclaimed page itself, or waits for the other thread's.
fn hand_on<C, P, E>(
    shared: &Shared<'_, C, E>,
    conn: &mut C,
    read: ReadPage<'_, C, P, E>,
    from_spare: &mpsc::Receiver<(usize, Result<P, E>)>,
    each: &mut impl FnMut(P) -> Result<(), E>,
) -> Result<(), E> {
    // The first page is the other thread's: it then always reads at least one, whatever the
    // two threads' timing (a test checks that previews use it), and this thread waits only
    // for it to start and find that page's end.
    shared.wait_for_spare();
    let mut ready: BTreeMap<usize, P> = BTreeMap::new();
    let mut next = 0;
    loop {
        if let Some(page) = ready.remove(&next) {
            each(page)?;
            next += 1;
            shared.handed(next);
            continue;
        }
        if let Ok((n, page)) = from_spare.try_recv() {
            ready.insert(n, page?);
            continue;
        }
        match shared.claim(conn)? {
            Claimed::Page(c) => {
                ready.insert(c.n, read(conn, &c.after, c.upto.as_deref())?);
                continue;
            }
            Claimed::All(total) if total == next => return Ok(()),
            Claimed::All(_) | Claimed::Full => {}
        }
        // The next page is the other thread's, still being read.
        match from_spare.recv() {
            Ok((n, page)) => {
                ready.insert(n, page?);
            }
            // It sends every page it claims before it ends, unless this thread stopped it, so
            // it panicked: `in_order` raises that panic again when it joins it, and this
            // return is never seen.
            Err(mpsc::RecvError) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A fake read of `total` ids ("00001"…), pages of `size`, each read sleeping a little
    /// at random so the two threads interleave differently each run.
    struct Fake {
        total: usize,
        size: usize,
        /// Pages read and not yet handed on (checked against `ahead`).
        out: AtomicUsize,
        most_out: AtomicUsize,
        fail_at: Option<usize>,
    }

    fn id(i: usize) -> String {
        format!("{i:05}")
    }

    fn first_after(after: &str) -> usize {
        after.parse::<usize>().map_or(1, |i| i + 1)
    }

    impl Fake {
        fn new(total: usize, size: usize, fail_at: Option<usize>) -> Self {
            Fake {
                total,
                size,
                out: AtomicUsize::new(0),
                most_out: AtomicUsize::new(0),
                fail_at,
            }
        }

        fn end(&self, after: &str) -> Result<Option<String>, String> {
            let last = first_after(after) + self.size - 1;
            Ok((last < self.total).then(|| id(last)))
        }

        /// Reads on a fake connection: its random state and the pages it has read.
        fn read(
            &self,
            (seed, pages): &mut (u64, usize),
            after: &str,
            upto: Option<&str>,
        ) -> Result<Vec<String>, String> {
            *pages += 1;
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            std::thread::sleep(Duration::from_micros(*seed % 300));
            let last = upto.map_or(self.total, |u| u.parse().unwrap_or(0));
            let page: Vec<String> = (first_after(after)..=last).map(id).collect();
            if let Some(f) = self.fail_at {
                if page.contains(&id(f)) {
                    return Err(format!("failed at {f}"));
                }
            }
            let out = self.out.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_out.fetch_max(out, Ordering::SeqCst);
            Ok(page)
        }
    }

    /// Runs `in_order` over `fake`, failing the test instead of hanging if it does not
    /// return within a minute (a thread left waiting).
    fn run(
        fake: &Fake,
        ahead: usize,
        mut each: impl FnMut(Vec<String>) -> Result<(), String> + Send,
    ) -> Result<(), String> {
        let (done, finished) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let (mut here, mut spare) = ((1u64, 0), (0x9E37_79B9_7F4A_7C15u64, 0));
                let got = in_order(
                    &mut here,
                    &mut spare,
                    ahead,
                    &|_, after| fake.end(after),
                    &|conn, after, upto| fake.read(conn, after, upto),
                    |page| {
                        fake.out.fetch_sub(1, Ordering::SeqCst);
                        each(page)
                    },
                );
                let _ = done.send((got, spare.1));
            });
            match finished.recv_timeout(Duration::from_secs(60)) {
                Ok((got, spare_pages)) => {
                    // The first page is always the other thread's.
                    if fake.fail_at.is_none() {
                        assert!(spare_pages >= 1, "the other thread read no page");
                    }
                    // What it returns is the pages the other connection read.
                    if let Ok(on_spare) = got {
                        assert_eq!(on_spare, spare_pages);
                    }
                    got.map(|_| ())
                }
                Err(_) => {
                    eprintln!("in_order did not return within a minute: a thread left waiting");
                    std::process::abort()
                }
            }
        })
    }

    #[test]
    fn every_id_is_handed_on_once_in_order() {
        for (total, size, ahead) in [
            (0, 3, 4),
            (1, 3, 4),
            (10, 3, 1),
            (10, 5, 2),
            (97, 4, 4),
            (400, 7, 3),
            (50, 50, 4),
            (51, 50, 4),
        ] {
            for _ in 0..5 {
                let fake = Fake::new(total, size, None);
                let mut seen = Vec::new();
                run(&fake, ahead, |page| {
                    seen.extend(page);
                    Ok(())
                })
                .expect("no error");
                let want: Vec<String> = (1..=total).map(id).collect();
                assert_eq!(seen, want, "total {total}, size {size}, ahead {ahead}");
                assert!(
                    fake.most_out.load(Ordering::SeqCst) <= ahead,
                    "at most {ahead} pages out, saw {}",
                    fake.most_out.load(Ordering::SeqCst)
                );
            }
        }
    }

    #[test]
    fn a_failed_read_stops_both_and_is_returned() {
        for fail_at in [1, 5, 38, 100] {
            let fake = Fake::new(100, 6, Some(fail_at));
            let mut seen = Vec::new();
            let got = run(&fake, 3, |page| {
                seen.extend(page);
                Ok(())
            });
            assert_eq!(got, Err(format!("failed at {fail_at}")));
            // Nothing at or past the failed page was handed on.
            assert!(seen.iter().all(|i| i < &id(fail_at)), "{seen:?}");
            assert_eq!(seen, (1..seen.len() + 1).map(id).collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_error_handing_on_stops_the_other_reader() {
        let fake = Fake::new(10_000, 5, None);
        let mut pages = 0;
        let got = run(&fake, 4, |_| {
            pages += 1;
            if pages == 3 {
                return Err("stop".to_owned());
            }
            Ok(())
        });
        assert_eq!(got, Err("stop".to_owned()));
        // The other thread stopped instead of reading the rest (it is joined before
        // `in_order` returns): at most the pages that were out when the error came.
        assert!(fake.most_out.load(Ordering::SeqCst) <= 4);
        assert!(
            fake.out.load(Ordering::SeqCst) <= 4 + 1,
            "read on after the error"
        );
    }
}
