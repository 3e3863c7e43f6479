//! A readiness signal on a file descriptor, for event loops outside tokio.
//!
//! Python's asyncio waits on file descriptors. Completing a future from a
//! tokio thread instead costs a hand-off to a thread that takes the GIL and
//! then a wake of the loop; a readable descriptor costs one `write(2)` on the
//! tokio thread, and the loop's own poll picks it up. The reader arms the
//! signal before it waits; the queue fires it at most once per arming, when a
//! datum arrives or the queue closes. Spurious wakes are possible (an arming
//! that found data already queued); the reader just looks again.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::atomic::{AtomicBool, Ordering},
};

#[derive(Debug)]
pub struct ReadySignal {
    /// Becomes readable when fired (an eventfd, or a pipe's read end).
    read: OwnedFd,
    /// Where firing writes: the same eventfd, or the pipe's write end.
    write: Option<OwnedFd>,
    armed: AtomicBool,
}

impl ReadySignal {
    pub fn new() -> io::Result<Self> {
        let (read, write) = descriptors()?;
        Ok(Self {
            read,
            write,
            armed: AtomicBool::new(false),
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The next `fire` will make the descriptor readable.
    ///
    /// Sequentially consistent, like the load in `fire`: a reader arms, then
    /// looks at the queue; a writer fills the queue, then looks at the flag;
    /// one of the two always sees the other.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// Makes the descriptor readable if a reader armed the signal.
    pub fn fire(&self) {
        if self.armed.load(Ordering::SeqCst) && self.armed.swap(false, Ordering::SeqCst) {
            let fd = self.write.as_ref().unwrap_or(&self.read).as_raw_fd();
            let one = 1u64.to_ne_bytes();
            // A full pipe or a saturated eventfd is already readable.
            // SAFETY: writes 8 bytes from a live buffer to a descriptor we own.
            let _ = unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
        }
    }

    /// Whether a poll would report the descriptor readable now.
    #[cfg(test)]
    pub(crate) fn is_readable(&self) -> bool {
        let mut poll = libc::pollfd {
            fd: self.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one live descriptor without waiting.
        unsafe { libc::poll(&mut poll, 1, 0) == 1 }
    }

    /// Makes the descriptor unreadable again (after a wake).
    pub fn clear(&self) {
        let mut sink = [0u8; 64];
        loop {
            // SAFETY: reads into a live buffer from a non-blocking descriptor we own.
            let n = unsafe { libc::read(self.read.as_raw_fd(), sink.as_mut_ptr().cast(), sink.len()) };
            // An eventfd empties in one read; a pipe may hold several wakes.
            if n <= 0 || self.write.is_none() {
                return;
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn descriptors() -> io::Result<(OwnedFd, Option<OwnedFd>)> {
    // SAFETY: eventfd returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, None))
}

#[cfg(not(target_os = "linux"))]
fn descriptors() -> io::Result<(OwnedFd, Option<OwnedFd>)> {
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors or returns -1.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors nobody else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [&read, &write] {
        // SAFETY: plain fcntl calls on descriptors we own.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok((read, Some(write)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_arming_and_clears() {
        let signal = ReadySignal::new().unwrap();
        signal.fire();
        assert!(!signal.is_readable(), "unarmed: firing does nothing");
        signal.arm();
        signal.fire();
        assert!(signal.is_readable());
        signal.clear();
        assert!(!signal.is_readable());
        signal.fire();
        assert!(!signal.is_readable(), "one wake per arming");
        signal.arm();
        signal.disarm();
        signal.fire();
        assert!(!signal.is_readable());
    }
}
