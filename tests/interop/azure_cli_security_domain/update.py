#!/usr/bin/env python3
# Re-vendors the Azure CLI security-domain code used by tests/interop/sd_interop.py.
#
#   python3 tests/interop/azure_cli_security_domain/update.py [VERSION]     (default 2.91.0)
#
# Downloads the azure-cli wheel from PyPI (`pip download --no-deps`), then copies, unchanged:
#   * azure/cli/command_modules/keyvault/security_domain/*.py   (the whole package)
#   * the wheel's LICENSE.txt (MIT)
# and writes custom_security_domain.py: the security-domain functions of azure/cli/command_modules/keyvault/custom.py
# copied line for line (found by name with `ast`), after the import lines they need from the same file.
# The wheel's RECORD hashes are checked for every file taken.
import ast
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = "azure/cli/command_modules/keyvault/security_domain/"
CUSTOM = "azure/cli/command_modules/keyvault/custom.py"
FUNCTIONS = [
    "security_domain_init_recovery",
    "_security_domain_make_restore_blob",
    "_security_domain_gen_share_arrays",
    "_security_domain_gen_blob",
    "_security_domain_restore_blob",
    "security_domain_restore_blob",
]
# The import lines of custom.py these functions use (copied from its header, unchanged).
IMPORT_PREFIXES = (
    "import hashlib",
    "import json",
    "import os",
    "from azure.cli.command_modules.keyvault.security_domain.",
    "from azure.cli.core.azclierror import",
    "from cryptography.hazmat.backends import default_backend",
    "from cryptography.hazmat.primitives.serialization import",
    "from cryptography.x509 import",
    "from knack.util import",
)


def main():
    version = sys.argv[1] if len(sys.argv) > 1 else "2.91.0"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        f"azure-cli=={version}", "-d", tmp], check=True)
        (wheel,) = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        wheel_path = os.path.join(tmp, wheel)
        wheel_sha = hashlib.sha256(open(wheel_path, "rb").read()).hexdigest()
        with zipfile.ZipFile(wheel_path) as z:
            record_name = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
            record = {}
            for line in z.read(record_name).decode().splitlines():
                parts = line.rsplit(",", 2)
                if len(parts) == 3 and parts[1].startswith("sha256="):
                    record[parts[0]] = parts[1][len("sha256="):]

            def read_checked(name):
                data = z.read(name)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                if record.get(name) != digest:
                    sys.exit(f"RECORD hash mismatch for {name}")
                return data

            target = os.path.join(HERE, PKG)
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.makedirs(target)
            for name in z.namelist():
                if name.startswith(PKG) and name.endswith(".py") and "/" not in name[len(PKG):]:
                    with open(os.path.join(HERE, name), "wb") as f:
                        f.write(read_checked(name))
            license_name = next(n for n in z.namelist() if n.endswith(".dist-info/licenses/LICENSE.txt"))
            with open(os.path.join(HERE, "LICENSE.txt"), "wb") as f:
                f.write(read_checked(license_name))

            source = read_checked(CUSTOM).decode()
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    # The wanted import lines of the file header; a multi-line import ("... import a, \" + continuation) is kept
    # whole.
    out_imports = []
    for i, line in enumerate(lines[:60]):
        if line.startswith(IMPORT_PREFIXES):
            out_imports.append(line)
            j = i
            while lines[j].rstrip().endswith("\\"):
                j += 1
                out_imports.append(lines[j])
    with open(os.path.join(HERE, "custom_security_domain.py"), "w") as f:
        f.write(lines[0] + lines[1] + lines[2] + lines[3])  # Microsoft copyright / MIT header of custom.py
        f.write(f"# Excerpt of {CUSTOM} from the azure-cli {version} wheel (sha256 {wheel_sha}),\n")
        f.write("# made by update.py: the import lines below and the functions "
                + ", ".join(FUNCTIONS) + ", copied unchanged.\n\n")
        f.writelines(out_imports)
        for name in FUNCTIONS:
            node = defs[name]
            f.write("\n\n")
            f.writelines(lines[node.lineno - 1:node.end_lineno])
    print(f"vendored azure-cli {version} ({wheel}, sha256 {wheel_sha})")


if __name__ == "__main__":
    main()
