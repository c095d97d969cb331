#!/usr/bin/env python3
"""Pin the Cognito service models from a botocore wheel into model/.

Usage: codegen/pin_models.py path/to/botocore-X.Y.Z-py3-none-any.whl

Keeps shapes, constraints, errors, auth types and HTTP bindings; drops the
documentation text (it is large and not ours to redistribute in bulk).
Records the wheel version and sha256 in model/PROVENANCE.md.
"""
import gzip
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path

SERVICES = {
    "cognito-idp": "2016-04-18",
    "cognito-identity": "2014-06-30",
    "cognito-sync": "2014-06-30",
}
DROP_KEYS = {"documentation", "documentationUrl", "examples"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main():
    wheel = Path(sys.argv[1])
    version = re.match(r"botocore-([0-9.]+)-", wheel.name).group(1)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    out = Path(__file__).resolve().parent.parent / "model"
    out.mkdir(exist_ok=True)
    rows = []
    with zipfile.ZipFile(wheel) as z:
        for service, api in SERVICES.items():
            member = f"botocore/data/{service}/{api}/service-2.json.gz"
            model = json.loads(gzip.decompress(z.read(member)))
            text = json.dumps(strip(model), indent=1, sort_keys=True) + "\n"
            (out / f"{service}.json").write_text(text)
            rows.append(f"| `{service}.json` | `{member}` | {api} | {len(model['operations'])} |")
    (out / "PROVENANCE.md").write_text(
        "# Provenance of the pinned AWS service models\n\n"
        f"Source: the PyPI package `botocore` version {version}, wheel `{wheel.name}`,\n"
        f"sha256 `{digest}`.\n\n"
        "The files were written by `codegen/pin_models.py`, which removes the documentation\n"
        "text and keeps shapes, constraints, errors, auth types and HTTP bindings unchanged.\n\n"
        "| file | member of the wheel | API version | operations |\n|---|---|---|---|\n"
        + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    main()
