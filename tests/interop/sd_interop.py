#!/usr/bin/env python3
"""Security-domain interop with the Azure CLI's own code (vendored, unchanged, in azure_cli_security_domain/).

    python3 tests/interop/sd_interop.py DIR

DIR holds what `sd_fixture make` wrote (officer{i}.pem/.cer, transfer_key.json, sd.json, rust_blob.json,
expected.json). This script, with the CLI functions from azure-cli's keyvault custom.py:

1. runs `security_domain_init_recovery` against a stand-in client whose get_transfer_key() returns
   transfer_key.json: the CLI turns Coffer's transfer key into exchange.cli.cer (checked to be the same certificate);
2. runs `security_domain_restore_blob` (the `az keyvault security-domain restore-blob` command) on Coffer's sd.json
   with several officer pairs, writing cli_blob_<pair>.json (run.sh then opens each with Coffer's
   open_restore_blob);
3. checks that the CLI refuses too few officer keys;
4. opens Coffer's own restore blob (rust_blob.json) with the CLI's JWE and KDF classes and the exchange private
   key, and compares the items with expected.json.

Needs only Python 3 and `cryptography`: the CLI's two other imports (knack, azure.cli.core) are replaced by stubs
holding the exception classes the vendored code names.
"""
import itertools
import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = os.path.join(HERE, "azure_cli_security_domain")


class CLIError(Exception):
    pass


def install_stubs():
    """knack.util and azure.cli.core.azclierror, reduced to the names the vendored code imports."""
    knack = types.ModuleType("knack")
    knack_util = types.ModuleType("knack.util")
    knack_util.CLIError = CLIError
    knack_util.todict = lambda x: x
    knack.util = knack_util
    azclierror = types.ModuleType("azure.cli.core.azclierror")
    for name in ("InvalidArgumentValueError", "RequiredArgumentMissingError", "MutuallyExclusiveArgumentError"):
        setattr(azclierror, name, type(name, (CLIError,), {}))
    core = types.ModuleType("azure.cli.core")
    core.azclierror = azclierror
    sys.modules.update({"knack": knack, "knack.util": knack_util, "azure.cli.core": core,
                        "azure.cli.core.azclierror": azclierror})


def load_cli():
    sys.path.insert(0, VENDOR)
    install_stubs()
    import custom_security_domain as custom  # noqa: E402 (the vendored excerpt of custom.py)
    from azure.cli.command_modules.keyvault.security_domain.jwe import JWE
    from azure.cli.command_modules.keyvault.security_domain.sp800_108 import KDF
    # The package must come from the vendored folder, not from some installed azure-cli.
    assert os.path.abspath(sys.modules[JWE.__module__].__file__).startswith(VENDOR), JWE.__module__
    return custom, JWE, KDF


def check(condition, message):
    if not condition:
        raise SystemExit(f"sd_interop: FAILED: {message}")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    d = sys.argv[1]
    path = lambda name: os.path.join(d, name)  # noqa: E731
    custom, JWE, KDF = load_cli()
    from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
    from cryptography.x509 import load_pem_x509_certificate

    check(KDF.test_sp800_108(), "the CLI's own SP 800-108 self-test")
    expected = {tag: bytes.fromhex(h) for tag, h in json.load(open(path("expected.json"))).items()}
    officers = sorted(f[:-4] for f in os.listdir(d) if f.startswith("officer") and f.endswith(".pem"))
    with open(path("sd.json")) as f:
        required = json.load(f)["SharedKeys"]["required"]

    # 1. init-recovery: GET /securitydomain/upload -> exchange certificate PEM, exactly as the CLI does it.
    class TransferKeyClient:
        def get_transfer_key(self):
            return json.load(open(path("transfer_key.json")))

    cli_cer = path("exchange.cli.cer")
    if os.path.exists(cli_cer):
        os.remove(cli_cer)
    custom.security_domain_init_recovery(TransferKeyClient(), cli_cer)
    ours = load_pem_x509_certificate(open(path("exchange.cer"), "rb").read())
    theirs = load_pem_x509_certificate(open(cli_cer, "rb").read())
    check(ours.public_bytes(Encoding.DER) == theirs.public_bytes(Encoding.DER),
          "init-recovery's certificate differs from the exchange certificate")
    print("sd_interop: init-recovery accepted the transfer key")

    # 2. restore-blob with quorum groups of officers. The CLI combines the shares in the order it matches them: with
    #    few officers every ordered choice is tried, otherwise every set once (alternately in reverse order), which
    #    keeps the pure-Python CLI code under a few seconds.
    groups = list(itertools.permutations(officers, required))
    if len(groups) > 12:
        groups = [c if i % 2 == 0 else tuple(reversed(c))
                  for i, c in enumerate(itertools.combinations(officers, required))]
    for group in groups:
        name = "cli_blob_" + "_".join(o.replace("officer", "") for o in group) + ".json"
        out = path(name)
        if os.path.exists(out):
            os.remove(out)
        custom.security_domain_restore_blob(
            sd_file=path("sd.json"), sd_exchange_key=cli_cer,
            sd_wrapping_keys=[path(o + ".pem") for o in group], sd_file_restore_blob=out)
        blob = json.load(open(out))
        check(set(blob) == {"EncData", "WrappedKey"}, f"{name}: unexpected keys {set(blob)}")
        check(sorted(i["tag"] for i in blob["EncData"]["data"]) == sorted(expected), f"{name}: tags")
    print(f"sd_interop: the CLI's restore-blob accepted sd.json with {len(groups)} officer groups of {required}")

    # 3. Too few officer keys: the CLI refuses before touching the shares.
    try:
        custom._security_domain_restore_blob(path("sd.json"), cli_cer, [path(officers[0] + ".pem")])
        check(False, "restore-blob with one officer key succeeded")
    except CLIError as e:
        check("should not less than" in str(e), f"unexpected error for one officer: {e}")
    # A quorum of keys of which only one is in the file: too few shares.
    stranger = path("exchange.pem")  # any RSA key whose certificate is not in the file (exchange.cer sits beside it)
    try:
        custom._security_domain_restore_blob(path("sd.json"), cli_cer,
                                             [path(officers[0] + ".pem")] + [stranger] * (required - 1))
        check(False, "restore-blob with a single matching officer succeeded")
    except CLIError as e:
        check("Insufficient shares" in str(e), f"unexpected error for one matching officer: {e}")
    print("sd_interop: the CLI refuses fewer than the quorum of officers")

    # 4. Coffer's restore blob, opened with the CLI's JWE/KDF code and the exchange private key.
    exchange_key = load_pem_private_key(open(path("exchange.pem"), "rb").read(), password=None)
    blob = json.load(open(path("rust_blob.json")))
    from azure.cli.command_modules.keyvault.security_domain.utils import Utils
    import hashlib
    check(blob["WrappedKey"]["x5t_256"] == Utils.security_domain_b64_url_encode(
        hashlib.sha256(ours.public_bytes(Encoding.DER)).digest()), "rust_blob.json x5t_256")
    master = JWE(blob["WrappedKey"]["enc_key"]).decrypt_using_private_key(exchange_key)
    check(master is not None and len(master) == 32, "rust_blob.json: wrapped master key")
    got = {}
    for item in blob["EncData"]["data"]:
        key = KDF.sp800_108(master, label=item["tag"], context="", bit_length=512)
        jwe = JWE(item["compact_jwe"])
        check(jwe.jwe_decode.protected_header.kid == item["tag"], "rust_blob.json: kid == tag")
        plaintext = jwe.decrypt_using_bytes(key)
        check(plaintext is not None, f"rust_blob.json: item {item['tag']} failed the CLI's tag check")
        got[item["tag"]] = bytes(plaintext)
    check(got == expected, "rust_blob.json: items differ from expected.json")
    print("sd_interop: the CLI's decoder opened Coffer's restore blob")


if __name__ == "__main__":
    main()
