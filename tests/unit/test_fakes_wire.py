"""The fakes answer on the wire like the uvicorn servers they stand for.

One write per response (head and body together) on a TCP_NODELAY socket, one write per event
of a stream; otherwise a client waits for a delayed ACK and a benchmark measures 40 ms of
nothing (see tests/fakes/_fakehttp.py).
"""

import json
import os
import socket
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from openai_backend_fake import FakeOpenAIBackend  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture
def writes(monkeypatch):
    """Every send of the servers in this process: (TCP_NODELAY of the socket, bytes sent)."""
    seen = []
    lock = threading.Lock()
    original = socket.SocketIO.write

    def write(self, data):
        nodelay = self._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        with lock:
            seen.append((nodelay, bytes(data)))
        return original(self, data)

    monkeypatch.setattr(socket.SocketIO, "write", write)
    return seen


def _exchange(url, body):
    """Send one POST with a raw socket (no SocketIO on this side) and read the whole answer."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    data = json.dumps(body).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_a_response_leaves_in_one_write_with_nodelay(writes):
    with FakeOpenAIBackend("wire") as backend:
        answer = _exchange(backend.url, {"model": "m", "messages": []})
    assert len(writes) == 1, [w[1][:40] for w in writes]
    nodelay, data = writes[0]
    assert nodelay == 1
    assert data == answer
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Content-Length: %d" % len(body) in head
    assert json.loads(body)["choices"][0]["message"]["content"] == "hello from wire (m)"


def test_a_stream_sends_one_chunk_per_event(writes):
    with FakeOpenAIBackend("wire", tokens=3) as backend:
        answer = _exchange(backend.url, {"model": "m", "stream": True})
    events = [w[1] for w in writes]
    # head + first event, two more tokens, the finish event, [DONE], the last-chunk marker
    # (uvicorn also writes the empty last chunk on its own)
    assert len(events) == 6, events
    assert all(w[0] == 1 for w in writes)
    assert events[0].startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in events[0]
    assert b"".join(events) == answer
    assert answer.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    contents = [json.loads(line[6:])["choices"][0]["delta"].get("content")
                for line in answer.split(b"\n") if line.startswith(b"data: {")]
    assert contents == ["tok ", "tok ", "tok", None]
