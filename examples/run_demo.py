"""Run examples/quickstart.py against a throwaway local SecantusDB replica set (``make demo``).

Starts ``secantusd-py`` on a free port in a temporary directory, runs the quickstart with
``MONGODB_URI`` pointing at it, and stops the server (and removes its directory) even when the
quickstart fails. With ``MONGODB_URI`` already set, runs the quickstart against that instead.
Exits with the quickstart's exit status.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import Server  # noqa: E402  (tests/servers.py: the test suite's server launcher)

QUICKSTART = ROOT / "examples" / "quickstart.py"


def run(uri: str) -> int:
    env = dict(os.environ, MONGODB_URI=uri)
    return subprocess.call([sys.executable, str(QUICKSTART)], env=env, cwd=ROOT)


def main() -> int:
    if os.environ.get("MONGODB_URI"):
        print(f"demo: using MONGODB_URI={os.environ['MONGODB_URI']}", flush=True)
        return run(os.environ["MONGODB_URI"])
    srv = Server("secantus")
    try:
        srv.start()
        print(f"demo: SecantusDB replica set at {srv.uri} (log: {srv.log_path})", flush=True)
        rc = run(srv.uri)
        if rc != 0:
            print(f"demo: quickstart exited with status {rc}; server log tail:\n{srv.log_tail(20)}",
                  file=sys.stderr, flush=True)
        return rc
    finally:
        srv.stop()
        print("demo: server stopped", flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
