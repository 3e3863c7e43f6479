//! What can go wrong with a group, as its users see it.

use super::config::ConsensusConfigError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// No leader could take the request; nothing was appended.
    #[error("the group is offline: no leader took the request")]
    Offline,
    /// The request reached a leader that did not confirm it in time: it
    /// may or may not be committed later. Never retried silently.
    #[error("the outcome is unknown: the command may still be committed")]
    OutcomeUnknown,
    /// The leader that took the command was deposed before it committed,
    /// and another command holds its index: it was never applied.
    #[error("the command was lost: its leader was deposed before committing it")]
    Lost,
    #[error("the group is closed")]
    Closed,
    #[error("this node already runs group {0}; use its existing handle")]
    AlreadyJoined(String),
    #[error("no commands given")]
    NoCommands,
    #[error(transparent)]
    Config(#[from] ConsensusConfigError),
}
