//! The stdout output: lines go through a bounded buffer to a writer thread, so a slow reader of
//! stdout (a full pipe, a stalled container log driver) never holds up the application.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::buffer::LineBuffer;
use crate::ship::Stats;

#[derive(Clone)]
pub(crate) struct StdoutQueue {
    buffer: Arc<LineBuffer>,
    stats: Arc<Stats>,
}

impl StdoutQueue {
    pub(crate) fn start(max_bytes: usize, stats: Arc<Stats>) -> std::io::Result<StdoutQueue> {
        let buffer = Arc::new(LineBuffer::new(
            max_bytes,
            64 << 10,
            Duration::from_millis(50),
        ));
        let consumer = Arc::clone(&buffer);
        std::thread::Builder::new()
            .name("seclog-app-stdout".into())
            .spawn(move || write_loop(&consumer))?;
        Ok(StdoutQueue { buffer, stats })
    }

    pub(crate) fn push(&self, line: &[u8]) {
        if !self.buffer.push(line) {
            self.stats.stdout_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (up to 10 s) until every line pushed so far is written.
    pub(crate) fn flush(&self) {
        self.buffer.flush(Duration::from_secs(10));
    }
}

fn write_loop(buffer: &LineBuffer) {
    let mut out = std::io::stdout();
    loop {
        let taken = buffer.take();
        if !taken.bytes.is_empty() {
            let _ = out.write_all(&taken.bytes);
            let _ = out.flush();
        }
        if let Some(generation) = taken.flush {
            buffer.flush_done(generation);
        }
        if taken.closed {
            return;
        }
    }
}
