"""Serve the feed with uvicorn on a background thread (for ``satwatch demo`` and tests) or in the foreground."""

from __future__ import annotations

import socket
import threading
import time
from types import FrameType

import uvicorn
from starlette.applications import Starlette


class _Server(uvicorn.Server):
    """Ends the app's event streams as soon as shutdown begins, instead of after the graceful timeout."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event | None) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stopping is not None:
            self.stopping.set()
        super().handle_exit(sig, frame)


class FeedServer:
    """uvicorn on a socket bound up front (port 0 picks a free one), so ``url`` is known before it serves."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)  # connections wait in the backlog until uvicorn serves them
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on", access_log=False)
        self.stopping: threading.Event | None = getattr(app.state, "stopping", None)
        self.server = _Server(config, self.stopping)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve(self) -> None:
        """Serve in this thread until stopped (Ctrl-C stops it)."""
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 15.0) -> FeedServer:
        self._thread = threading.Thread(target=self.serve, name="feed", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the feed did not start on {self.url}")
            time.sleep(0.05)
        return self

    def request_stop(self) -> None:
        """Ask a server running in another thread (``serve``) to finish, without waiting for it."""
        if self.stopping is not None:
            self.stopping.set()
        self.server.should_exit = True

    def stop(self) -> None:
        if self.stopping is not None:
            self.stopping.set()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()
