//! The bond worker: one task per bond, owning its link. It writes queued
//! frames, reads the peer's, answers pings, keeps the heartbeat, and tells
//! the group what arrived and when the bond ends (groups spec §2.7–2.9).

use std::{collections::VecDeque, time::Duration};

use iroh::{EndpointId, endpoint::Side};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{
    BOND_QUEUE, Bond, BondEvent,
    heartbeat::{Heartbeat, Tick},
    protocol::BondMessage,
};
use crate::{
    discovery::{Discovery, catalog::Source},
    groups::{
        config::ConsensusConfig,
        protocol::GroupsProtocol,
        raft::Message,
        rejection::{Rejection, Rejections},
    },
    network::{CLOSE_GRACE, CloseReason, Link, LinkError},
    primitives::{Digest, encoding},
    tickets::Gate,
};

/// What every bond of a group shares.
#[derive(Clone)]
pub struct BondContext {
    pub config: ConsensusConfig,
    pub discovery: Discovery,
    /// Where bonds report to their group.
    pub events: mpsc::Sender<BondEvent>,
    pub rejections: Rejections,
    /// Cancelled when the group closes.
    pub cancel: CancellationToken,
}

/// Starts the worker of a formed bond and returns the group's handle;
/// `gate` keeps the peer under the group's ticket validators.
pub fn spawn(link: Link<GroupsProtocol>, id: Digest, gate: Gate, context: &BondContext) -> Bond {
    let (outbox, queue) = mpsc::channel(BOND_QUEUE);
    let cancel = context.cancel.child_token();
    let superseded = CancellationToken::new();
    let bond = Bond {
        peer: link.remote_id(),
        id,
        dialed_by_us: link.connection().side() == Side::Client,
        outbox,
        cancel: cancel.clone(),
        superseded: superseded.clone(),
    };
    let config = &context.config;
    let heartbeat = Heartbeat::new(
        config.heartbeat_interval,
        config.heartbeat_jitter,
        config.max_missed_heartbeats,
    );
    let worker = Worker {
        link,
        peer: bond.peer,
        id,
        queue,
        events: context.events.clone(),
        discovery: context.discovery.clone(),
        heartbeat,
        cancel,
        superseded,
        rejections: context.rejections.clone(),
        votes: VecDeque::new(),
        gate,
    };
    context.discovery.spawn(worker.run());
    bond
}

struct Worker {
    link: Link<GroupsProtocol>,
    peer: EndpointId,
    id: Digest,
    queue: mpsc::Receiver<BondMessage>,
    events: mpsc::Sender<BondEvent>,
    discovery: Discovery,
    heartbeat: Heartbeat,
    cancel: CancellationToken,
    superseded: CancellationToken,
    rejections: Rejections,
    /// When the peer's recent vote requests arrived (the storm guard).
    votes: VecDeque<Instant>,
    /// Ends the bond (30403) once the peer's tickets expire or stop passing;
    /// a renewed ticket (its `PeerEntryUpdate`) keeps it.
    gate: Gate,
}

/// More vote requests than this from one peer within `VOTE_WINDOW` is a
/// storm: no timers a member could run stand that often.
const VOTE_STORM: usize = 50;
const VOTE_WINDOW: Duration = Duration::from_secs(1);

/// How a bond ended.
enum End {
    /// We left (group closed) or the peer said goodbye.
    Cancelled {
        say_goodbye: bool,
    },
    /// Another bond with the same peer replaced this one.
    Superseded,
    Timeout,
    Link(LinkError),
    Violation(Rejection, String),
}

impl Worker {
    async fn run(mut self) {
        let end = loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break End::Cancelled { say_goodbye: true },
                _ = self.superseded.cancelled() => break End::Superseded,
                message = self.queue.recv() => match message {
                    Some(message) => {
                        if let Err(e) = self.write(message).await {
                            break End::Link(e);
                        }
                    }
                    None => break End::Cancelled { say_goodbye: true },
                },
                frame = self.link.recv_raw() => match frame {
                    Ok(frame) => {
                        self.heartbeat.received();
                        match encoding::decode::<BondMessage>(&frame) {
                            Ok(message) => {
                                if let Some(end) = self.handle(message).await {
                                    break end;
                                }
                            }
                            Err(e) => break End::Violation(Rejection::Undecodable, format!("bond frame: {e}")),
                        }
                    }
                    Err(e @ LinkError::FrameTooLarge(_)) => break End::Violation(Rejection::Undecodable, e.to_string()),
                    Err(e) => break End::Link(e),
                },
                refusal = self.gate.revoked() => break End::Violation(Rejection::NotAllowed, refusal.to_string()),
                _ = tokio::time::sleep_until(self.heartbeat.next_tick()) => match self.heartbeat.tick() {
                    Tick::Ping => {
                        if self.queue.is_empty()
                            && let Err(e) = self.link.send(&BondMessage::Ping).await
                        {
                            break End::Link(e);
                        }
                    }
                    Tick::Dead => break End::Timeout,
                },
            }
        };
        let duplicate = matches!(&end, End::Link(e) if e.remote_code() == Some(u64::from(CloseReason::AlreadyBonded.code())));
        let reason = match end {
            End::Cancelled { say_goodbye } => {
                if say_goodbye {
                    let _ = tokio::time::timeout(CLOSE_GRACE, self.link.send(&BondMessage::Departure)).await;
                }
                self.link
                    .finish_and_close(CloseReason::Cancelled, CLOSE_GRACE)
                    .await;
                "closed".to_owned()
            }
            End::Superseded => {
                self.link.close(CloseReason::AlreadyBonded, CLOSE_GRACE).await;
                "superseded by a bond over the connection both ends keep (30429)".to_owned()
            }
            End::Timeout => {
                self.link.close(CloseReason::Timeout, CLOSE_GRACE).await;
                "heartbeat timeout (30408)".to_owned()
            }
            End::Violation(reason, detail) => {
                self.rejections.record(reason, &self.peer, &detail);
                self.link.close(reason.close_reason(), CLOSE_GRACE).await;
                detail
            }
            End::Link(e) => e.to_string(),
        };
        debug!(peer = %self.peer.fmt_short(), reason, "bond ended");
        let _ = self
            .events
            .send(BondEvent::Down {
                peer: self.peer,
                id: self.id,
                reason,
                duplicate,
            })
            .await;
    }

    /// Writes `first` and whatever else is queued, then flushes once.
    async fn write(&mut self, first: BondMessage) -> Result<(), LinkError> {
        let mut message = Some(first);
        while let Some(next) = message {
            let payload = encoding::encode(&next).map_err(LinkError::Encode)?;
            self.link.feed_raw(payload).await?;
            message = self.queue.try_recv().ok();
        }
        self.link.flush().await
    }

    /// Notes a vote request; true once they come faster than any timers allow.
    fn vote_storm(&mut self) -> bool {
        let now = Instant::now();
        while self
            .votes
            .front()
            .is_some_and(|t| now.duration_since(*t) > VOTE_WINDOW)
        {
            self.votes.pop_front();
        }
        self.votes.push_back(now);
        self.votes.len() > VOTE_STORM
    }

    async fn handle(&mut self, message: BondMessage) -> Option<End> {
        match message {
            BondMessage::Ping => {
                if self.queue.is_empty()
                    && let Err(e) = self.link.send(&BondMessage::Pong).await
                {
                    return Some(End::Link(e));
                }
            }
            BondMessage::Pong => {}
            BondMessage::Departure => return Some(End::Cancelled { say_goodbye: false }),
            BondMessage::PeerEntryUpdate(entry) => {
                // Only the bonded peer's own entry (mosaik does not check).
                if entry.entry().id() == self.peer {
                    self.discovery.ingest(entry, Source::Sync, Some(self.peer));
                }
            }
            BondMessage::BondFormed(entry) => {
                let _ = self.events.send(BondEvent::Formed(Box::new(entry))).await;
            }
            BondMessage::Raft(message) => {
                if matches!(message, Message::RequestVote { .. }) && self.vote_storm() {
                    return Some(End::Violation(
                        Rejection::VoteStorm,
                        "vote requests far too often".into(),
                    ));
                }
                if self
                    .events
                    .send(BondEvent::Raft {
                        peer: self.peer,
                        message: Box::new(message),
                    })
                    .await
                    .is_err()
                {
                    return Some(End::Cancelled { say_goodbye: true });
                }
            }
        }
        None
    }
}

/// How long a departing group waits for its goodbyes to be written.
pub const DEPARTURE_GRACE: Duration = Duration::from_millis(300);
