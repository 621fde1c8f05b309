//! `--metrics IP:PORT`: the process's stats as Prometheus text at `GET /metrics`, served by a minimal
//! HTTP/1.1 responder on a thread of its own (one request a connection, answered, then closed).
//!
//! A scraper sends one small GET every few seconds: blocking sockets on one thread, each connection
//! bounded in size and time, serve that without a dependency and without touching the command's own
//! runtime, so a busy command still answers its scrapes.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The content type of the text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// A request head larger than this is refused: a scrape's is a few hundred bytes.
const MAX_HEAD: usize = 8192;
/// How long one connection may take to send its request head and read the answer.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(5);

/// Checks a `--metrics` address: IP:PORT (or localhost:PORT), loopback unless `allow_remote`.
pub fn parse_address(text: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let address = match text.strip_prefix("localhost:") {
        Some(port) => port.parse().ok().map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        None => text.parse().ok(),
    }
    .ok_or_else(|| format!("--metrics takes IP:PORT (such as 127.0.0.1:9464), got '{text}'"))?;
    if !address.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "--metrics {text} is not a loopback address: anyone who reaches it reads this process's stats; \
             add --metrics-allow-remote to serve them there anyway"
        ));
    }
    Ok(address)
}

/// Listens on `address` now, so that a taken port fails the command before it says it is ready, and
/// answers scrapes on a thread of its own until the process ends. Returns the address listened on
/// (port 0 picks a free one).
pub fn serve(address: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("gnaming-metrics".into()).spawn(move || {
        for stream in listener.incoming() {
            match stream {
                // A connection that fails or stalls ends only itself.
                Ok(stream) => drop(answer(stream)),
                // Out of file descriptors, say: try again a little later rather than spin.
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })?;
    Ok(bound)
}

/// Reads one request head within the deadline, writes the response and closes the connection.
fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let deadline = Instant::now() + CONNECTION_DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    while !head_complete(&head) && head.len() < MAX_HEAD {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
        let Some(left) = left else { return Ok(()) };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer)? {
            0 if head.is_empty() => return Ok(()),
            0 => break,
            n => head.extend_from_slice(&buffer[..n]),
        }
    }
    let left = deadline.checked_duration_since(Instant::now()).unwrap_or(Duration::from_millis(1));
    stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    stream.write_all(&response(&head, gnaming::etcd::stats::to_prometheus))?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Write)
}

fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// The whole response to a request head: the stats (read only then) for `GET /metrics`, the headers
/// alone for `HEAD /metrics`, 405 for another method on it, 404 for any other path, 400 for what is
/// not an HTTP/1 request line.
fn response(head: &[u8], stats: impl FnOnce() -> String) -> Vec<u8> {
    let request_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let parts: Vec<&str> = request_line.trim_end_matches('\r').split(' ').collect();
    let (status, content_type, body, with_body, allow) = match parts.as_slice() {
        [method, target, version] if version.starts_with("HTTP/1.") && target.starts_with('/') => {
            let path = target.split_once('?').map_or(*target, |(path, _)| path);
            match (*method, path) {
                ("GET" | "HEAD", "/metrics") => ("200 OK", CONTENT_TYPE, stats(), *method == "GET", false),
                (_, "/metrics") => ("405 Method Not Allowed", "text/plain", "only GET and HEAD\n".into(), true, true),
                _ => ("404 Not Found", "text/plain", "the metrics are at /metrics\n".into(), *method != "HEAD", false),
            }
        }
        _ => ("400 Bad Request", "text/plain", "not an HTTP/1 request\n".into(), true, false),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_to(head: &str) -> String {
        String::from_utf8(response(head.as_bytes(), || "gnaming_x 1\n".into())).unwrap()
    }

    #[test]
    fn get_metrics_answers_200_with_the_stats_and_the_format_s_content_type() {
        let text = answer_to("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 12\r\n\
             Connection: close\r\n\r\ngnaming_x 1\n"
        );
        assert!(answer_to("GET /metrics?name[]=x HTTP/1.0\n\n").ends_with("\r\n\r\ngnaming_x 1\n"));
    }

    #[test]
    fn head_gets_the_headers_only_and_other_methods_405() {
        let text = answer_to("HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("Content-Length: 12\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        let text = answer_to("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(text.starts_with("HTTP/1.1 405 ") && text.contains("Allow: GET, HEAD\r\n"), "{text}");
    }

    #[test]
    fn other_paths_are_404_and_garbage_is_400_without_reading_the_stats() {
        for head in ["GET / HTTP/1.1\r\n\r\n", "GET /metricsx HTTP/1.1\r\n\r\n", "GET /metrics/ HTTP/1.1\r\n\r\n"] {
            let text = String::from_utf8(response(head.as_bytes(), || panic!("read the stats"))).unwrap();
            assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head:?}: {text}");
        }
        for head in
            ["", "hello\r\n\r\n", "GET /metrics\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "GET /metrics SPDY/3\r\n\r\n"]
        {
            let text = String::from_utf8(response(head.as_bytes(), || panic!("read the stats"))).unwrap();
            assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head:?}: {text}");
        }
    }

    #[test]
    fn addresses_are_loopback_unless_remote_is_allowed() {
        assert_eq!(parse_address("127.0.0.1:9464", false).unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(parse_address("[::1]:0", false).unwrap().to_string(), "[::1]:0");
        assert_eq!(parse_address("localhost:1", false).unwrap().to_string(), "127.0.0.1:1");
        let refused = parse_address("0.0.0.0:9464", false).unwrap_err();
        assert!(refused.contains("not a loopback address") && refused.contains("--metrics-allow-remote"), "{refused}");
        assert_eq!(parse_address("0.0.0.0:9464", true).unwrap().to_string(), "0.0.0.0:9464");
        for bad in ["9464", "example.com:80", "127.0.0.1", "127.0.0.1:99999", ""] {
            assert!(parse_address(bad, true).unwrap_err().contains("takes IP:PORT"), "{bad}");
        }
    }
}
