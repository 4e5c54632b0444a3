//! The floor under the reference gateway's plain proxy: hyper's HTTP/1 server
//! and client and nothing else, shaped as `gatefold serve` runs them (a
//! current-thread tokio runtime per worker thread, an `SO_REUSEPORT` listener
//! each, mimalloc). Each client connection gets one upstream connection of
//! its own, driven by a task beside it; requests and responses pass through
//! untouched: no route lookup, no forwarded headers, no request id, no
//! access log. What a request costs here, gatefold cannot go below while it
//! speaks HTTP through hyper.
//!
//!     hyper-floor LISTEN UPSTREAM [WORKERS]
//!
//! A benchmark tool, not part of gatefold: `bench/run.sh` (profile A) and
//! `bench/instructions.sh` build and run it beside nginx and the reference
//! gateway.

use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: hyper-floor LISTEN UPSTREAM [WORKERS]";
    let listen: SocketAddr = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let upstream: SocketAddr = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
    let workers = args.get(3).map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |w| w.parse().expect(usage),
    );
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let listener = reuseport_listener(listen);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .expect("tokio runtime");
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, accept_loop(listener, upstream));
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

fn reuseport_listener(addr: SocketAddr) -> std::net::TcpListener {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    socket.set_reuse_port(true).expect("SO_REUSEPORT");
    socket.set_nonblocking(true).expect("nonblocking");
    socket.bind(&addr.into()).expect("bind");
    socket.listen(1024).expect("listen");
    socket.into()
}

async fn accept_loop(listener: std::net::TcpListener, upstream: SocketAddr) {
    let listener = TcpListener::from_std(listener).expect("listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(serve_client(stream, upstream));
    }
}

/// One client connection and its upstream connection.
async fn serve_client(stream: TcpStream, upstream: SocketAddr) {
    let Ok(up) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = up.set_nodelay(true);
    let Ok((sender, conn)) = client::handshake::<_, Incoming>(TokioIo::new(up)).await else {
        return;
    };
    tokio::task::spawn_local(conn);
    // hyper's HTTP/1 server hands over one request at a time, so the sender
    // is taken for an exchange and put back once the response head is in;
    // `ready()` then waits for the previous response's body.
    let sender = Rc::new(RefCell::new(Some(sender)));
    let service = service_fn(move |req: Request<Incoming>| {
        let sender = sender.clone();
        async move {
            let mut s = sender.borrow_mut().take().expect("one request at a time");
            let res: Result<Response<Incoming>, hyper::Error> = match s.ready().await {
                Ok(()) => s.send_request(req).await,
                Err(e) => Err(e),
            };
            *sender.borrow_mut() = Some(s);
            res
        }
    });
    let _ = server::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
