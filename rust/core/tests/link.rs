//! Links between two real iroh endpoints on loopback: frames, close codes,
//! decode failures and oversized frames, as a peer observes them.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use iroh::{Endpoint, SecretKey};
use mosaik_core::{
    Digest, NodeConfig,
    network::{CloseReason, Link, LinkError, Protocol, RemoteClose, route_repair::RouteRepair},
};

struct Echo;

impl Protocol for Echo {
    const ALPN: &'static [u8] = b"/mosaik-test/echo/1";
    const MAX_FRAME: usize = 1024;
}

const WAIT: Duration = Duration::from_secs(10);

async fn endpoint() -> Endpoint {
    let config = NodeConfig::local(Digest::from_name("link-tests"));
    let lookup = iroh::address_lookup::memory::MemoryLookup::new();
    let ep = config
        .bind_endpoint(SecretKey::generate(&mut rand::rng()), lookup, RouteRepair::new())
        .await
        .unwrap();
    ep.set_alpns(vec![Echo::ALPN.to_vec()]);
    ep
}

/// A connected pair: (opener's link, acceptor's link).
async fn pair() -> (Endpoint, Endpoint, Link<Echo>, Link<Echo>) {
    let (a, b) = (endpoint().await, endpoint().await);
    let b_addr = b.addr();
    let accept = {
        let b = b.clone();
        tokio::spawn(async move {
            let connection = b.accept().await.unwrap().await.unwrap();
            Link::<Echo>::accept(connection).await.unwrap()
        })
    };
    let mut opener = Link::<Echo>::open(&a, b_addr).await.unwrap();
    // The opener speaks first, or the acceptor never sees the stream.
    opener.send(&"hello".to_string()).await.unwrap();
    let mut acceptor = tokio::time::timeout(WAIT, accept).await.unwrap().unwrap();
    let hello: String = acceptor.recv().await.unwrap();
    assert_eq!(hello, "hello");
    (a, b, opener, acceptor)
}

fn peer_close(error: LinkError) -> RemoteClose {
    match error {
        LinkError::ClosedByPeer(close) => close,
        other => panic!("expected a close by the peer, got {other}"),
    }
}

#[tokio::test]
async fn frames_arrive_in_order_with_the_peer_id_from_tls() {
    let (a, _b, mut opener, mut acceptor) = pair().await;
    assert_eq!(acceptor.remote_id(), a.id());
    for i in 0u64..100 {
        opener
            .feed_raw(Bytes::from(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    opener.flush().await.unwrap();
    opener.send_raw(Bytes::new()).await.unwrap(); // zero-length frames are legal
    for i in 0u64..100 {
        let frame = tokio::time::timeout(WAIT, acceptor.recv_raw())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&frame[..], &i.to_be_bytes());
    }
    assert!(acceptor.recv_raw().await.unwrap().is_empty());
    acceptor.send(&(7u32, "back".to_string())).await.unwrap();
    let reply: (u32, String) = opener.recv().await.unwrap();
    assert_eq!(reply, (7, "back".to_string()));
}

#[tokio::test]
async fn every_close_reason_reaches_the_peer_with_its_code_and_name() {
    for reason in CloseReason::ALL {
        let (_a, _b, mut opener, acceptor) = pair().await;
        acceptor.close(*reason, Duration::from_secs(1)).await;
        let close = peer_close(
            tokio::time::timeout(WAIT, opener.recv_raw())
                .await
                .unwrap()
                .unwrap_err(),
        );
        assert_eq!(close.code, u64::from(reason.code()));
        assert_eq!(close.reason, reason.name().as_bytes());
        assert_eq!(close.known(), Some(*reason));
    }
}

#[tokio::test]
async fn a_frame_that_fails_to_decode_closes_with_400() {
    let (_a, _b, mut opener, mut acceptor) = pair().await;
    // 0xff is not a valid varint length for a String.
    opener.send_raw(Bytes::from_static(&[0xff])).await.unwrap();
    let err = acceptor.recv::<String>().await.unwrap_err();
    assert!(matches!(err, LinkError::Decode(_)), "{err}");
    let close = peer_close(tokio::time::timeout(WAIT, opener.closed()).await.unwrap());
    assert_eq!(close.known(), Some(CloseReason::ProtocolViolation));
}

#[tokio::test]
async fn dropping_a_link_closes_it_as_cancelled() {
    let (_a, _b, opener, acceptor) = pair().await;
    drop(acceptor);
    let close = peer_close(tokio::time::timeout(WAIT, opener.closed()).await.unwrap());
    assert_eq!(close.known(), Some(CloseReason::Cancelled));
}

#[tokio::test]
async fn an_oversized_length_prefix_closes_with_400_without_allocating() {
    let (a, b) = (endpoint().await, endpoint().await);
    let b_addr = b.addr();
    let acceptor = b.clone(); // `b` must outlive the task so its close frame is sent
    let accept = tokio::spawn(async move {
        let b = acceptor;
        let connection = b.accept().await.unwrap().await.unwrap();
        let mut link = Link::<Echo>::accept(connection).await.unwrap();
        link.recv_raw().await.map(|_| ())
    });
    // A hostile peer writing raw bytes: a header claiming 4 GiB - 1.
    let connection = a.connect(b_addr, Echo::ALPN).await.unwrap();
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    let mut header = BytesMut::new();
    header.put_u32(u32::MAX);
    send.write_all(&header).await.unwrap();
    let result = tokio::time::timeout(WAIT, accept).await.unwrap().unwrap();
    assert!(matches!(result, Err(LinkError::FrameTooLarge(_))), "{result:?}");
    match tokio::time::timeout(WAIT, connection.closed()).await.unwrap() {
        iroh::endpoint::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code.into_inner(),
                u64::from(CloseReason::ProtocolViolation.code())
            );
        }
        other => panic!("expected an application close, got {other:?}"),
    }
}

#[tokio::test]
async fn frames_are_length_prefixed_big_endian() {
    use tokio_util::codec::Encoder;
    let mut codec = tokio_util::codec::LengthDelimitedCodec::new();
    let mut out = BytesMut::new();
    codec.encode(Bytes::from_static(b"abc"), &mut out).unwrap();
    assert_eq!(&out[..], b"\x00\x00\x00\x03abc");
}
