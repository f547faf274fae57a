//! The stdout output: lines go through a bounded queue to a writer thread, so a slow reader of
//! stdout (a full pipe, a stalled container log driver) never holds up the application.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use crate::ship::Stats;

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

#[derive(Clone)]
pub(crate) struct StdoutQueue {
    queue: SyncSender<Message>,
    stats: Arc<Stats>,
}

impl StdoutQueue {
    pub(crate) fn start(capacity: usize, stats: Arc<Stats>) -> std::io::Result<StdoutQueue> {
        let (queue, receiver) = std::sync::mpsc::sync_channel(capacity.max(1));
        std::thread::Builder::new()
            .name("seclog-app-stdout".into())
            .spawn(move || write_loop(&receiver))?;
        Ok(StdoutQueue { queue, stats })
    }

    pub(crate) fn push(&self, line: Vec<u8>) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(Message::Line(line))
        {
            self.stats.stdout_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (up to 10 s) until every line queued so far is written.
    pub(crate) fn flush(&self) {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        if self.queue.send(Message::Flush(answer)).is_ok() {
            let _ = answered.recv_timeout(std::time::Duration::from_secs(10));
        }
    }
}

fn write_loop(receiver: &Receiver<Message>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 << 10, stdout.lock());
    while let Ok(message) = receiver.recv() {
        let mut next = Some(message);
        // Write everything queued, then flush once.
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Message::Flush(answer) => {
                    let _ = out.flush();
                    let _ = answer.send(());
                }
            }
            next = receiver.try_recv().ok();
        }
        let _ = out.flush();
    }
}
