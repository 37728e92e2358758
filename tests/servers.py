"""Start and stop real servers for the integration tests.

Every server runs on a free loopback port in its own temporary directory (data, log, certs), and
is considered ready only once the port accepts connections *and* a hand-built OP_MSG ``hello``
gets an ``ok: 1`` reply. This module deliberately does not use the amongo client (it is the
thing under test) nor pymongo's client except to provision users.

Kinds (see :data:`KINDS`):

``secantus``             SecantusDB as a one-node replica set named ``secantus`` (test commands on)
``secantus-standalone``  SecantusDB ``--standalone`` (test commands on)
``secantus-auth``        SecantusDB replica set with ``--auth``; SCRAM-SHA-256 users in :data:`AUTH_USERS`
``secantus-tls``         SecantusDB replica set over TLS (self-signed CA generated at start)
``nx``                   nx-27017 (NeoSQLite), a standalone

Usage::

    with start_server("secantus") as srv:
        print(srv.uri, srv.direct_uri, srv.host, srv.port)

A server is stopped with SIGTERM, then SIGKILL after a timeout; its temporary directory is always
removed. Servers are started in their own process group with a parent-death signal, and an
``atexit`` hook stops any that are still running, so an interrupted test session leaves nothing
behind.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Optional

__all__ = [
    "AUTH_USERS",
    "KINDS",
    "Deployment",
    "FEATURES",
    "KIND_LACKS",
    "Server",
    "ServerStartError",
    "external_deployment",
    "require",
    "free_port",
    "hello",
    "make_tls_files",
    "start_server",
    "stop_all",
]

#: SCRAM users created on ``secantus-auth`` servers: name -> (password, auth source, roles).
#: SecantusDB supports SCRAM-SHA-256 only.
AUTH_USERS: dict[str, tuple[str, str, list[Any]]] = {
    "root": ("rootpw", "admin", ["root"]),
    "alice": ("alice-pw", "amongo_auth", [{"role": "readWrite", "db": "amongo_auth"}]),
    # A password that SASLprep changes (U+2168 ROMAN NUMERAL NINE -> "IX").
    "saslprep": ("p\u2168ss", "admin", ["root"]),
}
ROOT_USER = "root"

KINDS = ("secantus", "secantus-standalone", "secantus-auth", "secantus-tls", "nx")

STARTUP_TIMEOUT = float(os.environ.get("AMONGO_TEST_SERVER_STARTUP_TIMEOUT", "60"))
STOP_TIMEOUT = 20.0

_BIN_DIR = Path(sys.executable).parent


class ServerStartError(RuntimeError):
    """A server did not become ready; the message ends with the tail of its log."""


# --------------------------------------------------------------------------------------------
# helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the caller retries on a bind race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _executable(name: str) -> str:
    """Find a console script next to the running interpreter (the venv), else on PATH."""
    cand = _BIN_DIR / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if found:
        return found
    raise ServerStartError(f"{name!r} not found next to {sys.executable} nor on PATH")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _bson_hello() -> bytes:
    """``{hello: 1, $db: "admin"}`` encoded by hand (no bson import needed)."""
    body = b"\x10hello\x00" + struct.pack("<i", 1)
    body += b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
    return struct.pack("<i", 4 + len(body) + 1) + body + b"\x00"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return bytes(buf)


def hello(
    host: str,
    port: int,
    *,
    timeout: float = 5.0,
    tls_ca_file: Optional[str] = None,
) -> dict:
    """Send a raw OP_MSG ``hello`` and return the decoded reply document.

    Raises ``OSError``/``ConnectionError`` when the server does not answer properly.
    """
    doc = _bson_hello()
    payload = struct.pack("<I", 0) + b"\x00" + doc  # flagBits, section kind 0
    header = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013)
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        sock: socket.socket = raw
        if tls_ca_file:
            ctx = ssl.create_default_context(cafile=tls_ca_file)
            sock = ctx.wrap_socket(raw, server_hostname=host)
        sock.sendall(header + payload)
        length, _req, response_to, opcode = struct.unpack("<iiii", _recv_exact(sock, 16))
        body = _recv_exact(sock, length - 16)
    finally:
        raw.close()
    if opcode != 2013 or response_to != 1:
        raise ConnectionError(f"unexpected reply header opcode={opcode} responseTo={response_to}")
    if body[4] != 0:
        raise ConnectionError("reply does not start with a kind-0 section")
    import bson  # pymongo's bson: only used to decode the reply

    reply = bson.decode(body[5:])
    if reply.get("ok") != 1:
        raise ConnectionError(f"hello failed: {reply!r}")
    return reply


def _preexec() -> None:  # pragma: no cover - runs in the child
    """Ask the kernel to SIGTERM the server if the test process dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# --------------------------------------------------------------------------------------------
# TLS material


def make_tls_files(directory: Path, hostnames: tuple[str, ...] = ("localhost",),
                   ips: tuple[str, ...] = ("127.0.0.1", "::1")) -> dict[str, str]:
    """Create a self-signed CA, a server cert and a client cert in *directory*.

    Uses the ``cryptography`` package when importable, else the ``openssl`` CLI. Returns paths:
    ``ca`` (CA cert PEM), ``server_cert``, ``server_key``, ``server_pem`` (cert+key),
    ``client_pem`` (client cert+key, for tlsCertificateKeyFile), and ``method``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            raise ServerStartError(
                "cannot generate TLS certificates: neither the 'cryptography' package nor the "
                "'openssl' CLI is available"
            ) from None
        return _tls_with_openssl(directory, hostnames, ips)
    return _tls_with_cryptography(directory, hostnames, ips)


def _tls_with_cryptography(d: Path, hostnames: tuple[str, ...], ips: tuple[str, ...]) -> dict[str, str]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "amongo tests"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key_pem(key: Any) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(name("amongo test CA")).issuer_name(name("amongo test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, eku: Any, san: Optional[list[Any]]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    san = [x509.DNSName(h) for h in hostnames] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    s_cert, s_key = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, san)
    c_cert, c_key = leaf("amongo-client", ExtendedKeyUsageOID.CLIENT_AUTH, None)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files = {
        "ca": ca_pem, "server_cert": s_cert, "server_key": s_key,
        "server_pem": s_cert + s_key, "client_pem": c_cert + c_key,
    }
    out = {}
    for k, v in files.items():
        p = d / f"{k}.pem"
        p.write_bytes(v)
        out[k] = str(p)
    out["method"] = "cryptography"
    return out


def _tls_with_openssl(d: Path, hostnames: tuple[str, ...], ips: tuple[str, ...]) -> dict[str, str]:
    def run(*args: str) -> None:
        proc = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ServerStartError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")

    san = ",".join([f"DNS:{h}" for h in hostnames] + [f"IP:{i}" for i in ips])
    (d / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={san}\n"
    )
    (d / "client.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca_key.pem", "-out", "ca.pem", "-days", "30",
        "-subj", "/O=amongo tests/CN=amongo test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for who, cn in (("server", "localhost"), ("client", "amongo-client")):
        run("req", "-new", *ec, "-keyout", f"{who}_key.pem", "-out", f"{who}.csr",
            "-subj", f"/O=amongo tests/CN={cn}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca_key.pem",
            "-CAcreateserial", "-out", f"{who}_cert.pem", "-days", "30", "-sha256",
            "-extfile", f"{who}.ext")
    for who in ("server", "client"):
        (d / f"{who}_pem.pem").write_bytes((d / f"{who}_cert.pem").read_bytes() + (d / f"{who}_key.pem").read_bytes())
    return {
        "ca": str(d / "ca.pem"), "server_cert": str(d / "server_cert.pem"),
        "server_key": str(d / "server_key.pem"), "server_pem": str(d / "server_pem.pem"),
        "client_pem": str(d / "client_pem.pem"), "method": "openssl",
    }


# --------------------------------------------------------------------------------------------
# servers

_LIVE: "set[Server]" = set()
_LIVE_LOCK = threading.Lock()


class Server:
    """One server process of *kind* (one of :data:`KINDS`).

    Attributes once started: ``name`` (the kind), ``host``, ``port``, ``uri`` (the deployment
    URI: ``replicaSet=secantus`` for replica-set kinds), ``direct_uri`` (``directConnection=true``),
    ``tmpdir``, ``log_path``, ``hello`` (the readiness hello reply), ``is_replica_set``,
    and for ``secantus-auth``: ``username``/``password``/``auth_source`` (the root user) and
    ``users`` (:data:`AUTH_USERS`); for ``secantus-tls``: ``tls_ca_file``,
    ``tls_client_pem`` (client cert+key), ``tls_method`` ("cryptography" or "openssl").
    """

    def __init__(self, kind: str, host: str = "127.0.0.1") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown server kind {kind!r}; expected one of {KINDS}")
        self.name = kind
        self.kind = kind
        self.host = host
        self.port = 0
        self.tmpdir: Optional[Path] = None
        self.log_path: Optional[Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self.hello: dict = {}
        self.is_replica_set = kind in ("secantus", "secantus-auth", "secantus-tls")
        self.username: Optional[str] = None
        self.password: Optional[str] = None
        self.auth_source: Optional[str] = None
        self.users: dict[str, tuple[str, str, list[Any]]] = {}
        self.tls_ca_file: Optional[str] = None
        self.tls_client_pem: Optional[str] = None
        self.tls_method: Optional[str] = None
        self._tls: dict[str, str] = {}
        self._log_file: Any = None
        self._argv_last: list[str] = []

    # -- URIs ---------------------------------------------------------------------------------

    def _query(self, direct: bool) -> str:
        opts: list[tuple[str, str]] = []
        if direct:
            opts.append(("directConnection", "true"))
        elif self.is_replica_set:
            opts.append(("replicaSet", "secantus"))
        if self.tls_ca_file:
            opts += [("tls", "true"), ("tlsCAFile", self.tls_ca_file)]
        if self.username:
            opts.append(("authSource", self.auth_source or "admin"))
        return urllib.parse.urlencode(opts, safe="/")

    def _uri(self, direct: bool) -> str:
        cred = ""
        if self.username:
            cred = (urllib.parse.quote_plus(self.username) + ":"
                    + urllib.parse.quote_plus(self.password or "") + "@")
        q = self._query(direct)
        return f"mongodb://{cred}{self.address_str}/" + (f"?{q}" if q else "")

    @property
    def address_str(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def uri(self) -> str:
        return self._uri(direct=False)

    @property
    def direct_uri(self) -> str:
        return self._uri(direct=True)

    @property
    def uri_no_auth(self) -> str:
        """The deployment URI without credentials (to test unauthenticated access)."""
        saved = self.username
        self.username = None
        try:
            return self.uri
        finally:
            self.username = saved

    def __repr__(self) -> str:
        return f"<Server {self.name} {self.address_str} pid={self.proc.pid if self.proc else None}>"

    # -- process control ----------------------------------------------------------------------

    def _argv(self, *, auth: bool, data: Path) -> list[str]:
        if self.kind == "nx":
            return [_executable("nx-27017"), "--host", self.host, "-p", str(self.port),
                    "--data-dir", str(data), "--log-file", str(self.tmpdir / "nx-internal.log"),
                    "--pid-file", str(self.tmpdir / "nx.pid")]
        argv = [_executable("secantusd-py"), "--host", self.host, "--port", str(self.port),
                "--storage-path", str(data), "--enable-test-commands"]
        if self.kind == "secantus-standalone":
            argv.append("--standalone")
        if auth:
            argv.append("--auth")
        if self.kind == "secantus-tls":
            argv += ["--tls-cert-file", self._tls["server_cert"], "--tls-key-file", self._tls["server_key"],
                     "--tls-ca-file", self._tls["ca"]]
        return argv

    def _spawn(self, argv: list[str]) -> None:
        assert self.tmpdir is not None and self.log_path is not None
        self._log_file = open(self.log_path, "ab")
        self._argv_last = list(argv)
        self._log_file.write(f"$ {' '.join(argv)}\n".encode())
        self._log_file.flush()
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            argv, cwd=self.tmpdir, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
            # The parent-death signal fires when the spawning *thread* exits: main thread only.
            preexec_fn=_preexec if (sys.platform.startswith("linux")
                                    and threading.current_thread() is threading.main_thread()) else None,
        )
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last_err: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self.proc.returncode} during startup "
                    f"(port {self.port}); log tail:\n{_tail(self.log_path)}")
            try:
                self.hello = hello(self.host, self.port, timeout=2.0, tls_ca_file=self.tls_ca_file)
                return
            except (OSError, ConnectionError, ssl.SSLError, ValueError) as exc:
                last_err = exc
                time.sleep(0.1)
        raise ServerStartError(
            f"{self.name} on port {self.port} not ready after {timeout:.0f}s "
            f"(last error: {last_err!r}); log tail:\n{_tail(self.log_path)}")

    def _terminate(self, timeout: float = STOP_TIMEOUT) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                proc.wait(10)
        # Reap stragglers in the group (SIGTERM may leave children behind).
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _start_once(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"amongo-{self.name}-"))
        self.log_path = self.tmpdir / "server.log"
        data = self.tmpdir / "data"
        self.port = free_port(self.host)
        if self.kind == "secantus-tls":
            self._tls = make_tls_files(self.tmpdir / "tls")
            self.tls_method = self._tls["method"]
        if self.kind == "secantus-auth":
            # SecantusDB provisions users only without --auth: start, createUser, restart.
            self._spawn(self._argv(auth=False, data=data))
            self._wait_ready(STARTUP_TIMEOUT)
            self._create_users()
            self._terminate()
            self._spawn(self._argv(auth=True, data=data))
            self._wait_ready(STARTUP_TIMEOUT)
            self.users = dict(AUTH_USERS)
            pw, src, _roles = AUTH_USERS[ROOT_USER]
            self.username, self.password, self.auth_source = ROOT_USER, pw, src
            return
        if self.kind == "secantus-tls":
            self.tls_ca_file = self._tls["ca"]
            self.tls_client_pem = self._tls["client_pem"]
        self._spawn(self._argv(auth=False, data=data))
        self._wait_ready(STARTUP_TIMEOUT)

    def _create_users(self) -> None:
        from pymongo import MongoClient

        client: Any = MongoClient(self.host, self.port, directConnection=True, serverSelectionTimeoutMS=10000)
        try:
            for user, (pw, db, roles) in AUTH_USERS.items():
                client[db].command("createUser", user, pwd=pw, roles=roles)
        finally:
            client.close()

    def start(self, attempts: int = 3) -> "Server":
        """Start the server (retrying on a new port if it fails, e.g. on a port race)."""
        err: Optional[BaseException] = None
        for _ in range(attempts):
            try:
                self._start_once()
                return self
            except ServerStartError as exc:
                err = exc
                self.stop()
            except BaseException:
                self.stop()
                raise
        assert err is not None
        raise err

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL after :data:`STOP_TIMEOUT`; remove the temp dir. Idempotent."""
        try:
            self._terminate()
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None

    def restart(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM; SIGKILL with *kill*) and start it again on the same port
        with the same data directory (used by the soak campaign)."""
        if not self._argv_last:
            raise ServerStartError(f"{self.name} was never started")
        proc = self.proc
        if kill and proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._terminate()
        err: Optional[BaseException] = None
        for _ in range(20):  # the port may linger for a moment
            try:
                self._spawn(self._argv_last)
                self._wait_ready(STARTUP_TIMEOUT)
                return
            except ServerStartError as exc:
                err = exc
                self._terminate()
                time.sleep(0.5)
        assert err is not None
        raise err

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines) if self.log_path else ""

    def __enter__(self) -> "Server":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(kind: str, host: str = "127.0.0.1") -> Server:
    """Start a server of *kind* and return it (use as a context manager to stop it)."""
    return Server(kind, host).start()


def stop_all() -> None:
    """Stop every server this process started that is still running."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    # SIGTERM all first so the (slow) SecantusDB shutdowns overlap.
    for srv in live:
        if srv.proc is not None and srv.proc.poll() is None:
            try:
                os.killpg(srv.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
    for srv in live:
        srv.stop()


atexit.register(stop_all)


def _install_sigterm_handler() -> None:
    """Turn SIGTERM of the test process into KeyboardInterrupt: pytest ends the session and
    runs fixture teardown (a plain script runs atexit)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            def _on_term(signum: int, frame: Any) -> None:
                stop_all()
                raise KeyboardInterrupt(f"signal {signum}")

            signal.signal(signal.SIGTERM, _on_term)
    except (ValueError, OSError):
        pass


_install_sigterm_handler()


if __name__ == "__main__":  # pragma: no cover - manual use: python tests/servers.py KIND
    kind = sys.argv[1] if len(sys.argv) > 1 else "secantus"
    with start_server(kind) as srv:
        print(srv.uri, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


# --------------------------------------------------------------------------------------------
# deployments and features (used by tests/integration/conftest.py)

#: Features a test can require (``@pytest.mark.requires("transactions")`` or :func:`require`).
FEATURES = frozenset({
    "replica_set",            # a replica set (primary with setName)
    "standalone",             # a standalone server (no setName)
    "transactions",           # multi-document transactions with isolation
    "change_streams",         # $changeStream
    "fail_command",           # configureFailPoint failCommand (test commands enabled and honoured)
    "sessions",               # logical sessions (lsid accepted)
    "retryable_writes",       # txnNumber on writes outside transactions
    "causal_consistency",     # operationTime / $clusterTime gossip
    "unacknowledged_writes",  # OP_MSG moreToCome requests get no reply
    "collation",              # collation honoured by queries
    "command_not_found",      # unknown commands fail with CommandNotFound (59)
    "auth",                   # SCRAM authentication enforced; credentials in the URI
    "tls",                    # TLS
})

_NX = "nx-27017"
_NX_LACKS = {
    "replica_set": f"{_NX} is a standalone",
    "transactions": f"{_NX} is a standalone; its 'transactions' are server-global, not isolated",
    "change_streams": f"{_NX} is a standalone (its $changeStream is non-standard)",
    "fail_command": f"{_NX} accepts configureFailPoint but ignores it",
    "retryable_writes": f"{_NX} is a standalone (no retryable writes)",
    "causal_consistency": f"{_NX} sends no operationTime/$clusterTime",
    "unacknowledged_writes": f"{_NX} replies to moreToCome (w:0) requests, desynchronising the connection",
    "collation": f"{_NX} ignores collation",
    "command_not_found": f"{_NX} answers unknown commands with ok:1",
    "auth": f"{_NX} has no authentication",
    "tls": f"{_NX} has no TLS",
}
_SECANTUS_STANDALONE_LACKS = {
    "replica_set": "SecantusDB --standalone is a standalone",
    "transactions": "SecantusDB --standalone is a standalone (no transactions)",
    "change_streams": "SecantusDB --standalone is a standalone (no change streams)",
    "retryable_writes": "SecantusDB --standalone is a standalone (no retryable writes)",
}
_COMMON_SECANTUS = {"auth": "this SecantusDB server runs without --auth", "tls": "this SecantusDB server runs without TLS"}

KIND_LACKS: dict[str, dict[str, str]] = {
    "secantus": {"standalone": "SecantusDB (replica-set mode) is not a standalone", **_COMMON_SECANTUS},
    "secantus-standalone": {**_SECANTUS_STANDALONE_LACKS, **_COMMON_SECANTUS},
    "secantus-auth": {"standalone": "SecantusDB (replica-set mode) is not a standalone",
                      "tls": _COMMON_SECANTUS["tls"]},
    "secantus-tls": {"standalone": "SecantusDB (replica-set mode) is not a standalone",
                     "auth": _COMMON_SECANTUS["auth"]},
    "nx": dict(_NX_LACKS),
}


_SERVER_ATTRS = frozenset({"username", "password", "auth_source", "users", "tls_ca_file", "tls_client_pem",
                           "tls_method", "log_path", "tmpdir", "hello", "is_replica_set", "uri_no_auth",
                           "address_str", "proc"})


class Deployment:
    """What a fixture yields: a started :class:`Server` or the ``MONGODB_URI`` deployment.

    ``name``, ``kind``, ``uri``, ``direct_uri``, ``host``, ``port``, ``address``, ``features``,
    ``lacks`` (feature -> reason); other attributes (``username``, ``password``, ``users``,
    ``tls_ca_file``, ``tls_client_pem``, ``log_path`` ...) come from the server (``None`` when
    unknown).
    """

    def __init__(self, name: str, uri: str, direct_uri: str, host: str, port: int,
                 lacks: dict[str, str], server: Optional[Server] = None, **extra: Any) -> None:
        self.name = name
        self.kind = name
        self.uri = uri
        self.direct_uri = direct_uri
        self.host = host
        self.port = port
        self.lacks = dict(lacks)
        self.features = frozenset(FEATURES - set(lacks))
        self.server = server
        self._extra = extra

    @classmethod
    def from_server(cls, srv: Server) -> "Deployment":
        return cls(srv.name, srv.uri, srv.direct_uri, srv.host, srv.port, KIND_LACKS[srv.name], srv)

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__"):
            raise AttributeError(item)
        extra = self.__dict__.get("_extra", {})
        if item in extra:
            return extra[item]
        srv = self.__dict__.get("server")
        if srv is not None:
            return getattr(srv, item)
        if item in _SERVER_ATTRS:
            return None  # the MONGODB_URI deployment: unknown
        raise AttributeError(item)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def supports(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise ValueError(f"unknown feature {feature!r}; known: {sorted(FEATURES)}")
        return feature in self.features

    def missing(self, *features: str) -> Optional[str]:
        """The reason the first unsupported feature is missing, or ``None``."""
        for f in features:
            if not self.supports(f):
                return f"{self.name}: needs {f}: {self.lacks.get(f) or 'not supported'}"
        return None

    def pymongo_client(self, direct: bool = False, **kwargs: Any) -> Any:
        """A pymongo ``MongoClient`` for seeding data/readiness checks (never for amongo tests)."""
        from pymongo import MongoClient

        if self.tls_client_pem and "tlsCertificateKeyFile" not in kwargs:
            kwargs["tlsCertificateKeyFile"] = self.tls_client_pem
        kwargs.setdefault("serverSelectionTimeoutMS", 10000)
        return MongoClient(self.direct_uri if direct else self.uri, **kwargs)

    def __repr__(self) -> str:
        return f"<Deployment {self.name} {self.uri}>"


def require(deployment: Deployment, *features: str) -> None:
    """Skip the running pytest test unless *deployment* supports every one of *features*."""
    reason = deployment.missing(*features)
    if reason:
        import pytest

        pytest.skip(reason)


def external_deployment(uri: str) -> Deployment:
    """Describe the deployment at *uri* (``MONGODB_URI``), probing its features with pymongo."""
    from pymongo import MongoClient
    from pymongo.uri_parser import parse_uri

    parsed = parse_uri(uri)
    nodes = parsed["nodelist"]
    host, port = nodes[0]
    opts = {k.lower(): v for k, v in parsed["options"].items()}
    if len(nodes) == 1 and not uri.startswith("mongodb+srv://"):
        sep = "&" if "?" in uri else ("?" if uri.rstrip("/").count("/") > 2 else "/?")
        direct_uri = uri if "directconnection" in opts else uri + sep + "directConnection=true"
    else:
        direct_uri = uri
    lacks: dict[str, str] = {}
    client: Any = MongoClient(uri, serverSelectionTimeoutMS=20000)
    try:
        h = client.admin.command("hello")
        replicated = "setName" in h or h.get("msg") == "isdbgrid"
        if "setName" not in h:
            lacks["replica_set"] = "MONGODB_URI deployment is not a replica set"
        if replicated:
            lacks["standalone"] = "MONGODB_URI deployment is not a standalone"
        else:
            for f in ("transactions", "change_streams", "retryable_writes", "causal_consistency"):
                lacks[f] = "MONGODB_URI deployment is a standalone"
        try:
            client.admin.command("configureFailPoint", "failCommand", mode="off")
        except Exception as exc:
            lacks["fail_command"] = f"MONGODB_URI deployment refuses configureFailPoint ({exc})"
    finally:
        client.close()
    if not parsed.get("username"):
        lacks["auth"] = "MONGODB_URI has no credentials"
    if not (opts.get("tls") or opts.get("ssl")) and not uri.startswith("mongodb+srv://"):
        lacks["tls"] = "MONGODB_URI does not use TLS"
    return Deployment("external", uri, direct_uri, host, port, lacks,
                      username=parsed.get("username"), password=parsed.get("password"),
                      tls_ca_file=opts.get("tlscafile"), tls_client_pem=opts.get("tlscertificatekeyfile"))
