//! A library thread that writes to a connection its peer closed gets EPIPE, not SIGPIPE: in a host
//! where SIGPIPE keeps its default action (as Go gives it on threads it did not start), the signal
//! would end the process. Alone in its file, since it changes the process's SIGPIPE disposition.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

#[test]
fn a_write_to_a_closed_connection_on_a_library_thread_fails_with_epipe_instead_of_killing_the_process() {
    // Rust test binaries ignore SIGPIPE; a C or Go host may not.
    // SAFETY: restoring the default disposition of one signal; this file holds one test.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let handle = gnaming::runtime::handle().expect("the library's runtime starts");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        let _peer = listener.accept().unwrap();
        // Writing after one's own shutdown raises SIGPIPE at once, as a write to a reset connection
        // does, without depending on when the peer's reset arrives. A vectored write, as HTTP/2
        // (tonic, so etcd-client and the xDS server) makes: `writev` has no MSG_NOSIGNAL, unlike the
        // `send` behind a plain write.
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let outcome = stream.write_vectored(&[std::io::IoSlice::new(b"late")]).map(drop).map_err(|e| e.kind());
        let _ = tx.send(outcome);
    });
    let outcome = rx.recv_timeout(Duration::from_secs(20)).expect("the writer reports");
    assert_eq!(outcome, Err(std::io::ErrorKind::BrokenPipe));
}
