//! Hostile subscribers: each gets mosaik's close code, and the producer
//! node keeps serving honest consumers afterwards.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mosaik_core::{
    Digest, Node,
    network::{CloseReason, Link, Protocol},
    streams::{ConsumerConfig, ProducerConfig, StreamsProtocol},
};

mod common;

use common::{WAIT, pair};

/// The producer still serves an honest consumer on `b`.
async fn still_serves(a: &Node, b: &Node, stream: Digest) {
    let producer = a.streams().producer(ProducerConfig::new(stream)).unwrap();
    let consumer = b.streams().consumer(ConsumerConfig::new(stream)).unwrap();
    tokio::time::timeout(WAIT, consumer.subscribed(1)).await.unwrap();
    producer.send(Bytes::from_static(b"fine")).await.unwrap();
    let datum = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&datum.payload[..], b"fine");
}

fn code(reason: CloseReason) -> Option<u64> {
    Some(u64::from(reason.code()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_never_speaks_is_cut_off_after_the_handshake_timeout() {
    let (a, b) = pair("hostile-silent").await;
    let mut link = Link::<StreamsProtocol>::open(b.endpoint(), a.addr())
        .await
        .unwrap();
    // The stream is opened but nothing is written, so the producer never
    // even sees it: only the connection tells it someone is there.
    let started = Instant::now();
    let error = tokio::time::timeout(WAIT, link.recv_raw())
        .await
        .expect("the producer hangs up")
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(
        error.remote_code(),
        code(CloseReason::ProtocolViolation),
        "{error}"
    );
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    still_serves(&a, &b, Digest::from_name("after-silence")).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_handshake_is_a_protocol_violation() {
    let (a, b) = pair("hostile-garbage").await;
    let mut link = Link::<StreamsProtocol>::open(b.endpoint(), a.addr())
        .await
        .unwrap();
    link.send_raw(Bytes::from_static(b"\x01\x02\x03")).await.unwrap();
    let error = tokio::time::timeout(WAIT, link.recv_raw())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        error.remote_code(),
        code(CloseReason::ProtocolViolation),
        "{error}"
    );
    still_serves(&a, &b, Digest::from_name("after-garbage")).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frame_claiming_four_gibibytes_is_refused_without_allocating_it() {
    let (a, b) = pair("hostile-huge").await;
    let connection = b
        .endpoint()
        .connect(a.addr(), StreamsProtocol::ALPN)
        .await
        .unwrap();
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    send.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
    let closed = tokio::time::timeout(WAIT, connection.closed())
        .await
        .expect("the producer hangs up");
    match closed {
        iroh::endpoint::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                Some(close.error_code.into_inner()),
                code(CloseReason::ProtocolViolation)
            );
        }
        other => panic!("expected an application close, got {other}"),
    }
    still_serves(&a, &b, Digest::from_name("after-huge")).await;
    a.close().await;
    b.close().await;
}
