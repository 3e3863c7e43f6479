//! The link framing every protocol shares: a 4-byte big-endian length, then
//! the payload, limited by the protocol's `MAX_FRAME` (`link::codec`, which
//! links write with; they read with `frames::FrameBuffer`).
//!
//! The first input byte picks the protocol's limit and how the rest arrives
//! (one read, or chunks of 1 to 64 bytes, as QUIC may deliver it). Checked:
//! no panic; no frame over the limit; the frames re-encode to exactly the
//! bytes consumed; a decode error means a length over the limit; the
//! chunking does not change the frames; and the link's own reader cuts
//! exactly the frames the codec does, refusing the same lengths, whether
//! frame by frame or in runs (whose sizes the selector's low bits pick).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use mosaik_core::{
    network::{
        Protocol,
        frames::FrameBuffer,
        link::codec,
        protocol::{CatalogSync, Ping},
    },
    streams::StreamsProtocol,
};
use tokio_util::codec::{Decoder, Encoder};

/// The frames read from `stream` delivered `chunk` bytes at a time, and
/// whether the codec refused a length.
fn read_frames(stream: &[u8], max_frame: usize, chunk: usize) -> (Vec<BytesMut>, bool) {
    let mut codec = codec(max_frame);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
                    return (frames, true);
                }
            }
        }
    }
    // The peer ends its stream: a partial frame left over is an error, but
    // not a refused length (that was seen as soon as its 4 bytes arrived).
    match codec.decode_eof(&mut buffer) {
        Ok(Some(frame)) => frames.push(frame),
        Ok(None) => {}
        Err(_) => assert!(
            !buffer.is_empty(),
            "an error at the end of the stream with nothing left"
        ),
    }
    (frames, false)
}

/// The frames the link's reader cuts from `stream` delivered `chunk` bytes
/// at a time, and whether it refused a length.
fn link_frames(stream: &[u8], max_frame: usize, chunk: usize) -> (Vec<Bytes>, bool) {
    let mut buffer = FrameBuffer::new(max_frame);
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buffer.push(Bytes::copy_from_slice(piece));
        loop {
            match buffer.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

/// The same as runs of at most `max` frames (the streams receivers' way),
/// each run checked for its own counts.
fn link_runs(stream: &[u8], max_frame: usize, chunk: usize, max: usize) -> (Vec<Vec<u8>>, bool) {
    let mut buffer = FrameBuffer::new(max_frame);
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        buffer.push(Bytes::copy_from_slice(piece));
        loop {
            match buffer.next_run(max) {
                Ok(Some(run)) => {
                    let payloads: Vec<&[u8]> = run.payloads().collect();
                    assert!(run.frames >= 1 && run.frames <= max);
                    assert_eq!(payloads.len(), run.frames);
                    assert_eq!(payloads.iter().map(|p| p.len()).sum::<usize>(), run.payload_bytes);
                    assert_eq!(run.wire.len(), run.payload_bytes + 4 * run.frames);
                    frames.extend(payloads.into_iter().map(<[u8]>::to_vec));
                }
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

fn refused_length(rest: &[u8], max_frame: usize) -> bool {
    rest.len() >= 4 && u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize > max_frame
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let max_frame = match selector % 4 {
        0 => Ping::MAX_FRAME,
        1 => CatalogSync::MAX_FRAME,
        2 => StreamsProtocol::MAX_FRAME,
        // A tiny limit, so the fuzzer reaches the refusal path cheaply.
        _ => 16,
    };
    let chunk = if selector < 128 {
        stream.len()
    } else {
        usize::from(selector & 63) + 1
    };

    let (frames, refused) = read_frames(stream, max_frame, chunk);
    let mut encoder = codec(max_frame);
    let mut consumed = BytesMut::new();
    for frame in &frames {
        assert!(frame.len() <= max_frame);
        encoder
            .encode(Bytes::copy_from_slice(frame), &mut consumed)
            .expect("a frame under the limit encodes");
    }
    assert!(
        stream.starts_with(&consumed),
        "frames do not re-encode to the bytes read"
    );
    if refused {
        assert!(
            refused_length(&stream[consumed.len()..], max_frame),
            "refused a length within the limit"
        );
    }

    let (whole, whole_refused) = read_frames(stream, max_frame, stream.len());
    assert_eq!(whole, frames, "chunking changed the frames");
    assert_eq!(whole_refused, refused);

    let (cut, cut_refused) = link_frames(stream, max_frame, chunk);
    assert_eq!(cut_refused, refused, "the link refuses what the codec refuses");
    // The codec also yields a last frame at the end of the stream only if
    // it is whole, which the link's reader returned already.
    assert_eq!(cut.len(), frames.len(), "the link cut other frames than the codec");
    for (a, b) in cut.iter().zip(&frames) {
        assert_eq!(&a[..], &b[..], "the link cut other frames than the codec");
    }

    let run_max = usize::from(selector >> 2 & 7) * 37 + 1;
    let (runs, runs_refused) = link_runs(stream, max_frame, chunk, run_max);
    assert_eq!(runs_refused, refused, "runs refuse what the codec refuses");
    assert_eq!(runs.len(), frames.len(), "runs hold other frames than the codec cut");
    for (a, b) in runs.iter().zip(&frames) {
        assert_eq!(&a[..], &b[..], "runs hold other frames than the codec cut");
    }
});
