#!/usr/bin/env bash
# Installs everything pystargz's demo and tests need on a Debian/Ubuntu machine:
# Debian packages (compiler, libdeflate, Go and the Go estargz reference) when
# missing, then a virtualenv in .venv with pystargz (editable) and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(gcc python3-dev python3-venv libdeflate-dev zlib1g-dev
                 golang-go golang-github-containerd-stargz-snapshotter-dev openssl)

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Debian's distribution registry for the registry tests, unpacked into .cache (dpkg-deb -x starts no service).
unpack_registry() {
    local dir=.cache/docker-registry
    mkdir -p "$dir"
    (cd "$dir" && { apt-get download -qq docker-registry 2>/dev/null \
                    || { "${as_root[@]}" apt-get update -qq && apt-get download -qq docker-registry; }; } \
        && dpkg-deb -x docker-registry_*.deb . && rm docker-registry_*.deb)
}
if ! command -v docker-registry >/dev/null && [ ! -x .cache/docker-registry/usr/bin/docker-registry ]; then
    unpack_registry
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
echo "setup: $(.venv/bin/python -c 'import pystargz; print("pystargz", pystargz.__version__, "native backend:", pystargz.native_backend)')"
