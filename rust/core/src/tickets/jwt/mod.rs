//! mosaik's JWT tickets: compact JWS tokens bound to the bearer's peer id.
