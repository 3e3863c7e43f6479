"""Prometheus metrics: what each node, stream and group has counted, served
as Prometheus text (``pip install 'mosaik-net[metrics]'``).

    server = mosaik.metrics.serve(9464)   # http://127.0.0.1:9464/metrics
    ...
    server.close()

Nothing is counted in Python: a scrape reads the native core's counters
(the same ``stats``, ``refusals``, ``rejections`` and group status the
handles show) through :class:`MosaikCollector`, so datums cost nothing
extra. Networks are held weakly: a network that is closed or garbage
collected leaves the scrape, and so do its closed producers, consumers and
groups. Every metric is named ``mosaik_*`` and labelled with the node's
``peer_id`` and ``network`` (the network id), and ``stream`` (its name) or
``group`` (its id) where it applies.

To add these metrics to an existing registry instead,
``prometheus_client.REGISTRY.register(mosaik.metrics.MosaikCollector())``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from . import _checks
from ._handles import Live
from .errors import MosaikError
from .network import Network, open_networks

try:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "mosaik.metrics needs prometheus-client: pip install 'mosaik-net[metrics]'"
    ) from e

__all__ = ["MetricsServer", "MosaikCollector", "serve"]

_log = logging.getLogger("mosaik.metrics")

_NODE = ("peer_id", "network")
_STREAM = (*_NODE, "stream")
_GROUP = (*_NODE, "group")
_STATES = ("connecting", "connected")


class _Family:
    """One metric's samples by label values; samples with the same labels add
    up (two consumers of one stream on one node count as one)."""

    def __init__(self, kind: str, name: str, doc: str, labels: Sequence[str]) -> None:
        self._kind, self._name, self._doc, self._labels = kind, name, doc, list(labels)
        self._values: dict[tuple[str, ...], float] = {}

    def add(self, labels: Sequence[str], value: float) -> None:
        key = tuple(labels)
        self._values[key] = self._values.get(key, 0.0) + value

    def metric(self) -> Metric:
        cls = CounterMetricFamily if self._kind == "counter" else GaugeMetricFamily
        family = cls(self._name, self._doc, labels=self._labels)
        for key, value in self._values.items():
            family.add_metric(list(key), value)
        return family


def _families() -> dict[str, _Family]:
    specs = [
        ("gauge", "mosaik_catalog_peers", "Peers in the node's catalog, itself excluded.", _NODE),
        ("counter", "mosaik_discovery_rejections", "Discovery input refused, by reason.",
         (*_NODE, "reason")),
        ("counter", "mosaik_group_rejections", "Group bonds refused or ended, by reason.",
         (*_NODE, "reason")),
        ("counter", "mosaik_producer_sent_datums", "Datums a producer sent.", _STREAM),
        ("counter", "mosaik_producer_sent_bytes", "Encoded payload bytes a producer sent.",
         _STREAM),
        ("gauge", "mosaik_producer_subscriptions", "A producer's consumers, by channel state.",
         (*_STREAM, "state")),
        ("gauge", "mosaik_producer_online", "1 while the producer is online.", _STREAM),
        ("counter", "mosaik_producer_refusals",
         "Subscriptions a producer refused or ended, by reason.", (*_STREAM, "reason")),
        ("counter", "mosaik_consumer_received_datums", "Datums a consumer received.", _STREAM),
        ("counter", "mosaik_consumer_received_bytes",
         "Encoded payload bytes a consumer received.", _STREAM),
        ("counter", "mosaik_consumer_dropped_datums",
         "Datums a consumer's overflow policy dropped.", _STREAM),
        ("gauge", "mosaik_consumer_producers", "Producers a consumer follows, by channel state.",
         (*_STREAM, "state")),
        ("gauge", "mosaik_group_term", "The member's current term.", _GROUP),
        ("gauge", "mosaik_group_committed_index", "The member's committed index.", _GROUP),
        ("gauge", "mosaik_group_applied_index", "The last index applied on this member.",
         _GROUP),
        ("gauge", "mosaik_group_log_index", "The index of the member's last log entry.", _GROUP),
        ("gauge", "mosaik_group_log_term", "The term of the member's last log entry.", _GROUP),
        ("gauge", "mosaik_group_leader_known", "1 while the member knows a leader.", _GROUP),
        ("gauge", "mosaik_group_is_leader", "1 while the member leads.", _GROUP),
        ("gauge", "mosaik_group_online", "1 while a leader is known and the member in sync.",
         _GROUP),
        ("gauge", "mosaik_group_bonds", "Members this member is bonded with.", _GROUP),
    ]  # fmt: skip
    return {name: _Family(kind, name, doc, labels) for kind, name, doc, labels in specs}


def _collect_network(net: Network, f: dict[str, _Family]) -> None:
    node = (net.peer_id, net.network_id)
    f["mosaik_catalog_peers"].add(node, len(net.discovery.peers()))
    for reason, n in net.discovery.rejections.items():
        f["mosaik_discovery_rejections"].add((*node, reason), n)
    for reason, n in net.groups.rejections.items():
        f["mosaik_group_rejections"].add((*node, reason), n)
    for p in net.streams._open_producers():
        stream = (*node, p._name)
        stats = p.stats
        f["mosaik_producer_sent_datums"].add(stream, stats.datums)
        f["mosaik_producer_sent_bytes"].add(stream, stats.bytes)
        f["mosaik_producer_online"].add(stream, p.is_online)
        states: list[str] = [c.state for c in p.consumers]
        for state in _STATES:
            f["mosaik_producer_subscriptions"].add((*stream, state), states.count(state))
        for reason, n in p.refusals.items():
            f["mosaik_producer_refusals"].add((*stream, reason), n)
    for c in net.streams._open_consumers():
        stream = (*node, c._name)
        stats = c.stats
        f["mosaik_consumer_received_datums"].add(stream, stats.datums)
        f["mosaik_consumer_received_bytes"].add(stream, stats.bytes)
        f["mosaik_consumer_dropped_datums"].add(stream, c.dropped)
        states = [channel.state for channel in c.producers]
        for state in _STATES:
            f["mosaik_consumer_producers"].add((*stream, state), states.count(state))
    for g in net.groups._open_groups():
        group = (*node, g.group_id)
        status = g.status
        log_term, log_index = status.log_position
        f["mosaik_group_term"].add(group, status.term)
        f["mosaik_group_committed_index"].add(group, status.committed)
        f["mosaik_group_applied_index"].add(group, g._native.applied)
        f["mosaik_group_log_index"].add(group, log_index)
        f["mosaik_group_log_term"].add(group, log_term)
        f["mosaik_group_leader_known"].add(group, status.leader is not None)
        f["mosaik_group_is_leader"].add(group, status.is_leader)
        f["mosaik_group_online"].add(group, status.is_online)
        f["mosaik_group_bonds"].add(group, len(status.bonds))


class MosaikCollector(Collector):
    """Reads the counters of ``networks`` (held weakly) at each scrape; of
    every open network of this process when None."""

    def __init__(self, networks: Iterable[Network] | None = None) -> None:
        self._networks: Live[Network] | None = None
        if networks is not None:
            if isinstance(networks, Network) or not isinstance(networks, Iterable):
                raise TypeError(
                    "networks: expected an iterable of mosaik.Network or None, "
                    f"got {type(networks).__name__}"
                )
            self._networks = Live()
            for net in networks:
                if not isinstance(net, Network):
                    raise TypeError(
                        f"networks: expected mosaik.Network items, got {type(net).__name__}"
                    )
                self._networks.add(net)

    def _open(self) -> list[Network]:
        if self._networks is None:
            return open_networks()
        return [net for net in self._networks.items() if not net.is_closed]

    def describe(self) -> Iterable[Metric]:
        return []  # the names depend on nothing; no scrape at registration

    def collect(self) -> Iterator[Metric]:
        families = _families()
        for net in self._open():
            try:
                _collect_network(net, families)
            except MosaikError as e:  # closed while being read: it leaves the scrape
                _log.debug("metrics: skipped network %s: %s", net.peer_id[:10], e)
        for family in families.values():
            yield family.metric()


class MetricsServer:
    """A running metrics endpoint; ``close()`` (or leaving ``with``) stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._closed = False

    @property
    def addr(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when ``serve`` was given 0)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stops serving and frees the port. Idempotent."""
        if not self._closed:
            self._closed = True
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}{' closed' if self._closed else ''}>"


def serve(
    port: int, addr: str = "127.0.0.1", networks: Iterable[Network] | None = None
) -> MetricsServer:
    """Serves the metrics of ``networks`` (every open network of this process
    when None) as Prometheus text at ``http://addr:port/metrics``, from a
    daemon thread. ``port`` 0 picks a free port (``server.port``). Loopback
    by default: pass ``addr="0.0.0.0"`` to let other machines scrape it.
    """
    port = _checks.check_port("port", port)
    addr = _checks.check_str("addr", addr)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MosaikCollector(networks))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)
