//! A minimal HTTP/1.1 endpoint serving `GET /metrics` from a [`Registry`], on `std::net` alone.

use core::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{CONTENT_TYPE, Registry};
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};

/// The most bytes of request head read before answering.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the registry's metrics at `GET /metrics` on a background thread, one connection at
/// a time (a scrape endpoint, not a web server). Other paths get 404, other methods 405.
/// Dropping it (or [`shutdown`](Self::shutdown)) stops the thread.
///
/// Bind to port 0 to let the system choose a free port, and read it back with
/// [`local_addr`](Self::local_addr).
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use umrf::metrics::{MetricsServer, Registry};
/// use umrf::{Pool, residency::CpuLocal};
///
/// let registry = Arc::new(Registry::new());
/// let pool = Pool::<CpuLocal>::builder().name("web").block_size(64).blocks_per_slot(1).slots(1).build()?;
/// registry.register(&pool)?;
/// let server = MetricsServer::bind("127.0.0.1:0", registry)?;
///
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
/// let mut answer = String::new();
/// client.read_to_string(&mut answer)?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(answer.contains("umrf_pool_capacity_blocks{pool=\"web\",residency=\"CpuLocal\"} 1\n"));
/// assert_eq!(server.scrapes(), 1);
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `registry` until shut down.
    ///
    /// # Errors
    /// The operating system's error when the address cannot be bound.
    pub fn bind(addr: impl ToSocketAddrs, registry: Arc<Registry>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, scrapes) = (stop.clone(), scrapes.clone());
            std::thread::Builder::new()
                .name("umrf-metrics".into())
                .spawn(move || serve(&listener, &registry, &stop, &scrapes))?
        };
        Ok(MetricsServer {
            addr,
            stop,
            scrapes,
            thread: Some(thread),
        })
    }

    /// The address the server listens on (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Successful `GET /metrics` answers so far.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::Relaxed)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept; if the connection fails, the listener is gone already.
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        let _ = thread.join();
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .field("scrapes", &self.scrapes())
            .finish()
    }
}

/// The accept loop: one connection at a time, until `stop`.
fn serve(listener: &TcpListener, registry: &Registry, stop: &AtomicBool, scrapes: &AtomicU64) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A client that fails mid-request costs only its own connection.
        if let Ok(stream) = stream {
            let _ = answer(stream, registry, scrapes);
        }
    }
}

/// Reads one request and answers it, counting it in `scrapes` when it served the metrics.
///
/// The count goes up before the connection closes, so a client that has read the whole answer
/// sees it counted.
fn answer(mut stream: TcpStream, registry: &Registry, scrapes: &AtomicU64) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let request_line = head.lines().next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body, served) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", CONTENT_TYPE, registry.render_prometheus(), true)
        }
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: metrics are at /metrics\n".to_owned(),
            false,
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD are served\n".to_owned(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    if served {
        scrapes.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// The request head: bytes up to the blank line, at most [`MAX_HEAD`].
fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
