"""The async Azure SDK for Python (azure.identity.aio, which does not use MSAL, and azure.keyvault.keys.aio) against
the real binary. Its ClientSecretCredential builds the token URL `{authority}/{tenant}/oauth2/v2.0/token`; with the
AD FS alias `adfs` as the tenant (code that cannot disable instance discovery) that is `/adfs/oauth2/v2.0/token`,
which Coffer serves as well as `/adfs/oauth2/token` (MSAL) and the tenant's own paths (issue 14, item 1)."""

from __future__ import annotations

import asyncio
import hashlib

from azure.identity.aio import ClientSecretCredential
from azure.keyvault.keys.aio import KeyClient
from azure.keyvault.keys.crypto import SignatureAlgorithm
from azure.keyvault.keys.crypto.aio import CryptographyClient

from coffer_harness import uniq


def test_async_credential_with_the_adfs_alias_creates_a_key_and_signs(make_server):
    srv = make_server("async-adfs")

    async def run() -> None:
        paths = []

        def hook(response):
            paths.append(response.http_request.url)

        for tenant in ("adfs", srv.creds["tenant_id"]):
            cred = ClientSecretCredential(tenant, srv.creds["client_id"], srv.creds["client_secret"],
                                          authority=srv.creds["authority"], disable_instance_discovery=True,
                                          connection_verify=srv.ca, raw_response_hook=hook)
            async with cred:
                kc = KeyClient(srv.url, cred, verify_challenge_resource=False, connection_verify=srv.ca)
                async with kc:
                    key = await kc.create_ec_key(uniq("async"), curve="P-256")
                    crypto = CryptographyClient(key, cred, verify_challenge_resource=False, connection_verify=srv.ca)
                    async with crypto:
                        digest = hashlib.sha256(b"coffer").digest()
                        signed = await crypto.sign(SignatureAlgorithm.es256, digest)
                        verified = await crypto.verify(SignatureAlgorithm.es256, digest, signed.signature)
                        assert verified.is_valid
        token_paths = {p.split("?")[0].replace(srv.url, "") for p in paths if "/oauth2/" in p}
        assert "/adfs/oauth2/v2.0/token" in token_paths, token_paths
        assert f"/{srv.creds['tenant_id']}/oauth2/v2.0/token" in token_paths, token_paths

    asyncio.run(run())
