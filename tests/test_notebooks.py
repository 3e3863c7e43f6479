"""Notebooks: `tests/notebooks/tour.ipynb` runs in a real Jupyter kernel
(ipykernel, driven by nbclient) with top-level `await`, and what it shows
is read from the executed notebook's outputs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

import mosaik

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

TOUR = Path(__file__).parent / "notebooks" / "tour.ipynb"


def run_notebook(path: Path) -> Any:
    nb = nbformat.read(path, as_version=4)
    # The kernel imports the mosaik this test imports (the installed wheel,
    # or a source tree on PYTHONPATH).
    package_root = str(Path(mosaik.__file__).parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    client = nbclient.NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=env)
    return nb


def outputs(nb: Any, cell_id: str) -> list[Any]:
    (cell,) = [c for c in nb.cells if c.get("id") == cell_id]
    return list(cell.outputs)


def html_of(nb: Any, cell_id: str) -> str:
    """The `text/html` the cell's value showed; also checks its one-line text form."""
    (result,) = [o for o in outputs(nb, cell_id) if o.output_type == "execute_result"]
    assert result.data["text/plain"].startswith("<") or "PeerInfo" in result.data["text/plain"]
    html: str = result.data["text/html"]
    return html


def printed(nb: Any, cell_id: str) -> str:
    return "".join(o.text for o in outputs(nb, cell_id) if o.output_type == "stream")


@pytest.fixture(scope="module")
def tour() -> Any:
    return run_notebook(TOUR)


@pytest.mark.timeout(180)
def test_the_tour_runs_with_top_level_await_and_shows_html(tour: Any) -> None:
    errors = [o for c in tour.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in errors if o.output_type == "error"]
    a_id, b_id = printed(tour, "start").split()
    assert re.fullmatch("[0-9a-f]{64}", a_id) and re.fullmatch("[0-9a-f]{64}", b_id)

    network = html_of(tour, "network")
    assert a_id in network and "<table>" in network
    assert f'title="{b_id}"' in network  # b in its peer table
    assert "api" in network  # its own tag, by name
    assert ">open<" in network

    peers = html_of(tour, "peers")
    assert f'title="{a_id}"' in peers and b_id not in peers  # this node excluded
    assert "1 peer<" in peers
    assert "<th>tags</th>" in peers and "<th>streams</th>" in peers

    producer = html_of(tour, "producer")
    assert "Producer sensors" in producer and ">json<" in producer
    assert "3 datums" in producer and f'title="{b_id}"' in producer  # its consumer
    consumer = html_of(tour, "consumer")
    assert "Consumer sensors" in consumer and "3 datums" in consumer
    assert f'title="{a_id}"' in consumer  # its producer

    leader = printed(tour, "group").strip()
    assert leader in (a_id, b_id)
    member = html_of(tour, "member")
    assert f'title="{leader}"' in member
    assert ("(this node)" in member) == (leader == b_id)
    assert re.search(r"committed</th><td[^>]*>1</td>", member)  # the one command

    again = html_of(tour, "network-again")
    assert ">sensors<" in again and "producers</b> (1)" in again and "groups</b> (1)" in again

    assert ">closed<" in html_of(tour, "closed")


async def test_names_are_escaped_and_peer_lists_stay_lists() -> None:
    hostile = "<script>alert(1)</script>"
    async with (
        mosaik.Network.create("mosaik-tests", local=True, tags=(hostile,)) as a,
        mosaik.Network.create("mosaik-tests", local=True, bootstrap=[a.address]) as b,
    ):
        await b.discovery.add_tags(hostile)
        peers = await a.discovery.wait_for_peers(1, timeout=30)
        assert type(peers) is mosaik.PeerList and isinstance(peers, list)
        assert peers == list(peers) and peers[0].peer_id == b.peer_id
        async with a.streams.producer(hostile) as p, b.streams.consumer(hostile) as c:
            shown = [a._repr_html_(), p._repr_html_(), c._repr_html_(), peers._repr_html_()]
        for html in shown:
            assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown[0]  # a's tag, by name
