"""The `pkcs11` seal provider against a real SoftHSM2 token (docs/SECURITY-DOMAIN.md, "Sealing the domain secret at
rest"; issue 4, "How it is proven").

Each test initialises its own token in a temporary token directory (SOFTHSM2_CONF points at it) and starts
`coffer serve --config <toml with [seal] provider = "pkcs11", pin_env = ...>` with SOFTHSM2_CONF and the PIN variable
in the server's environment. SoftHSM2 comes from scripts/setup-system (run first by scripts/test).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.keyvault.keys import KeyVaultKey
from azure.keyvault.keys.crypto import SignatureAlgorithm

from coffer_harness import CofferServer, database_args, remote_crypto, uniq
from localcrypto import digest_for, ec_public_from_jwk, ec_verify
from sdtools import assert_not_on_disk, dev_domain_secret, run_coffer

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "coffer-e2e"
SO_PIN = "1234"
PIN = "5678"
PIN_VAR = "COFFER_E2E_PKCS11_PIN"


@dataclass
class SoftHsm:
    conf: Path         # SOFTHSM2_CONF of the token directory holding the initialised token
    empty_conf: Path   # SOFTHSM2_CONF of an empty token directory (the token is absent)
    tokendir: Path
    config: Path       # coffer.toml with the pkcs11 [seal]

    def env(self, pin: str | None = PIN, conf: Path | None = None) -> dict:
        return {"SOFTHSM2_CONF": str(conf or self.conf), PIN_VAR: pin}


def _softhsm_conf(path: Path, tokendir: Path) -> Path:
    tokendir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    return path


@pytest.fixture
def softhsm(tmp_path) -> SoftHsm:
    util = shutil.which("softhsm2-util")
    if util is None or not MODULE.exists():
        pytest.fail(f"SoftHSM2 is missing (softhsm2-util: {util}, {MODULE}: {MODULE.exists()}): "
                    "run ./scripts/setup-system")
    base = tmp_path / "softhsm"
    base.mkdir()
    tokendir = base / "tokens"
    conf = _softhsm_conf(base / "softhsm2.conf", tokendir)
    empty_conf = _softhsm_conf(base / "empty.conf", base / "no-tokens")
    p = subprocess.run([util, "--init-token", "--free", "--label", TOKEN, "--so-pin", SO_PIN, "--pin", PIN],
                       env={**os.environ, "SOFTHSM2_CONF": str(conf)}, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"softhsm2-util --init-token: {p.returncode}\n{p.stdout}\n{p.stderr}"
    config = base / "coffer-pkcs11.toml"
    config.write_text(
        "[seal]\n"
        'provider = "pkcs11"\n'
        f'module = "{MODULE}"\n'
        f'token_label = "{TOKEN}"\n'
        'key_label = "coffer-seal"\n'
        f'pin_env = "{PIN_VAR}"\n'
    )
    return SoftHsm(conf=conf, empty_conf=empty_conf, tokendir=tokendir, config=config)


def token_objects(hsm: SoftHsm) -> list[Path]:
    return sorted(hsm.tokendir.rglob("*.object"))


def sign_and_verify(server: CofferServer, key: KeyVaultKey) -> None:
    crypto, rec = remote_crypto(server, key.id)
    digest = digest_for("ES256", f"pkcs11 seal, start #{server.starts}".encode())
    sig = crypto.sign(SignatureAlgorithm.es256, digest).signature
    rec.assert_remote("sign")
    ec_verify(ec_public_from_jwk(key.key), "ES256", digest, sig, "P-256")


def assert_refuses_to_start(server: CofferServer, *needles: str) -> str:
    rc, log = server.start_expecting_failure()
    assert rc != 0, f"{server.name}: the server must refuse to start, exit status {rc}\n{log}"
    for n in needles:
        assert n in log, f"{server.name}: the start-up error should mention {n!r}:\n{log}"
    return log


def test_pkcs11_seal_restart_and_refusals(make_server, softhsm):
    srv = make_server("pkcs11-seal", extra_args=("--config", str(softhsm.config)), env=softhsm.env())
    assert not (srv.data_dir / "seal.key").exists(), "with the pkcs11 seal there must be no seal.key"
    assert token_objects(softhsm), "the seal key should have been created inside the token"
    kc = srv.key_client()
    key = kc.create_ec_key(uniq("p11"), curve="P-256")
    sign_and_verify(srv, key)

    # restart with the token present: the domain secret unseals and the key still signs
    assert srv.stop() == 0
    assert_not_on_disk(dev_domain_secret(srv.data_dir), srv.data_dir, softhsm.tokendir)
    srv.start()
    assert not (srv.data_dir / "seal.key").exists()
    sign_and_verify(srv, srv.key_client().get_key(key.name))
    assert srv.stop() == 0

    # the token absent (an empty token directory): refused, naming the token
    srv.env = softhsm.env(conf=softhsm.empty_conf)
    assert_refuses_to_start(srv, TOKEN, "not found")
    # a wrong PIN: refused, saying so
    srv.env = softhsm.env(pin="0000")
    assert_refuses_to_start(srv, TOKEN, "wrong PIN")
    # no PIN at all: refused, naming the variable
    srv.env = softhsm.env(pin=None)
    assert_refuses_to_start(srv, PIN_VAR)

    # the refusals changed nothing: with the token and the PIN back, the key still signs
    srv.env = softhsm.env()
    srv.start()
    sign_and_verify(srv, srv.key_client().get_key(key.name))


def test_seal_migrate_from_file_to_pkcs11(make_server, softhsm):
    srv = make_server("seal-migrate")  # --dev, the file provider
    seal_key = srv.data_dir / "seal.key"
    assert seal_key.exists(), "the file provider keeps its key in <data-dir>/seal.key"
    key = srv.key_client().create_ec_key(uniq("mig"), curve="P-256")
    sign_and_verify(srv, key)
    assert srv.stop() == 0

    p = run_coffer("seal", "migrate", "--data-dir", srv.data_dir, "--to-config", softhsm.config,
               *database_args(Path(srv.data_dir)), env=softhsm.env())
    assert not seal_key.exists(), f"seal.key must be removed after moving to pkcs11\n{p.stdout}{p.stderr}"
    assert_not_on_disk(dev_domain_secret(srv.data_dir), srv.data_dir, softhsm.tokendir)
    assert token_objects(softhsm), "the migration should have created the seal key inside the token"

    # the file provider can no longer open this instance
    assert_refuses_to_start(srv, "seal.key")

    # with the pkcs11 config, the old key still signs
    srv.extra_args = ("--config", str(softhsm.config))
    srv.env = softhsm.env()
    srv.start()
    sign_and_verify(srv, srv.key_client().get_key(key.name))
