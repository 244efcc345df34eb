//! The executor: how `run` and every `reproduce` experiment carry out their independent
//! jobs. It owns the parallel loop (rayon), the journal (a job whose key is recorded is
//! taken from it instead of computed again; a newly finished one is recorded before it is
//! returned, so a killed run resumes), and progress (an [`Observer`] is told as jobs
//! finish). The studies say only what a job is and what its key is; the split follows
//! argmin's executor and observers. Resource limits are checked before a study hands
//! its jobs over ([`crate::resources::check`]), and the `run` grid's sharding selects
//! the jobs it hands over (`study::grid::shard_items`).

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::journal::Journal;
use crate::observe::Observer;

/// The order in which [`Executor::map`] starts its jobs; results come back in job order
/// either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// First job first.
    InOrder,
    /// Last job first: for job lists that grow in cost, so that the last jobs to finish
    /// are short ones and every core stays busy to the end.
    LongestLast,
}

/// Runs jobs in parallel with a journal and an observer, both optional.
#[derive(Clone, Copy, Default)]
pub struct Executor<'a> {
    observer: Option<&'a dyn Observer>,
    journal: Option<&'a Journal>,
}

impl std::fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("observer", &self.observer.map(|_| "…"))
            .field("journal", &self.journal)
            .finish()
    }
}

impl<'a> Executor<'a> {
    /// An executor that tells `observer` (if any) and resumes from / records to
    /// `journal` (if any).
    pub fn new(observer: Option<&'a dyn Observer>, journal: Option<&'a Journal>) -> Self {
        Executor { observer, journal }
    }

    /// `compute()` unless the journal already holds `key`, in which case its recorded
    /// value; a computed value is recorded before it is returned.
    ///
    /// # Errors
    ///
    /// `compute`'s errors; [`crate::Error::Io`] when the record cannot be written.
    pub fn journaled<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        compute: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if let Some(v) = self.journal.and_then(|j| j.get::<T>(key)) {
            return Ok(v);
        }
        let v = compute()?;
        if let Some(j) = self.journal {
            j.record(key, &v)?;
        }
        Ok(v)
    }

    /// `work(i, job)` for every job, in parallel and [`journaled`](Self::journaled) under
    /// `key(i, job)`, telling the observer as each finishes; the results in job order.
    ///
    /// # Errors
    ///
    /// The first error of a job (in job order), after the jobs already started finish.
    pub fn map<J, T>(
        &self,
        jobs: &[J],
        schedule: Schedule,
        key: impl Fn(usize, &J) -> String + Sync,
        work: impl Fn(usize, &J) -> Result<T> + Sync,
    ) -> Result<Vec<T>>
    where
        J: Sync,
        T: Serialize + DeserializeOwned + Send,
    {
        let counter = self.counter(jobs.len());
        let one = |(i, job): (usize, &J)| {
            let r = self.journaled(&key(i, job), || work(i, job));
            counter.tick();
            r
        };
        match schedule {
            Schedule::InOrder => jobs.par_iter().enumerate().map(one).collect(),
            Schedule::LongestLast => {
                let mut out: Vec<T> = jobs
                    .par_iter()
                    .enumerate()
                    .rev()
                    .map(one)
                    .collect::<Result<_>>()?;
                out.reverse();
                Ok(out)
            }
        }
    }

    /// A progress counter over `total` items for a study that runs its own loop.
    pub(crate) fn counter(&self, total: usize) -> Counter<'a> {
        Counter {
            done: AtomicUsize::new(0),
            total,
            observer: self.observer,
        }
    }
}

/// Counts finished items (from any thread) and tells the observer, if any.
pub(crate) struct Counter<'a> {
    done: AtomicUsize,
    total: usize,
    observer: Option<&'a dyn Observer>,
}

impl Counter<'_> {
    /// One more item finished.
    pub(crate) fn tick(&self) {
        let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(o) = self.observer {
            o.progress(d, self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record(Mutex<Vec<(usize, usize)>>);

    impl Observer for Record {
        fn progress(&self, done: usize, total: usize) {
            self.0.lock().unwrap().push((done, total));
        }
    }

    #[test]
    fn results_in_job_order_with_every_job_counted() {
        let jobs: Vec<u64> = (0..37).collect();
        for schedule in [Schedule::InOrder, Schedule::LongestLast] {
            let seen = Record::default();
            let ex = Executor::new(Some(&seen), None);
            let out = ex
                .map(
                    &jobs,
                    schedule,
                    |i, _| i.to_string(),
                    |i, &j| Ok(j * 10 + i as u64),
                )
                .unwrap();
            assert_eq!(out, jobs.iter().map(|j| j * 11).collect::<Vec<_>>());
            let mut ticks = seen.0.into_inner().unwrap();
            ticks.sort();
            assert_eq!(ticks, (1..=37).map(|d| (d, 37)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_journal_answers_what_it_holds_and_records_the_rest() {
        let dir = std::env::temp_dir().join(format!("mi-est-execute-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        let _ = std::fs::remove_file(&path);
        let earlier = Journal::open(&path, "test", false).unwrap();
        earlier.record("job-2", &999u64).unwrap();
        drop(earlier);
        // A run resuming: job 2 finished before it was killed.
        let journal = Journal::open(&path, "test", false).unwrap();
        let ex = Executor::new(None, Some(&journal));
        let calls = AtomicUsize::new(0);
        let out = ex
            .map(
                &[0u64, 1, 2, 3],
                Schedule::InOrder,
                |i, _| format!("job-{i}"),
                |_, &j| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Ok(j)
                },
            )
            .unwrap();
        assert_eq!(out, vec![0, 1, 999, 3]);
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        drop(journal);
        let again = Journal::open(&path, "test", false).unwrap();
        let ex = Executor::new(None, Some(&again));
        let out: Vec<u64> = ex
            .map(
                &[7u64; 4],
                Schedule::LongestLast,
                |i, _| format!("job-{i}"),
                |_, _| Err(crate::Error::invalid("job", 0, "recomputed a recorded job")),
            )
            .unwrap();
        assert_eq!(out, vec![0, 1, 999, 3]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_error_is_returned_not_recorded() {
        let ex = Executor::default();
        let e = ex
            .map(
                &[1u64, 2, 3],
                Schedule::InOrder,
                |i, _| i.to_string(),
                |_, &j| {
                    if j == 2 {
                        Err(crate::Error::invalid("job", j, "fails"))
                    } else {
                        Ok(j)
                    }
                },
            )
            .unwrap_err();
        assert!(e.to_string().contains("`job` = 2"), "{e}");
    }
}
