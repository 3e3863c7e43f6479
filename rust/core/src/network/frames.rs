//! A link's frames as bytes on the stream, both ways, without copying.
//!
//! A frame is a 4-byte big-endian length and that many bytes of payload
//! (tokio-util's `LengthDelimitedCodec` defaults, as mosaik writes them).
//!
//! Reading: QUIC hands a receiver the stream as chunks (about a packet
//! each); a frame that lies inside one chunk is returned as a slice of it,
//! and only a frame that straddles chunks is copied together, as its chunks
//! arrive, so that it never holds more than twice its size whatever the
//! sender cut it into. A length over the limit is refused as soon as its 4
//! bytes are there, before anything is reserved.
//!
//! Writing: a sender with many small frames lays them out back to back in
//! one buffer ([`WireFrames`]) as it encodes them, so the link hands QUIC
//! whole runs of frames as one chunk: no per-frame copy or call on the way.

use std::{collections::VecDeque, ops::Range};

use bytes::{Buf, BufMut, Bytes, BytesMut};

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
    /// The first frame, once it is known to straddle chunks: its bytes so
    /// far, copied together as they arrive. Chunks are slices of whole
    /// datagrams, so keeping the many small ones a frame may come in would
    /// hold far more memory than the frame (a 1-byte STREAM frame holds its
    /// whole datagram); copied, a frame costs at most twice its size while
    /// it grows, and its size once whole. While it grows `chunks` is empty.
    assembly: Option<Assembly>,
    /// Bytes in `chunks` and `assembly` (not yet returned).
    buffered: usize,
    max_frame: usize,
}

/// A frame being copied together: `wire` holds its first bytes, length
/// prefix included, out of `total`.
#[derive(Debug)]
struct Assembly {
    wire: Vec<u8>,
    total: usize,
}

impl Assembly {
    /// The least an assembly reserves, so a frame of a few packets is not
    /// reallocated packet by packet.
    const FIRST_RESERVE: usize = 64 * 1024;

    fn new(total: usize) -> Self {
        Self {
            wire: Vec::with_capacity(total.min(Self::FIRST_RESERVE)),
            total,
        }
    }

    fn missing(&self) -> usize {
        self.total - self.wire.len()
    }

    /// Appends `bytes` (no more than is missing), growing by doubling but
    /// never past the frame: the capacity stays within twice what arrived.
    fn extend(&mut self, bytes: &[u8]) {
        let needed = self.wire.len() + bytes.len();
        if needed > self.wire.capacity() {
            let target = needed.max(2 * self.wire.capacity()).min(self.total);
            self.wire.reserve_exact(target - self.wire.len());
        }
        self.wire.extend_from_slice(bytes);
    }
}

impl FrameBuffer {
    pub fn new(max_frame: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            assembly: None,
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
    pub fn push(&mut self, mut chunk: Bytes) {
        if let Some(assembly) = &mut self.assembly {
            let n = assembly.missing().min(chunk.len());
            assembly.extend(&chunk[..n]);
            chunk.advance(n);
            self.buffered += n;
        }
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// The next whole frame's payload, if all of it is here.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameTooLarge> {
        let run = self.next_run(1)?;
        Ok(run.map(|run| run.wire.slice(PREFIX..)))
    }

    /// The payload length the next frame announces, once its 4 bytes are
    /// here; refuses a length over the limit.
    fn next_length(&self) -> Result<Option<usize>, FrameTooLarge> {
        if self.buffered < PREFIX {
            return Ok(None);
        }
        let mut prefix = [0u8; PREFIX];
        self.peek(&mut prefix);
        let length = u32::from_be_bytes(prefix) as usize;
        if length > self.max_frame {
            return Err(FrameTooLarge(length));
        }
        Ok(Some(length))
    }

    /// Up to `max` next whole frames as one run: every frame that lies in
    /// the first chunk is a slice of it, together; a frame straddling
    /// chunks comes alone, copied together. A length over the limit ends
    /// the run before it, and is refused when it comes first.
    pub fn next_run(&mut self, max: usize) -> Result<Option<FrameRun>, FrameTooLarge> {
        if let Some(assembly) = &self.assembly {
            if assembly.missing() > 0 {
                return Ok(None);
            }
            let Assembly { wire, total } = self.assembly.take().expect("an assembly");
            self.buffered -= total;
            return Ok(Some(FrameRun {
                wire: Bytes::from(wire),
                frames: 1,
                payload_bytes: total - PREFIX,
            }));
        }
        let Some(front) = self.chunks.front_mut() else {
            return Ok(None);
        };
        let (mut end, mut frames, mut payload_bytes) = (0, 0, 0);
        while frames < max.max(1) {
            let Some(prefix) = front.get(end..end + PREFIX) else {
                break;
            };
            let length = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
            if length > self.max_frame || end + PREFIX + length > front.len() {
                break;
            }
            end += PREFIX + length;
            frames += 1;
            payload_bytes += length;
        }
        if frames > 0 {
            let wire = front.split_to(end);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            self.buffered -= end;
            return Ok(Some(FrameRun {
                wire,
                frames,
                payload_bytes,
            }));
        }
        // The first frame is over the limit or straddles chunks.
        let Some(length) = self.next_length()? else {
            return Ok(None);
        };
        let total = PREFIX + length;
        if self.buffered >= total {
            return Ok(Some(FrameRun {
                wire: self.take(total),
                frames: 1,
                payload_bytes: length,
            }));
        }
        // Not all here: copy what is, and the rest as it comes (`push`).
        let mut assembly = Assembly::new(total);
        for chunk in self.chunks.drain(..) {
            assembly.extend(&chunk);
        }
        self.assembly = Some(assembly);
        Ok(None)
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

/// Frames back to back in one buffer, exactly as they go on the stream.
#[derive(Clone, Debug, Default)]
pub struct WireFrames {
    wire: Bytes,
    /// Where each frame ends in `wire`.
    ends: Vec<usize>,
}

/// Whole frames back to back, as one chunk of the stream: cut from
/// [`WireFrames`] for the link to write, or from what it read.
#[derive(Clone, Debug)]
pub struct FrameRun {
    pub wire: Bytes,
    pub frames: usize,
    /// Their payloads' bytes (`wire` without the length prefixes).
    pub payload_bytes: usize,
}

impl FrameRun {
    /// The frames' payloads, in order, as slices of `wire`.
    pub fn payloads(&self) -> Payloads<'_> {
        Payloads { rest: &self.wire }
    }

    /// Splits off and returns the first `n` frames (`n` < `frames`).
    pub fn split_to(&mut self, n: usize) -> FrameRun {
        let (mut at, mut payload_bytes) = (0, 0);
        for payload in self.payloads().take(n) {
            at += PREFIX + payload.len();
            payload_bytes += payload.len();
        }
        self.frames -= n;
        self.payload_bytes -= payload_bytes;
        FrameRun {
            wire: self.wire.split_to(at),
            frames: n,
            payload_bytes,
        }
    }
}

/// The payloads of a [`FrameRun`].
pub struct Payloads<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Payloads<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let prefix: [u8; PREFIX] = self.rest.get(..PREFIX)?.try_into().ok()?;
        let end = PREFIX + u32::from_be_bytes(prefix) as usize;
        let payload = self.rest.get(PREFIX..end)?;
        self.rest = &self.rest[end..];
        Some(payload)
    }
}

impl WireFrames {
    /// How many frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn start(&self, frame: usize) -> usize {
        if frame == 0 { 0 } else { self.ends[frame - 1] }
    }

    /// The payload of frame `index` (a slice, not a copy).
    pub fn payload(&self, index: usize) -> Bytes {
        self.wire.slice(self.start(index) + PREFIX..self.ends[index])
    }

    /// Where the frames in `range` lie in the buffer.
    fn bytes(&self, range: Range<usize>) -> Range<usize> {
        let start = self.start(range.start);
        if range.is_empty() {
            start..start
        } else {
            start..self.ends[range.end - 1]
        }
    }

    /// Payload bytes of the frames in `range`.
    pub fn payload_bytes(&self, range: Range<usize>) -> usize {
        self.bytes(range.clone()).len() - PREFIX * range.len()
    }

    /// The frames in `range` on their own (sharing the buffer).
    pub fn slice(&self, range: Range<usize>) -> WireFrames {
        let bytes = self.bytes(range.clone());
        WireFrames {
            ends: self.ends[range].iter().map(|e| e - bytes.start).collect(),
            wire: self.wire.slice(bytes),
        }
    }

    /// The frames in `range` as one chunk of the stream.
    pub fn run(&self, range: Range<usize>) -> FrameRun {
        FrameRun {
            wire: self.wire.slice(self.bytes(range.clone())),
            frames: range.len(),
            payload_bytes: self.payload_bytes(range),
        }
    }
}

/// Lays frames out one after another, each payload written in place.
pub struct WireFramesBuilder {
    buf: BytesMut,
    ends: Vec<usize>,
    max_frame: usize,
}

impl WireFramesBuilder {
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            ends: Vec::new(),
            max_frame,
        }
    }

    /// Appends one frame whose payload (of `payload_len` bytes, or about
    /// that: it is what is reserved) `write` puts into the buffer; a payload
    /// over the limit is taken back out and refused.
    pub fn push_with(
        &mut self,
        payload_len: usize,
        write: impl FnOnce(&mut BytesMut),
    ) -> Result<(), FrameTooLarge> {
        self.buf.reserve(PREFIX + payload_len);
        let start = self.buf.len();
        self.buf.put_u32(0);
        write(&mut self.buf);
        let length = self.buf.len() - start - PREFIX;
        if length > self.max_frame || length > u32::MAX as usize {
            self.buf.truncate(start);
            return Err(FrameTooLarge(length));
        }
        self.buf[start..start + PREFIX].copy_from_slice(&(length as u32).to_be_bytes());
        self.ends.push(self.buf.len());
        Ok(())
    }

    pub fn finish(self) -> WireFrames {
        WireFrames {
            wire: self.buf.freeze(),
            ends: self.ends,
        }
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

    /// Cuts `stream` (pushed in pieces of `chunk` bytes) into runs of at
    /// most `max` frames.
    fn cut_runs(stream: &[u8], chunk: usize, max: usize) -> (Vec<FrameRun>, Option<FrameTooLarge>) {
        let mut buffer = FrameBuffer::new(1024);
        let mut runs = Vec::new();
        for piece in stream.chunks(chunk) {
            buffer.push(Bytes::copy_from_slice(piece));
            loop {
                match buffer.next_run(max) {
                    Ok(Some(run)) => runs.push(run),
                    Ok(None) => break,
                    Err(e) => return (runs, Some(e)),
                }
            }
        }
        (runs, None)
    }

    #[test]
    fn runs_hold_the_same_frames_however_the_stream_is_chunked() {
        let payloads: [&[u8]; 6] = [b"test", b"", &[7; 300], b"x", &[9; 40], b"yz"];
        let stream = wire(&payloads);
        for chunk in [1, 2, 3, 5, 64, 1200, stream.len()] {
            for max in [1, 2, 100] {
                let (runs, refused) = cut_runs(&stream, chunk, max);
                assert_eq!(refused, None);
                assert!(runs.iter().all(|r| r.frames <= max && r.frames > 0));
                let got: Vec<&[u8]> = runs.iter().flat_map(|r| r.payloads()).collect();
                assert_eq!(got, payloads, "chunks of {chunk}, runs of {max}");
                let wire: Vec<u8> = runs.iter().flat_map(|r| r.wire.to_vec()).collect();
                assert_eq!(wire, stream);
                for run in &runs {
                    assert_eq!(run.frames, run.payloads().count());
                    assert_eq!(run.payload_bytes, run.payloads().map(<[u8]>::len).sum::<usize>());
                }
            }
        }
        let (runs, _) = cut_runs(&stream, stream.len(), 100);
        assert_eq!(runs.len(), 1, "one chunk, one run");
        let (_, refused) = cut_runs(&wire(&[b"ok", &[0; 1025]]), 3, 100);
        assert_eq!(refused, Some(FrameTooLarge(1025)));
    }

    #[test]
    fn a_run_splits_at_frame_bounds() {
        let payloads: [&[u8]; 3] = [b"ab", b"", b"cde"];
        let mut builder = WireFramesBuilder::new(16);
        for payload in payloads {
            builder
                .push_with(payload.len(), |buf| buf.put_slice(payload))
                .unwrap();
        }
        let mut run = builder.finish().run(0..3);
        let head = run.split_to(2);
        assert_eq!((head.frames, head.payload_bytes), (2, 2));
        assert_eq!(head.payloads().collect::<Vec<_>>(), payloads[..2]);
        assert_eq!((run.frames, run.payload_bytes), (1, 3));
        assert_eq!(run.payloads().collect::<Vec<_>>(), [b"cde"]);
    }

    #[test]
    fn wire_frames_are_what_the_codec_writes_and_cut_at_frame_bounds() {
        let payloads: [&[u8]; 4] = [b"test", b"", &[7; 300], b"x"];
        let mut builder = WireFramesBuilder::new(1024);
        for payload in payloads {
            builder
                .push_with(payload.len(), |buf| buf.put_slice(payload))
                .unwrap();
        }
        let frames = builder.finish();
        assert_eq!(frames.len(), 4);
        let all = frames.run(0..4);
        assert_eq!(all.wire, wire(&payloads), "the codec's bytes");
        assert_eq!((all.frames, all.payload_bytes), (4, 305));
        let middle = frames.run(1..3);
        assert_eq!(middle.wire, wire(&payloads[1..3]));
        assert_eq!((middle.frames, middle.payload_bytes), (2, 300));
        assert_eq!(frames.run(2..2).wire.len(), 0);
        assert_eq!(frames.payload(2), Bytes::from_static(&[7; 300]));
        assert_eq!(frames.payload(1), Bytes::new());
        let tail = frames.slice(2..4);
        assert_eq!(tail.run(0..2).wire, wire(&payloads[2..]));
        assert_eq!(tail.payload(1), Bytes::from_static(b"x"));
    }

    #[test]
    fn a_payload_over_the_limit_is_refused_and_leaves_no_trace() {
        let mut builder = WireFramesBuilder::new(8);
        builder.push_with(2, |buf| buf.put_slice(b"ok")).unwrap();
        assert_eq!(
            builder.push_with(9, |buf| buf.put_slice(&[0; 9])),
            Err(FrameTooLarge(9))
        );
        builder.push_with(8, |buf| buf.put_slice(&[1; 8])).unwrap();
        let frames = builder.finish();
        assert_eq!(frames.run(0..2).wire, wire(&[b"ok", &[1; 8]]));
    }

    #[test]
    fn a_frame_in_one_byte_chunks_holds_at_most_twice_its_size() {
        // Each byte comes as QUIC hands a 1-byte STREAM frame over: a slice
        // of its whole datagram, which the slice keeps alive.
        const DATAGRAM: usize = 1452;
        let payload = vec![5u8; 256 * 1024];
        let stream = wire(&[&payload]);
        let mut buffer = FrameBuffer::new(1 << 20);
        for (received, byte) in stream.iter().enumerate() {
            let mut datagram = vec![0u8; DATAGRAM];
            datagram[7] = *byte;
            buffer.push(Bytes::from(datagram).slice(7..8));
            if received + 1 < stream.len() {
                assert!(matches!(buffer.next_run(8), Ok(None)));
                let held_datagrams = buffer.chunks.len() * DATAGRAM;
                let assembled = buffer.assembly.as_ref().map_or(0, |a| a.wire.capacity());
                let held = held_datagrams + assembled;
                assert!(
                    held <= 2 * (received + 1) + Assembly::FIRST_RESERVE,
                    "{held} bytes held for {} received",
                    received + 1
                );
            }
        }
        let run = buffer.next_run(8).unwrap().expect("the whole frame");
        assert_eq!(run.payloads().collect::<Vec<_>>(), [&payload[..]]);
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
