"""Text frames keep their UTF-8 check with websocket-client's pure-Python validator off.

The validator cost 41 % of a generator's CPU under broadcast load (py-spy), so
``open_websocket`` skips it; ``recv`` still decodes every text frame strictly. A real TCP
server on 127.0.0.1 does the handshake and sends one valid and one invalid text frame.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
from collections.abc import Iterator

import pytest

from mmload.load.pin import open_websocket
from mmload.load.tls import stdlib_context

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _handshake(conn: socket.socket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        request += conn.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def _text_frame(payload: bytes) -> bytes:
    return bytes([0x81, len(payload)]) + payload  # FIN + text, unmasked (server to client)


@pytest.fixture
def frames_server() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            _handshake(conn)
            conn.sendall(_text_frame('{"event":"hello","ünï":"cödé"}'.encode()))
            conn.sendall(_text_frame(b'{"bad":"\xff\xfe"}'))
            conn.recv(1024)  # until the client closes

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{listener.getsockname()[1]}/api/v4/websocket"
    listener.close()
    thread.join(timeout=30)


def test_valid_text_is_decoded_and_invalid_utf8_still_fails(frames_server: str) -> None:
    ws = open_websocket(frames_server, 10, stdlib_context)
    try:
        assert ws.recv() == '{"event":"hello","ünï":"cödé"}'
        with pytest.raises(UnicodeDecodeError):
            ws.recv()
    finally:
        ws.close()


def test_open_websocket_turns_the_pure_python_validator_off(frames_server: str) -> None:
    ws = open_websocket(frames_server, 10, stdlib_context)
    try:
        assert ws.frame_buffer.skip_utf8_validation is True
    finally:
        ws.close()
