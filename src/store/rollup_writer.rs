//! The rollup writer: a dedicated thread that takes finished minutes from agent actors through
//! a bounded channel, writes them in batches (one transaction per batch, never one per
//! minute), and deletes rows older than the retention period.
//!
//! Agent actors never touch the store: they hand rows to a [`RollupSink`], which never blocks.
//! When the channel is full (the store cannot keep up), rows are dropped and counted rather
//! than held without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{RollupRow, Store};
use crate::clock;

/// Batches of rows waiting in the channel before senders start dropping.
const CHANNEL_BATCHES: usize = 4096;
/// Rows written by one transaction at most.
const MAX_BATCH_ROWS: usize = 2000;
/// How long a row may wait before its batch is written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often rows past the retention period are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// What the writer is told: rows to write, or to write what it holds now and say so.
enum Message {
    Rows(Vec<RollupRow>),
    Flush(SyncSender<()>),
}

/// Where agent actors hand finished minutes; cheap to clone, never blocks.
#[derive(Clone)]
pub struct RollupSink {
    sender: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// The writer thread.
pub struct RollupWriter {
    /// The thread; it ends when every sink is dropped, after writing what it holds.
    pub thread: JoinHandle<()>,
}

// === impl RollupSink ===

impl RollupSink {
    /// Hands `rows` to the writer; drops them (counted, logged) when its queue is full.
    pub fn send(&self, rows: Vec<RollupRow>) {
        if rows.is_empty() {
            return;
        }
        match self.sender.try_send(Message::Rows(rows)) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => {
                let Message::Rows(rows) = message else {
                    return;
                };
                let before = self.dropped.fetch_add(rows.len() as u64, Ordering::Relaxed);
                // One warning per thousand rows lost is enough to see it without a flood.
                if before / 1000 != (before + rows.len() as u64) / 1000 || before == 0 {
                    tracing::warn!(
                        message = "Rollup writer behind; rows dropped.",
                        dropped = before + rows.len() as u64
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::debug!(message = "Rollup writer gone; rows dropped.");
            }
        }
    }
}

impl RollupSink {
    /// Waits (blocking, up to `within`) until every row handed over before the call is
    /// written: a report about to be built sees the last minutes. False when it timed out.
    pub fn flush(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let (done, wait) = sync_channel(1);
        let mut message = Message::Flush(done);
        // A full queue is waited on, but no longer than `within`.
        loop {
            match self.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

// === impl RollupWriter ===

impl RollupWriter {
    /// Starts the writer on `store`; `retention_days` is asked before each prune, so a policy
    /// reload is followed.
    pub fn start(
        store: Store,
        retention_days: impl Fn() -> u64 + Send + 'static,
    ) -> std::io::Result<(RollupSink, RollupWriter)> {
        let (sender, receiver) = sync_channel(CHANNEL_BATCHES);
        let thread = std::thread::Builder::new()
            .name("rollup-writer".into())
            .spawn(move || run(&store, &receiver, &retention_days))?;
        let sink = RollupSink {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        Ok((sink, RollupWriter { thread }))
    }
}

fn run(store: &Store, receiver: &Receiver<Message>, retention_days: &dyn Fn() -> u64) {
    let span = tracing::info_span!("rollup_writer");
    let _entered = span.enter();
    let mut batch: Vec<RollupRow> = Vec::new();
    let mut next_flush = Instant::now() + FLUSH_EVERY;
    // The first prune runs at start, so a controller restarted daily still prunes.
    let mut next_prune = Instant::now();
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok(Message::Rows(rows)) => batch.extend(rows),
            Ok(Message::Flush(done)) => {
                write(store, &mut batch);
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                write(store, &mut batch);
                tracing::debug!(message = "Every rollup sink dropped; writer stops.");
                return;
            }
        }
        let now = Instant::now();
        if batch.len() >= MAX_BATCH_ROWS || now >= next_flush {
            write(store, &mut batch);
            next_flush = now + FLUSH_EVERY;
        }
        if now >= next_prune {
            prune(store, retention_days());
            next_prune = now + PRUNE_EVERY;
        }
    }
}

/// Writes and empties `batch`; a failed write is logged and its rows dropped, so a broken
/// disk cannot grow the batch without bound.
fn write(store: &Store, batch: &mut Vec<RollupRow>) {
    if batch.is_empty() {
        return;
    }
    if let Err(error) = store.write_rollups(batch) {
        tracing::error!(message = "Rollups not written.", rows = batch.len(), %error);
    }
    batch.clear();
}

fn prune(store: &Store, retention_days: u64) {
    let cutoff = clock::now_ms() - retention_days as i64 * DAY_MS;
    match store.delete_rollups_before(cutoff) {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(message = "Old rollups deleted.", deleted, retention_days),
        Err(error) => tracing::error!(message = "Old rollups not deleted.", %error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::rollup::{MINUTE_MS, MinuteSummary};
    use crate::store::SeriesQuery;

    fn row(minute_ms: i64) -> RollupRow {
        RollupRow {
            agent: "a-1".into(),
            pool: "p".into(),
            metric: "m".into(),
            summary: MinuteSummary {
                minute_ms,
                min: 1.0,
                max: 1.0,
                mean: 1.0,
                count: 1,
                p95: None,
            },
        }
    }

    #[test]
    fn rows_are_written_and_old_ones_pruned_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = crate::analytics::rollup::minute_of(clock::now_ms());
        // A row of ten days ago, stored before the writer starts: gone at its first prune.
        store.write_rollups(&[row(now - 10 * DAY_MS)]).unwrap();
        let (sink, writer) = RollupWriter::start(store.clone(), || 7).unwrap();
        sink.send(vec![row(now - 2 * MINUTE_MS), row(now - MINUTE_MS)]);
        drop(sink);
        // Dropping the last sink makes the writer write what it holds and stop.
        writer.thread.join().unwrap();
        let points = store
            .read_series(&SeriesQuery {
                agent: "a-1".into(),
                metric: "m".into(),
                since_ms: 0,
                until_ms: i64::MAX,
                step_ms: MINUTE_MS,
                limit: 10,
            })
            .unwrap();
        let minutes: Vec<i64> = points.iter().map(|p| p.ts_ms).collect();
        assert_eq!(minutes, [now - 2 * MINUTE_MS, now - MINUTE_MS]);
    }
}
