//! `Link`: one QUIC connection carrying one bidirectional stream of frames.
//!
//! This is mosaik's link layer. Each frame is a 4-byte big-endian length and
//! a postcard payload (tokio-util's `LengthDelimitedCodec` defaults). The
//! side that opens must write first: QUIC announces a stream only when data
//! arrives. A link ends with an application CONNECTION_CLOSE carrying a
//! [`CloseReason`]: a frame that fails to decode ends it with 400, a dropped
//! or cancelled link with 102, a stream that ends early with 103.

use std::{fmt, marker::PhantomData, time::Duration};

use bytes::Bytes;
use futures::SinkExt;
use iroh::{
    Endpoint, EndpointAddr, EndpointId,
    endpoint::{Connection, ConnectionError, RecvStream, SendStream, VarInt},
};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::codec::{FramedWrite, LengthDelimitedCodec};

use super::{
    close::{CloseReason, RemoteClose},
    frames::{FrameBuffer, FrameRun, FrameTooLarge},
    protocol::Protocol,
};
use crate::primitives::encoding::{self, EncodingError};

/// Why a link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("peer closed the link: {0}")]
    ClosedByPeer(RemoteClose),
    #[error("link closed locally: {0}")]
    ClosedLocally(CloseReason),
    #[error("connection lost: {0}")]
    ConnectionLost(ConnectionError),
    #[error("peer ended the stream before closing the link")]
    UnexpectedEnd,
    #[error("frame failed to decode: {0}")]
    Decode(EncodingError),
    #[error("frame could not be encoded: {0}")]
    Encode(EncodingError),
    #[error("frame of {0} bytes exceeds this link's limit")]
    FrameTooLarge(usize),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("i/o: {0}")]
    Io(std::io::Error),
}

impl LinkError {
    /// The code a remote peer closed with, if that is how the link ended.
    pub fn remote_code(&self) -> Option<u64> {
        match self {
            LinkError::ClosedByPeer(close) => Some(close.code),
            _ => None,
        }
    }
}

/// A framed, bidirectional link to one peer for protocol `P`.
/// How long a link that saw the peer end its stream waits for the peer's
/// close reason before calling it an unexpected end (103).
const CLOSE_AFTER_END: Duration = Duration::from_secs(1);

/// The most a single read takes off the QUIC stream; QUIC hands out about a
/// packet per chunk anyway.
const READ_CHUNK: usize = 64 * 1024;

pub struct Link<P: Protocol> {
    connection: Connection,
    writer: FramedWrite<SendStream, LengthDelimitedCodec>,
    reader: RecvStream,
    /// What `reader` delivered and is not yet a returned frame.
    frames: FrameBuffer,
    _protocol: PhantomData<P>,
}

/// The link's framing with a `max_frame` payload limit, as it writes frames
/// (reading is `frames::FrameBuffer`, which the fuzz targets check against
/// this codec).
#[doc(hidden)]
pub fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(max_frame)
        .new_codec()
}

impl<P: Protocol> Link<P> {
    /// Dials `addr` under `P::ALPN` and opens the link's stream. The caller
    /// must send the first frame.
    pub async fn open(endpoint: &Endpoint, addr: EndpointAddr) -> Result<Self, LinkError> {
        let connection = endpoint
            .connect(addr, P::ALPN)
            .await
            .map_err(|e| LinkError::Connect(e.to_string()))?;
        match connection.open_bi().await {
            Ok((send, recv)) => Ok(Self::from_parts(connection, send, recv)),
            // The peer may refuse before any stream exists (401): report its code.
            Err(e) => {
                let error = Self::lost(&connection, e);
                close_connection(&connection, CloseReason::Cancelled);
                Err(error)
            }
        }
    }

    /// Accepts the link's stream on an incoming connection. Resolves once
    /// the opener has written its first frame.
    pub async fn accept(connection: Connection) -> Result<Self, LinkError> {
        if connection.alpn() != P::ALPN {
            close_connection(&connection, CloseReason::InvalidAlpn);
            return Err(LinkError::ClosedLocally(CloseReason::InvalidAlpn));
        }
        match connection.accept_bi().await {
            Ok((send, recv)) => Ok(Self::from_parts(connection, send, recv)),
            Err(e) => Err(Self::lost(&connection, e)),
        }
    }

    fn from_parts(connection: Connection, send: SendStream, recv: RecvStream) -> Self {
        Self {
            writer: FramedWrite::new(send, codec(P::MAX_FRAME)),
            reader: recv,
            frames: FrameBuffer::new(P::MAX_FRAME),
            connection,
            _protocol: PhantomData,
        }
    }

    /// The peer's id, as authenticated by the TLS handshake.
    /// Caps the frames this link accepts from now on (at most the
    /// protocol's limit), so a small message is read under a small cap.
    pub fn limit_frames(&mut self, max: usize) {
        self.frames.set_max_frame(max.min(P::MAX_FRAME));
    }

    pub fn remote_id(&self) -> EndpointId {
        self.connection.remote_id()
    }

    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Encodes `value` with postcard and sends it as one frame.
    pub async fn send<T: Serialize>(&mut self, value: &T) -> Result<(), LinkError> {
        let payload = encoding::encode(value).map_err(LinkError::Encode)?;
        self.send_raw(payload).await
    }

    /// Sends one frame holding `payload` as is, and flushes.
    pub async fn send_raw(&mut self, payload: Bytes) -> Result<(), LinkError> {
        self.feed_raw(payload).await?;
        self.flush().await
    }

    /// Queues one frame without flushing; `flush` writes every queued frame.
    pub async fn feed_raw(&mut self, payload: Bytes) -> Result<(), LinkError> {
        if payload.len() > P::MAX_FRAME {
            return Err(LinkError::FrameTooLarge(payload.len()));
        }
        self.writer.feed(payload).await.map_err(|e| self.io_error(e))
    }

    pub async fn flush(&mut self) -> Result<(), LinkError> {
        self.writer.flush().await.map_err(|e| self.io_error(e))
    }

    /// Hands QUIC a prefix of `wire` (whole frames laid out by
    /// `frames::WireFrames`) as it is, without copying, and advances `wire`
    /// past what was taken. Cancel-safe: nothing is taken unless this
    /// returns.
    pub async fn write_wire(&mut self, wire: &mut Bytes) -> Result<(), LinkError> {
        if !self.writer.write_buffer().is_empty() {
            self.flush().await?;
        }
        let stream = self.writer.get_mut();
        let written = stream.write_chunks(std::slice::from_mut(wire)).await;
        written.map(|_| ()).map_err(|e| self.io_error(e.into()))
    }

    /// Tells the peer we read nothing more on this link (QUIC's
    /// STOP_SENDING): whatever it still sends is dropped by QUIC as it
    /// arrives instead of held, unread, until the link closes. The link
    /// still sends, and still sees the peer close the connection.
    pub fn stop_reading(&mut self) {
        let _ = self.reader.stop(VarInt::from_u32(0));
    }

    /// Receives one frame and decodes it. A frame that fails to decode
    /// closes the link with `ProtocolViolation` (400).
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, LinkError> {
        let frame = self.recv_raw().await?;
        encoding::decode(&frame).map_err(|e| {
            self.close_now(CloseReason::ProtocolViolation);
            LinkError::Decode(e)
        })
    }

    /// Receives one frame's payload. A stream that ends before the link is
    /// closed closes it with `UnexpectedClose` (103); an oversized frame
    /// with `ProtocolViolation` (400). Cancel-safe.
    pub async fn recv_raw(&mut self) -> Result<Bytes, LinkError> {
        loop {
            match self.frames.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => self.read_more().await?,
                Err(FrameTooLarge(_)) => return Err(self.refuse_oversized()),
            }
        }
    }

    /// Receives up to `max` frames that arrived together, as one run (see
    /// `FrameBuffer::next_run`); errors as `recv_raw`. Cancel-safe.
    pub async fn recv_run(&mut self, max: usize) -> Result<FrameRun, LinkError> {
        loop {
            match self.frames.next_run(max) {
                Ok(Some(run)) => return Ok(run),
                Ok(None) => self.read_more().await?,
                Err(FrameTooLarge(_)) => return Err(self.refuse_oversized()),
            }
        }
    }

    /// Takes the stream's next chunk into the frame buffer. Cancel-safe.
    async fn read_more(&mut self) -> Result<(), LinkError> {
        match self.reader.read_chunk(READ_CHUNK).await {
            Ok(Some(chunk)) => {
                self.frames.push(chunk.bytes);
                Ok(())
            }
            // The stream ended (a partial frame left over is dropped).
            Ok(None) => Err(self.ended().await),
            Err(e) => Err(self.io_error(e.into())),
        }
    }

    fn refuse_oversized(&self) -> LinkError {
        self.close_now(CloseReason::ProtocolViolation);
        LinkError::FrameTooLarge(P::MAX_FRAME)
    }

    /// The peer ended its stream: a peer closing gracefully does that first
    /// and closes the connection, with its reason, right after.
    async fn ended(&self) -> LinkError {
        if let Ok(reason) = tokio::time::timeout(CLOSE_AFTER_END, self.connection.closed()).await {
            return Self::lost(&self.connection, reason);
        }
        self.close_now(CloseReason::UnexpectedClose);
        LinkError::UnexpectedEnd
    }

    /// Closes the link with `reason` and waits, at most `grace`, for the
    /// close to be acknowledged so the peer sees the code.
    pub async fn close(self, reason: CloseReason, grace: Duration) {
        close_connection(&self.connection, reason);
        let _ = tokio::time::timeout(grace, self.connection.closed()).await;
    }

    /// Ends our side of the stream, waits (at most `grace`) until the peer
    /// has received everything written, then closes with `reason`. Closing
    /// at once could drop frames still in flight.
    pub async fn finish_and_close(mut self, reason: CloseReason, grace: Duration) {
        let _ = tokio::time::timeout(grace, async {
            if self.writer.flush().await.is_ok() && self.writer.get_mut().finish().is_ok() {
                let _ = self.writer.get_ref().stopped().await;
            }
        })
        .await;
        self.close(reason, grace).await;
    }

    /// Closes with `reason` without waiting.
    pub fn close_now(&self, reason: CloseReason) {
        close_connection(&self.connection, reason);
    }

    /// Waits until the peer closes the link, and returns how it did.
    pub async fn closed(&self) -> LinkError {
        Self::lost(&self.connection, self.connection.closed().await)
    }

    fn io_error(&self, error: std::io::Error) -> LinkError {
        if let Some(reason) = self.connection.close_reason() {
            return Self::lost(&self.connection, reason);
        }
        LinkError::Io(error)
    }

    fn lost(connection: &Connection, error: ConnectionError) -> LinkError {
        let error = connection.close_reason().unwrap_or(error);
        match error {
            ConnectionError::ApplicationClosed(close) => LinkError::ClosedByPeer(RemoteClose {
                code: close.error_code.into_inner(),
                reason: close.reason.to_vec(),
            }),
            ConnectionError::LocallyClosed => LinkError::ClosedLocally(CloseReason::Cancelled),
            other => LinkError::ConnectionLost(other),
        }
    }
}

impl<P: Protocol> Drop for Link<P> {
    /// A link dropped before it was closed was cancelled: tell the peer (102).
    fn drop(&mut self) {
        if self.connection.close_reason().is_none() {
            close_connection(&self.connection, CloseReason::Cancelled);
        }
    }
}

impl<P: Protocol> fmt::Debug for Link<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("alpn", &String::from_utf8_lossy(P::ALPN))
            .field(
                "remote",
                &format_args!("{}", self.connection.remote_id().fmt_short()),
            )
            .finish()
    }
}

/// Closes `connection` with a mosaik reason unless it is already closed.
pub fn close_connection(connection: &Connection, reason: CloseReason) {
    if connection.close_reason().is_none() {
        connection.close(VarInt::from_u32(reason.code()), reason.name().as_bytes());
    }
}
