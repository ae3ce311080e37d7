"""Start/stop a real `coffer serve` process and build official Azure SDK clients against it.

Used by conftest.py (session server) and by tests that need their own server (restart).
Nothing here builds the binary: set COFFER_BIN or build target/debug/coffer first (scripts/test does).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

import requests
from azure.identity import ClientSecretCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient
from azure.keyvault.keys.crypto._providers import NoLocalCryptography

REPO_ROOT = Path(__file__).resolve().parents[3]
ADMIN_FIELDS = {"url", "tenant_id", "authority", "client_id", "client_secret", "object_id", "ca_cert"}

# Every server started by this process, so conftest can attach new log lines to failing tests.
RUNNING: list["CofferServer"] = []


def coffer_bin() -> Path:
    p = Path(os.environ.get("COFFER_BIN", REPO_ROOT / "target" / "debug" / "coffer"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def log_dir() -> Path:
    d = Path(os.environ.get("COFFER_CONFORMANCE_LOGDIR", REPO_ROOT / "target" / "conformance-logs"))
    d.mkdir(parents=True, exist_ok=True)
    return d


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port never handed out before in this run: the Azure SDKs keep what a server's challenge said
    per host and port, so a new server on a port an earlier one used could be asked for the earlier one's tenant."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def uniq(prefix: str) -> str:
    """A key name unique to this run: [0-9A-Za-z-] only."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ServerError(AssertionError):
    pass


def backup_destinations_toml() -> str:
    """The `[backup]` section test servers start with: backup destinations are configured, not chosen by the caller
    (docs/NETWORK.md), so the tests allow `file://` under the temporary directory, the Azurite account, and
    loopback addresses (where Azurite listens)."""
    # (`http://127.0.0.1:*`: the backup tests also point jobs at loopback ports of their own, closed or hanging)
    endpoints = ["https://*.blob.core.windows.net", "http://127.0.0.1:*"]
    if os.environ.get("COFFER_AZURITE_URL"):
        endpoints.append(os.environ["COFFER_AZURITE_URL"].rstrip("/"))
    return ("\n[backup]\n"
            f"blob_endpoints = {json.dumps(endpoints)}\n"
            f"file_roots = {json.dumps([tempfile.gettempdir()])}\n"
            'private_networks = ["127.0.0.0/8", "::1"]\n')


def with_backup_destinations(extra_args: tuple[str, ...], data_dir: Path) -> list[str]:
    """`extra_args` with a coffer.toml that has the test `[backup]` section: the test's own `--config` file plus the
    section (unless it has one), or a file of its own in the data directory."""
    args = list(extra_args)
    if "--config" in args:
        i = args.index("--config") + 1
        given = Path(args[i])
        text = given.read_text()
        if "[backup]" not in text:
            merged = given.with_name(given.stem + ".with-backup.toml")
            merged.write_text(text + backup_destinations_toml())
            args[i] = str(merged)
        return args
    config = data_dir / "coffer-test-backup.toml"
    config.write_text(backup_destinations_toml())
    return [*args, "--config", str(config)]


def postgres_mode() -> bool:
    """Whether test servers keep their state in PostgreSQL (`COFFER_TEST_DATABASE=postgres` with the cluster of
    `scripts/postgres start`: COFFER_TEST_PG_URL, COFFER_TEST_PG_PASSWORD_FILE, COFFER_TEST_PG_CA)."""
    return os.environ.get("COFFER_TEST_DATABASE") == "postgres"


def database_args(data_dir: Path, postgres: Optional[bool] = None) -> list[str]:
    """The `--database-url`/`--database-password-file` flags of `data_dir`'s own PostgreSQL database (created on first
    use, so a restart finds its state again) when `postgres` (default: PostgreSQL mode), for `coffer serve` and the
    offline commands (`seal migrate`, `audit verify`); none otherwise."""
    if not (postgres_mode() if postgres is None else postgres):
        return []
    import hashlib
    admin = os.environ["COFFER_TEST_PG_URL"]
    password_file = os.environ["COFFER_TEST_PG_PASSWORD_FILE"]
    ca = os.environ["COFFER_TEST_PG_CA"]
    name = "coffer_" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:20]
    u = urlparse(admin)
    env = dict(os.environ, PGPASSWORD=Path(password_file).read_text().splitlines()[0], PGSSLMODE="verify-full",
               PGSSLROOTCERT=ca)
    conn = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", u.hostname, "-p", str(u.port), "-U", u.username,
            "-d", u.path.lstrip("/") or "postgres"]
    exists = subprocess.run([*conn, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], env=env,
                            capture_output=True, text=True, check=True).stdout.strip()
    if exists != "1":
        subprocess.run([*conn, "-c", f'CREATE DATABASE "{name}"'], env=env, capture_output=True, text=True, check=True)
    url = f"postgres://{u.username}@{u.hostname}:{u.port}/{name}?sslmode=verify-full&sslrootcert={ca}"
    return ["--database-url", url, "--database-password-file", password_file]


CRYPTO_USER = "21dbd100-6940-42c2-9190-5d6cb909625b"
CRYPTO_OFFICER = "515eb02d-2335-4d2d-92f2-b1cbdf9c3778"


def grant_crypto_roles(port: int, creds: dict, resource: Optional[str] = None) -> None:
    """A new instance's bootstrap principal is Managed HSM Administrator only (as in Azure, it must assign itself a
    crypto role before it can use keys). The key tests need Crypto User and Crypto Officer at '/': assign them with
    names derived from the principal, so a restart finds them in place (409) instead of duplicating them."""
    base = f"https://127.0.0.1:{port}"
    tok = requests.post(f"{base}/{creds['tenant_id']}/oauth2/v2.0/token", verify=creds["ca_cert"], timeout=30, data={
        "grant_type": "client_credentials", "client_id": creds["client_id"],
        "client_secret": creds["client_secret"], "scope": f"{resource or creds['url']}/.default"})
    tok.raise_for_status()
    headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    for role in (CRYPTO_USER, CRYPTO_OFFICER):
        name = uuid.uuid5(uuid.NAMESPACE_URL, f"{creds['object_id']}/{role}")
        body = {"properties": {"principalId": creds["object_id"],
                               "roleDefinitionId": f"Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"}}
        r = requests.put(f"{base}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=7.6",
                         json=body, headers=headers, verify=creds["ca_cert"], timeout=30)
        # 409 is "already assigned" (a restart), but not when it says the instance is not activated yet
        if r.status_code not in (201, 409) or (r.status_code == 409 and "HsmNotActivated" in r.text):
            raise ServerError(f"assigning role {role}: {r.status_code} {r.text}")


class CofferServer:
    def __init__(self, data_dir: Path, name: str, port: Optional[int] = None, extra_args: tuple[str, ...] = (),
                 dev: bool = True, recovery: bool = False, env: Optional[dict[str, str]] = None,
                 database: Optional[str] = None):
        """`dev` (the default) starts with --dev: activated at once, and the bootstrap principal gets the crypto roles.
        `dev=False` starts a provisioned instance (or, with `recovery=True`, one in recovery mode) and assigns no
        roles: role-assignment writes are refused until the instance is activated. `env` is added to (or, with a
        None value, removed from) the server's environment."""
        if dev and recovery:
            raise ValueError("--dev and --recovery exclude each other")
        self.data_dir = Path(data_dir)
        self.name = name
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)
        self.dev = dev
        self.recovery = recovery
        self.env = dict(env or {})
        # "sqlite" or "postgres" for this server; None: as COFFER_TEST_DATABASE says (sqlite when unset).
        self.database = database
        self.log_path = log_dir() / f"{name}.log"
        self.proc: Optional[subprocess.Popen] = None
        self.creds: dict[str, Any] = {}
        self._log_file = None
        self.starts = 0

    # ------------------------------------------------------------------ process
    def database_args(self) -> list[str]:
        """The database flags this server starts with."""
        return database_args(self.data_dir, None if self.database is None else self.database == "postgres")

    def _spawn(self) -> None:
        binary = coffer_bin()
        if not binary.exists():
            raise ServerError(f"coffer binary not found at {binary} (set COFFER_BIN or run `cargo build -p coffer-cli`)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # a new CofferServer starts a new log; a restart of the same one appends
        self._log_file = open(self.log_path, "ab" if self.starts else "wb", buffering=0)
        self.starts += 1
        self._log_file.write(f"\n===== start #{self.starts}: port {self.port}, data dir {self.data_dir} =====\n".encode())
        mode = ["--dev"] if self.dev else ["--recovery"] if self.recovery else []
        cmd = [str(binary), "serve", "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}", *mode,
               *with_backup_destinations(self.extra_args, self.data_dir), *self.database_args()]
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")  # plain log files
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=str(self.data_dir))

    def start(self, timeout: float = 180.0) -> "CofferServer":
        self._spawn()
        RUNNING.append(self)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def start_expecting_failure(self, timeout: float = 60.0) -> tuple[int, str]:
        """Starts the server when it is expected to refuse: waits for the process to exit and returns its exit status
        and what it logged during this start. Raises if it is still running (and answering) after `timeout`."""
        offset = self.log_size()
        self._spawn()
        proc = self.proc
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerError(f"coffer did not exit within {timeout}s although its start-up should fail\n"
                              f"{self.log_tail()}")
        finally:
            self.proc = None
            if self._log_file:
                self._log_file.close()
                self._log_file = None
        return rc, self.log_since(offset, max_lines=200)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        creds_path = self.data_dir / "admin-credentials.json"
        last_err: Any = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerError(f"coffer exited with status {rc} during start-up\n{self.log_tail()}")
            if creds_path.exists():
                try:
                    creds = json.loads(creds_path.read_text())
                    ca = creds["ca_cert"]
                    r = requests.get(f"https://127.0.0.1:{self.port}/healthz", verify=ca, timeout=5)
                    if r.status_code == 200:
                        self.creds = creds
                        if self.dev:
                            # (a provisioned or recovery-mode instance refuses role-assignment writes until it is
                            # activated: the tests call grant_crypto_roles themselves after activation)
                            grant_crypto_roles(self.port, creds, self.resource)
                        return
                    last_err = f"healthz -> {r.status_code} {r.text[:200]}"
                except (ValueError, KeyError, OSError, requests.RequestException) as e:
                    last_err = repr(e)
            time.sleep(0.2)
        raise ServerError(f"coffer not ready after {timeout}s (last: {last_err})\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait. Returns the exit status; raises if the server does not exit in time."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if self in RUNNING:
            RUNNING.remove(self)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise ServerError(f"coffer did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        else:
            rc = proc.returncode
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in RUNNING:
            RUNNING.remove(self)
        self.proc = None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, max_lines: int = 80) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        if len(lines) > max_lines:
            lines = [f"... ({len(lines) - max_lines} earlier lines in {self.log_path})"] + lines[-max_lines:]
        return "\n".join(lines)

    def log_tail(self, max_lines: int = 80) -> str:
        return f"--- last lines of {self.log_path} ---\n" + self.log_since(0, max_lines)

    # ------------------------------------------------------------------ credentials
    @property
    def resource(self) -> Optional[str]:
        """The --resource given to the server, if any (the token audience otherwise defaults to the URL)."""
        args = list(self.extra_args)
        return args[args.index("--resource") + 1] if "--resource" in args else None

    @property
    def url(self) -> str:
        return self.creds["url"]

    @property
    def ca(self) -> str:
        return self.creds["ca_cert"]

    @property
    def tenant(self) -> str:
        return self.creds["tenant_id"]

    @property
    def scope(self) -> str:
        return self.url + "/.default"

    def credential(self, **kwargs: Any) -> ClientSecretCredential:
        return ClientSecretCredential(
            self.creds["tenant_id"],
            self.creds["client_id"],
            self.creds["client_secret"],
            authority=self.creds["authority"],
            disable_instance_discovery=True,
            connection_verify=self.ca,
            **kwargs,
        )

    def key_client(self, credential=None, **kwargs: Any) -> KeyClient:
        return KeyClient(
            self.url,
            credential or self.credential(),
            verify_challenge_resource=False,
            connection_verify=self.ca,
            **kwargs,
        )

    def token(self, credential=None) -> str:
        return (credential or self.credential()).get_token(self.scope).token


class Recorder:
    """raw_response_hook that records (method, path, status) of every response the pipeline sees."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, pipeline_response) -> None:
        req = pipeline_response.http_request
        resp = pipeline_response.http_response
        self.calls.append((req.method, urlparse(req.url).path, resp.status_code))

    def take(self) -> list[tuple[str, str, int]]:
        calls, self.calls = self.calls, []
        return calls

    def assert_remote(self, verb: str) -> None:
        """Assert that the last operation was a successful POST .../{verb} to the server, then reset."""
        calls = self.take()
        ok = [c for c in calls if c[0] == "POST" and c[1].rstrip("/").lower().endswith("/" + verb.lower()) and c[2] == 200]
        assert ok, f"expected a POST .../{verb} answered 200 by the server, saw {calls}"


def remote_crypto(server: CofferServer, key_id: str, credential=None) -> tuple[CryptographyClient, Recorder]:
    """CryptographyClient forced to send every operation to the server (sdk-requirements.md §6)."""
    rec = Recorder()
    client = CryptographyClient(
        key_id,
        credential or server.credential(),
        verify_challenge_resource=False,
        connection_verify=server.ca,
        raw_response_hook=rec,
    )
    client._local_provider = NoLocalCryptography()  # pylint: disable=protected-access
    client._initialized = True  # pylint: disable=protected-access
    return client, rec


def check_admin_credentials_file(data_dir: Path, port: int) -> dict:
    path = Path(data_dir) / "admin-credentials.json"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, f"admin-credentials.json mode is {oct(mode)}, expected 0o600"
    creds = json.loads(path.read_text())
    assert set(creds) == ADMIN_FIELDS, f"admin-credentials.json fields {sorted(creds)} != {sorted(ADMIN_FIELDS)}"
    assert creds["url"] == f"https://127.0.0.1:{port}", creds["url"]
    assert creds["authority"].startswith("https://"), creds["authority"]
    assert urlparse(creds["authority"]).netloc == f"127.0.0.1:{port}", creds["authority"]
    assert re.fullmatch(r"[A-Za-z0-9.-]+", creds["tenant_id"]), creds["tenant_id"]
    assert Path(creds["ca_cert"]).is_absolute(), creds["ca_cert"]
    assert Path(creds["ca_cert"]).resolve() == (Path(data_dir) / "ca.pem").resolve(), creds["ca_cert"]
    for f in ("client_id", "client_secret", "object_id"):
        assert isinstance(creds[f], str) and creds[f], f"{f} empty"
    return creds
