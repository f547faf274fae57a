//! A minimal HTTP/1.1 receiver for alert deliveries (webhooks, Slack-compatible hooks).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A minimal HTTP/1.1 receiver: answers 503 to the first `fail_first` requests, then 200.
pub struct Receiver {
    pub port: u16,
    pub accepted: Arc<Mutex<Vec<Received>>>,
    pub refused: Arc<AtomicUsize>,
}

pub fn http_receiver(fail_first: usize) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let (accepted_in, refused_in) = (Arc::clone(&accepted), Arc::clone(&refused));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (accepted, refused) = (Arc::clone(&accepted_in), Arc::clone(&refused_in));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut headers = BTreeMap::new();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).expect("header");
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            headers
                                .insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
                        }
                    }
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|value| value.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("body");
                    let reply = if refused.load(Ordering::SeqCst) < fail_first {
                        refused.fetch_add(1, Ordering::SeqCst);
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                    } else {
                        accepted.lock().unwrap().push(Received { headers, body });
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                    };
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Receiver {
        port,
        accepted,
        refused,
    }
}
