//! hickory's resolver on async-io: sockets from `async-io`'s reactor (the one
//! async-std and smol share), its timers, and background tasks on async-std's
//! executor.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_io::{Async, Timer};
use async_trait::async_trait;
use futures_lite::io::{AsyncRead, AsyncWrite};
use hickory_resolver::net::runtime::{DnsTcpStream, DnsUdpSocket, RuntimeProvider, Spawn, Time};

/// The runtime hickory's resolver runs on.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AsyncIoRuntime;

/// Spawns hickory's background tasks (one per name-server connection).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AsyncStdSpawner;

impl Spawn for AsyncStdSpawner {
    fn spawn_bg(&mut self, future: impl Future<Output = ()> + Send + 'static) {
        // Detached: the task ends when its connection does.
        drop(async_std::task::spawn(future));
    }
}

/// `async-io` timers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AsyncIoTime;

#[async_trait]
impl Time for AsyncIoTime {
    async fn delay_for(duration: Duration) {
        Timer::after(duration).await;
    }

    async fn timeout<F: 'static + Future + Send>(
        duration: Duration,
        future: F,
    ) -> Result<F::Output, io::Error> {
        futures_lite::future::or(async { Ok(future.await) }, async {
            Timer::after(duration).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
        })
        .await
    }
}

/// A UDP socket registered with the reactor.
#[derive(Debug)]
pub(crate) struct Udp(Async<UdpSocket>);

impl DnsUdpSocket for Udp {
    type Time = AsyncIoTime;

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            match self.0.get_ref().recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.0.get_ref().send_to(buf, target) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_writable(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }
}

/// A TCP stream registered with the reactor.
#[derive(Debug)]
pub(crate) struct Tcp(Async<TcpStream>);

impl DnsTcpStream for Tcp {
    type Time = AsyncIoTime;
}

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

impl RuntimeProvider for AsyncIoRuntime {
    type Handle = AsyncStdSpawner;
    type Timer = AsyncIoTime;
    type Udp = Udp;
    type Tcp = Tcp;

    fn create_handle(&self) -> Self::Handle {
        AsyncStdSpawner
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        wait_for: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        Box::pin(async move {
            if bind_addr.is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "binding the DNS TCP socket to a local address is not supported",
                ));
            }
            let wait_for = wait_for.unwrap_or(Duration::from_secs(5));
            let stream =
                AsyncIoTime::timeout(wait_for, Async::<TcpStream>::connect(server_addr)).await??;
            stream.get_ref().set_nodelay(true)?;
            Ok(Tcp(stream))
        })
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        _server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        Box::pin(async move { Ok(Udp(Async::<UdpSocket>::bind(local_addr)?)) })
    }
}
