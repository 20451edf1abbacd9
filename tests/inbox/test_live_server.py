"""Against a real `seamline serve --workers 2` on PostgreSQL: agent consoles connected to
different worker processes all get the notices of messages posted to any worker (LISTEN/NOTIFY),
and concurrent routing in both processes never overfills an agent."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets

from seamline.devtools.serve import ServerProcess

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def server(database, tmp_path):
    if database.is_sqlite:
        pytest.skip("real-time notices cross processes through PostgreSQL")
    process = ServerProcess(database.url, workers=2, log_path=tmp_path / "server.log",
                            env={"SEAMLINE_INBOX_SURVEY": "none"}).start()
    yield process
    process.stop()


async def _scenario(base: str, admin: dict[str, str], write_key: str) -> tuple:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        agents = []
        for n in range(4):
            made = (await http.post("/v1/inbox/agents", json={"name": f"Agent {n}", "email": f"a{n}@shop.example", "capacity": 3,
                                                               "create_key": True}, headers=admin)).json()
            agents.append(made)
        ws_base = base.replace("http://", "ws://")
        # Several connections per agent: the kernel spreads them over both workers.
        sockets = {a["id"]: [await websockets.connect(f"{ws_base}/v1/inbox/ws?key={a['api_key']}") for _ in range(3)] for a in agents}
        for conns in sockets.values():
            for ws in conns:
                assert json.loads(await ws.recv())["type"] == "ready"
        for a in agents:
            await http.post(f"/v1/inbox/agents/{a['id']}/status", json={"status": "online"}, headers=admin)

        async def visitor(n: int) -> str:
            session = (await http.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": str(uuid.uuid4())})).json()
            token = f"token-{n}-{uuid.uuid4().hex[:6]}"
            sent = await http.post("/v1/webchat/messages", json={"text": token}, headers={"Authorization": f"Bearer {session['token']}"})
            assert sent.status_code == 201, sent.text
            return token

        tokens = await asyncio.gather(*(visitor(n) for n in range(16)))  # 16 conversations for 4 × 3 capacity

        seen: dict[int, set[str]] = {a["id"]: set() for a in agents}

        async def listen(agent_id: int, ws) -> None:  # noqa: ANN001
            try:
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=3))
                    if frame["type"] == "message":
                        seen[agent_id].add((id(ws), frame["message"]["text"]))
            except (TimeoutError, websockets.ConnectionClosed):
                pass

        await asyncio.gather(*(listen(agent_id, ws) for agent_id, conns in sockets.items() for ws in conns))
        for conns in sockets.values():
            for ws in conns:
                await ws.close()
        listed = (await http.get("/v1/inbox/agents", headers=admin)).json()["items"]
        by_socket = {agent_id: {text for _, text in pairs} for agent_id, pairs in seen.items()}
        per_connection = {agent_id: {(sid, text) for sid, text in pairs} for agent_id, pairs in seen.items()}
        return by_socket, listed, tokens, per_connection, {a: [id(ws) for ws in conns] for a, conns in sockets.items()}


def test_notices_reach_consoles_on_every_worker_and_capacity_holds(server, database, admin_headers, write_key):
    by_agent, agents, tokens, per_connection, socket_ids = asyncio.run(_scenario(server.base_url, admin_headers, write_key))
    assert all(a["load"] <= a["capacity"] for a in agents), agents
    assert sum(a["load"] for a in agents) == 12  # every slot filled, four conversations wait
    delivered = set().union(*by_agent.values())
    assert delivered <= set(tokens)
    # Each of an agent's three connections (whichever worker holds it) saw the same messages.
    for agent_id, ids in socket_ids.items():
        per_socket = [{text for sid, text in per_connection[agent_id] if sid == socket} for socket in ids]
        assert per_socket[0] == per_socket[1] == per_socket[2]
    assert delivered == set(tokens)
