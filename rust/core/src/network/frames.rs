//! Cutting a link's stream into frames without copying it.
//!
//! A frame is a 4-byte big-endian length and that many bytes of payload
//! (tokio-util's `LengthDelimitedCodec` defaults, as mosaik writes them).
//! QUIC hands a receiver the stream as chunks (about a packet each); a frame
//! that lies inside one chunk is returned as a slice of it, and only a frame
//! that straddles chunks is copied together. A length over the limit is
//! refused as soon as its 4 bytes are there, before anything is reserved.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the length prefix.
pub const PREFIX: usize = 4;

/// A frame announced a payload longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a frame of {0} bytes exceeds the limit")]
pub struct FrameTooLarge(pub usize);

/// The stream's bytes received so far and not yet cut into frames.
#[derive(Debug)]
pub struct FrameBuffer {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    max_frame: usize,
}

impl FrameBuffer {
    pub fn new(max_frame: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            buffered: 0,
            max_frame,
        }
    }

    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Bytes held that are not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Appends the next bytes of the stream.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// The next whole frame's payload, if all of it is here.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameTooLarge> {
        if self.buffered < PREFIX {
            return Ok(None);
        }
        let mut prefix = [0u8; PREFIX];
        self.peek(&mut prefix);
        let length = u32::from_be_bytes(prefix) as usize;
        if length > self.max_frame {
            return Err(FrameTooLarge(length));
        }
        if self.buffered < PREFIX + length {
            return Ok(None);
        }
        self.skip(PREFIX);
        Ok(Some(self.take(length)))
    }

    /// Copies the first `into.len()` buffered bytes (there are that many).
    fn peek(&self, into: &mut [u8]) {
        let mut filled = 0;
        for chunk in &self.chunks {
            let n = chunk.len().min(into.len() - filled);
            into[filled..filled + n].copy_from_slice(&chunk[..n]);
            filled += n;
            if filled == into.len() {
                return;
            }
        }
    }

    fn skip(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let front = self.chunks.front_mut().expect("enough buffered");
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// The next `n` buffered bytes: a slice when one chunk holds them all.
    fn take(&mut self, n: usize) -> Bytes {
        if n == 0 {
            return Bytes::new();
        }
        self.buffered -= n;
        let front = self.chunks.front_mut().expect("enough buffered");
        if front.len() >= n {
            let frame = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return frame;
        }
        let mut frame = BytesMut::with_capacity(n);
        while frame.len() < n {
            let front = self.chunks.front_mut().expect("enough buffered");
            let want = (n - frame.len()).min(front.len());
            frame.extend_from_slice(&front[..want]);
            if want == front.len() {
                self.chunks.pop_front();
            } else {
                front.advance(want);
            }
        }
        frame.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for frame in frames {
            out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            out.extend_from_slice(frame);
        }
        out
    }

    fn cut(stream: &[u8], chunk: usize, max_frame: usize) -> (Vec<Bytes>, Option<FrameTooLarge>) {
        let mut buffer = FrameBuffer::new(max_frame);
        let mut frames = Vec::new();
        for piece in stream.chunks(chunk) {
            buffer.push(Bytes::copy_from_slice(piece));
            loop {
                match buffer.next_frame() {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    #[test]
    fn frames_come_out_whole_however_the_stream_is_chunked() {
        let payloads: [&[u8]; 4] = [b"test", b"", &[7; 300], b"x"];
        let stream = wire(&payloads);
        for chunk in [1, 2, 3, 5, 64, 1200, stream.len()] {
            let (frames, refused) = cut(&stream, chunk, 1024);
            assert_eq!(refused, None);
            assert_eq!(frames, payloads.map(Bytes::from_static), "chunks of {chunk}");
        }
    }

    #[test]
    fn a_frame_inside_one_chunk_is_a_slice_of_it() {
        let stream = Bytes::from(wire(&[b"abc", b"defg"]));
        let mut buffer = FrameBuffer::new(16);
        buffer.push(stream.clone());
        let first = buffer.next_frame().unwrap().unwrap();
        assert_eq!(first.as_ptr(), stream[4..].as_ptr(), "no copy");
        assert_eq!(buffer.next_frame().unwrap().unwrap(), Bytes::from_static(b"defg"));
        assert_eq!(buffer.buffered(), 0);
    }

    #[test]
    fn an_oversized_length_is_refused_from_its_prefix_alone() {
        let mut buffer = FrameBuffer::new(16);
        buffer.push(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]));
        assert_eq!(buffer.next_frame(), Err(FrameTooLarge(u32::MAX as usize)));
        let (frames, refused) = cut(&wire(&[b"ok", &[0; 17]]), 3, 16);
        assert_eq!(frames, [Bytes::from_static(b"ok")]);
        assert_eq!(refused, Some(FrameTooLarge(17)));
    }
}
