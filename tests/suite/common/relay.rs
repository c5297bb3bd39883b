//! A loopback port of the test's own network namespace opened inside another one: a listener on
//! `127.0.0.1:PORT` in the namespace of a process the test started (a second dockerd), each
//! connection forwarded to `127.0.0.1:PORT` here. Both ends are loopback: nothing crosses a
//! network interface, and no veth pair or address is needed for a second engine in its own
//! namespace to reach the test engine (a swarm worker joining the manager on 2377).
#![allow(dead_code)]

use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// At most this many connections are forwarded for one relay (a swarm worker opens a handful).
const MAX_CONNECTIONS: usize = 256;

pub struct Relay {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on `127.0.0.1:port` inside the network namespace of process `pid` and forwards each
    /// connection to `127.0.0.1:port` of this process's namespace.
    pub fn into_netns_of(pid: u32, port: u16) -> Relay {
        Relay::listen_in(pid, None, port)
    }

    /// Listens on `127.0.0.1:port` inside the network namespace of process `listen_pid` and
    /// forwards each connection to `127.0.0.1:port` inside the namespace of `target_pid` (a swarm
    /// worker's engine reaching a manager engine that runs in a namespace of its own).
    pub fn between_netns(listen_pid: u32, target_pid: u32, port: u16) -> Relay {
        Relay::listen_in(listen_pid, Some(target_pid), port)
    }

    fn listen_in(pid: u32, target_pid: Option<u32>, port: u16) -> Relay {
        // A thread enters the other namespace only to bind: a socket stays in the namespace it was
        // made in, and the thread (the only one that switched) ends right after.
        let listener = std::thread::spawn(move || -> std::io::Result<TcpListener> {
            let there = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
            // SAFETY: setns(2) on an fd this closure owns; it changes only this thread's namespace.
            if unsafe { libc::setns(there.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            TcpListener::bind(("127.0.0.1", port))
        })
        .join()
        .expect("the relay's bind thread")
        .unwrap_or_else(|e| panic!("relay: listen on 127.0.0.1:{port} in the netns of {pid}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let accept = std::thread::spawn(move || {
            // The connections to the far end are made from this thread: in the target's
            // namespace when there is one (a socket stays in the namespace it was made in).
            if let Some(target) = target_pid {
                let entered = std::fs::File::open(format!("/proc/{target}/ns/net")).map(|f| {
                    // SAFETY: setns(2) on an fd this closure owns; it changes only this thread.
                    unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }
                });
                assert!(
                    matches!(entered, Ok(0)),
                    "relay: enter the netns of {target}: {entered:?}"
                );
            }
            let mut served = 0;
            while !stopped.load(Ordering::Relaxed) && served < MAX_CONNECTIONS {
                match listener.accept() {
                    Ok((inside, _)) => {
                        served += 1;
                        forward(inside, port);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Relay {
            stop,
            accept: Some(accept),
        }
    }
}

/// Copies both ways between the accepted connection and a new one to this namespace's port; each
/// copy ends when its reading side closes (the engine at either end stops or drops the stream).
fn forward(inside: TcpStream, port: u16) {
    let _ = inside.set_nonblocking(false);
    let Ok(here) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let pairs = [
        (inside.try_clone(), here.try_clone()),
        (here.try_clone(), inside.try_clone()),
    ];
    for pair in pairs {
        if let (Ok(mut from), Ok(mut to)) = pair {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(Shutdown::Write);
            });
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}
