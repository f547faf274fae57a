//! The syslog framer on arbitrary streams: it never panics, always makes progress, and cuts the
//! same frames whether the stream arrives at once or in pieces (the first byte of the input
//! chooses the piece size). Octet-counted frames it is given round-trip exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seclog_formats::syslog::{Frame, Framer};

const MAX_FRAME: usize = 512;

/// Frames of `input` fed in pieces of `piece` bytes, as a listener's reads would deliver them.
fn frames(input: &[u8], piece: usize) -> Vec<(bool, Vec<u8>)> {
    let mut framer = Framer::new(MAX_FRAME);
    let mut buffer = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        let eof = fed >= input.len();
        let next = (fed + piece).min(input.len());
        buffer.extend_from_slice(&input[fed..next]);
        fed = next;
        let mut at = 0;
        loop {
            let (frame, used) = framer.next(&buffer[at..], eof);
            assert!(at + used <= buffer.len(), "framer used more than it was given");
            at += used;
            match frame {
                Some(Frame::Message(message)) => {
                    assert!(message.len() <= MAX_FRAME);
                    out.push((true, message.to_vec()));
                }
                Some(Frame::Invalid { raw, .. }) => out.push((false, raw.to_vec())),
                None if used == 0 || at >= buffer.len() => break,
                None => {}
            }
        }
        buffer.drain(..at);
        // A buffer never has to hold more than a frame (or the kept start of an oversized one)
        // and its count.
        assert!(buffer.len() <= MAX_FRAME.max(4096) + 16 + piece, "buffer grew to {}", buffer.len());
        if eof {
            assert!(buffer.is_empty(), "bytes left after the end of the stream");
            return out;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 64) + 1;
    let whole = frames(input, input.len().max(1));
    let pieces = frames(input, piece);
    assert_eq!(whole, pieces, "framing depends on how the stream was split");

    // Round trip: messages encoded with octet counting come back exactly.
    let messages: Vec<&[u8]> = input
        .split(|byte| *byte == 0xff)
        .filter(|message| !message.is_empty() && message.len() <= MAX_FRAME)
        .collect();
    let mut encoded = Vec::new();
    for message in &messages {
        encoded.extend_from_slice(format!("{} ", message.len()).as_bytes());
        encoded.extend_from_slice(message);
    }
    let decoded: Vec<Vec<u8>> = frames(&encoded, piece)
        .into_iter()
        .map(|(valid, frame)| {
            assert!(valid, "an octet-counted frame was refused");
            frame
        })
        .collect();
    let expected: Vec<Vec<u8>> = messages.iter().map(|message| message.to_vec()).collect();
    assert_eq!(decoded, expected);
});
