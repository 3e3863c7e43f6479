"""mosaik's exceptions. All derive from :class:`MosaikError`.

Wrong argument types raise :class:`TypeError` and bad values
:class:`ValueError`; each message names the argument.
"""

from ._mosaik import (
    Closed,
    ConnectError,
    DecodeError,
    Empty,
    Full,
    MosaikError,
    Offline,
    OutcomeUnknown,
)

__all__ = [
    "MosaikError",
    "Closed",
    "Full",
    "Offline",
    "OutcomeUnknown",
    "Empty",
    "DecodeError",
    "ConnectError",
]
