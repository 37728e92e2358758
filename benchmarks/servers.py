"""Servers the harness starts: SecantusDB and the replay server (each its own process)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class SecantusServer:
    """``secantusd-py`` on a free port with a private temporary storage directory."""

    def __init__(self) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.dir = ""
        self.port = 0
        self.uri = ""

    def start(self, timeout: float = 30.0) -> "SecantusServer":
        exe = shutil.which("secantusd-py", path=os.path.dirname(sys.executable)) or shutil.which(
            "secantusd-py")
        if exe is None:
            raise RuntimeError("secantusd-py not found (pip install secantusdb)")
        self.dir = tempfile.mkdtemp(prefix="amongo-bench-secantus-")
        self.port = free_port()
        self._log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [exe, "--host", "127.0.0.1", "--port", str(self.port), "--storage-path",
             os.path.join(self.dir, "data"), "--log-level", "WARNING"],
            stdout=self._log, stderr=subprocess.STDOUT)
        self.uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"secantusd-py exited: see {self.dir}/server.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("secantusd-py did not start listening")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, 20.0)  # it takes a few seconds after SIGTERM
            self.proc = None
            self._log.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = ""


class ReplayProcess:
    """``python -m benchmarks.replay serve`` in its own process (uvloop when installed)."""

    def __init__(self, store: Optional[str] = None, log_commands: bool = False) -> None:
        self.store = store
        self.log_commands = log_commands  # serve --log-commands (first request of each name)
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.uri = ""

    def start(self, timeout: float = 30.0) -> "ReplayProcess":
        cmd: List[str] = [sys.executable, "-m", "benchmarks.replay", "serve"]
        cmd += ["--store", self.store] if self.store else ["--synthetic"]
        if self.log_commands:
            cmd.append("--log-commands")
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE,
                                     stderr=None, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = self.proc.stdout.readline()
        if not line.startswith("REPLAY_PORT") or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"replay server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.uri = f"mongodb://127.0.0.1:{self.port}/?directConnection=true"
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, 5.0)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None

    def __enter__(self) -> "ReplayProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
