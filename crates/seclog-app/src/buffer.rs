//! The hand-off between the threads that log and the output threads: one byte buffer behind a
//! mutex. A writer appends its line and returns (no allocation handed over, no wake-up per
//! line: the consumer is woken when the buffer passes a threshold, else every `tick`); a
//! full buffer refuses the line, which the caller counts as dropped.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Lines waiting for one consumer.
pub(crate) struct LineBuffer {
    state: Mutex<State>,
    /// Signalled for the consumer: data past the threshold, a flush, closing.
    wake: Condvar,
    /// Signalled for flush callers: a flush finished.
    flushed: Condvar,
    max_bytes: usize,
    wake_bytes: usize,
    tick: Duration,
}

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    lines: u64,
    /// Flushes asked for and done (generations).
    flush_asked: u64,
    flush_done: u64,
    closed: bool,
}

/// What the consumer took.
pub(crate) struct Taken {
    /// Whole lines, each ending in `\n`.
    pub(crate) bytes: Vec<u8>,
    pub(crate) lines: u64,
    /// A flush generation to report done with [`LineBuffer::flush_done`] once what was taken
    /// is written out.
    pub(crate) flush: Option<u64>,
    /// The buffer is closed: this is the last take.
    pub(crate) closed: bool,
}

impl LineBuffer {
    pub(crate) fn new(max_bytes: usize, wake_bytes: usize, tick: Duration) -> LineBuffer {
        LineBuffer {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            flushed: Condvar::new(),
            max_bytes,
            wake_bytes,
            tick,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line; false when the buffer is full or closed (the line is not kept).
    pub(crate) fn push(&self, line: &[u8]) -> bool {
        let mut state = self.lock();
        if state.closed || state.bytes.len() + line.len() > self.max_bytes {
            return false;
        }
        let before = state.bytes.len();
        state.bytes.extend_from_slice(line);
        state.lines += 1;
        let crossed = before < self.wake_bytes && state.bytes.len() >= self.wake_bytes;
        drop(state);
        if crossed {
            self.wake.notify_one();
        }
        true
    }

    /// Waits up to one tick for lines (less when a flush or close is asked) and takes them all.
    pub(crate) fn take(&self) -> Taken {
        let mut state = self.lock();
        let deadline = Instant::now() + self.tick;
        while state.bytes.len() < self.wake_bytes
            && state.flush_asked == state.flush_done
            && !state.closed
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let flush = (state.flush_asked != state.flush_done).then_some(state.flush_asked);
        Taken {
            bytes: std::mem::take(&mut state.bytes),
            lines: std::mem::take(&mut state.lines),
            flush,
            closed: state.closed,
        }
    }

    /// Reports that everything taken with flush generation `generation` is written out.
    pub(crate) fn flush_done(&self, generation: u64) {
        let mut state = self.lock();
        state.flush_done = state.flush_done.max(generation);
        drop(state);
        self.flushed.notify_all();
    }

    /// Asks the consumer to write out everything pushed so far and waits (up to `limit`).
    pub(crate) fn flush(&self, limit: Duration) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.flush_asked += 1;
        let generation = state.flush_asked;
        self.wake.notify_one();
        let deadline = Instant::now() + limit;
        while state.flush_done < generation && !state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .flushed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Refuses further lines; the consumer's next take is its last.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
        self.flushed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lines_are_taken_whole_full_buffers_refuse_and_flush_waits_for_the_consumer() {
        let buffer = Arc::new(LineBuffer::new(10, 4, Duration::from_millis(20)));
        assert!(buffer.push(b"abc\n"));
        assert!(buffer.push(b"de\n"));
        assert!(!buffer.push(b"fghi\n"), "over the limit");
        let taken = buffer.take();
        assert_eq!(
            (taken.bytes.as_slice(), taken.lines),
            (&b"abc\nde\n"[..], 2)
        );
        assert!(taken.flush.is_none());
        let consumer = {
            let buffer = Arc::clone(&buffer);
            std::thread::spawn(move || {
                let mut all = Vec::new();
                loop {
                    let taken = buffer.take();
                    all.extend(taken.bytes);
                    if let Some(generation) = taken.flush {
                        buffer.flush_done(generation);
                        return all;
                    }
                }
            })
        };
        assert!(buffer.push(b"x\n"));
        buffer.flush(Duration::from_secs(10));
        assert_eq!(consumer.join().unwrap(), b"x\n");
        buffer.close();
        assert!(!buffer.push(b"y\n"));
        assert!(buffer.take().closed);
    }
}
