//! A TCP stream that acknowledges what it reads at once instead of delaying the ACK.
//!
//! A customer's broker keeps Nagle's algorithm on its STOMP connectors: it holds a small
//! frame until everything it sent before is acknowledged. Linux delays the ACK of a received
//! segment by up to 40 ms once a connection looks interactive, so each receipt or message
//! that follows another waited for that timer. `TCP_QUICKACK` turns the delay off, but the
//! kernel turns it back on as it sees fit, so it is set again after every read that returned
//! data (one `setsockopt`, far cheaper than the read itself).
//!
//! `SOAR_STOMP_QUICKACK=0` in the environment turns this off for the whole process, read
//! once: a switch for the benchmark's before/after comparison, not a setting for users.

use std::ffi::OsStr;
use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A [`TcpStream`] that re-arms `TCP_QUICKACK` after each read that returned data.
#[derive(Debug)]
pub struct QuickAckStream {
    inner: TcpStream,
    /// Whether `TCP_QUICKACK` is set at all (see [`enabled`]).
    re_arm: bool,
}

impl QuickAckStream {
    pub fn new(inner: TcpStream) -> QuickAckStream {
        let re_arm = enabled();
        if re_arm {
            quick_ack(&inner);
        }
        QuickAckStream { inner, re_arm }
    }

    #[cfg(test)]
    fn get_ref(&self) -> &TcpStream {
        &self.inner
    }
}

impl AsyncRead for QuickAckStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let filled_before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buf);
        if self.re_arm
            && matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > filled_before
        {
            quick_ack(&self.inner);
        }
        polled
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }
}

/// Whether this process re-arms `TCP_QUICKACK`: yes unless `SOAR_STOMP_QUICKACK` is `0`.
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| enabled_by(std::env::var_os("SOAR_STOMP_QUICKACK").as_deref()))
}

fn enabled_by(switch: Option<&OsStr>) -> bool {
    switch.is_none_or(|value| value != "0")
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quick_ack(stream: &TcpStream) {
    // A failure only costs latency, never correctness: nothing to report.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quick_ack(_stream: &TcpStream) {}

#[cfg(test)]
mod switch_tests {
    use super::*;

    #[test]
    fn only_a_zero_turns_quick_acks_off() {
        assert!(enabled_by(None), "on when the variable is absent");
        assert!(enabled_by(Some(OsStr::new("1"))));
        assert!(enabled_by(Some(OsStr::new(""))));
        assert!(
            !enabled_by(Some(OsStr::new("0"))),
            "off with SOAR_STOMP_QUICKACK=0"
        );
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn quickack_on(stream: &TcpStream) -> bool {
        socket2::SockRef::from(stream)
            .tcp_quickack()
            .expect("TCP_QUICKACK can be read")
    }

    /// Answering soon after a read makes Linux treat the connection as interactive and turn
    /// delayed ACKs back on; the next read through the wrapper must turn them off again.
    #[tokio::test]
    async fn quick_acks_are_re_armed_after_the_kernel_turns_them_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let client = TcpStream::connect(address).await.expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        let mut stream = QuickAckStream::new(client);
        let mut byte = [0u8; 1];

        server.write_all(b"a").await.expect("server writes");
        stream.read_exact(&mut byte).await.expect("client reads");
        // Data sent right after data received: the kernel enters its "pingpong" mode.
        stream.write_all(b"b").await.expect("client writes");
        server.read_exact(&mut byte).await.expect("server reads");
        if quickack_on(stream.get_ref()) {
            eprintln!(
                "skipped: this kernel did not turn delayed ACKs back on, so re-arming cannot be observed"
            );
            return;
        }

        server.write_all(b"c").await.expect("server writes again");
        stream
            .read_exact(&mut byte)
            .await
            .expect("client reads again");
        assert!(
            quickack_on(stream.get_ref()),
            "TCP_QUICKACK is set again after a read"
        );
    }
}
