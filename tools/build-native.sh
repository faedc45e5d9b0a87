#!/usr/bin/env bash
# Rebuilds the native module in place (src/pystargz/_inflate*.so) without pip,
# for working from a checkout with PYTHONPATH=src.  Takes the same variables
# as build_ffi.py (PYSTARGZ_NATIVE_BACKEND, PYSTARGZ_SANITIZE).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=build/native-inplace
rm -rf "$work"
mkdir -p "$work"
# cffi compiles from inside its temporary directory; the sources are named relative to the checkout.
ln -s "$PWD/src" "$work/src"
built=$("$PYTHON" -c 'import os, build_ffi; print(build_ffi.ffibuilder.compile(tmpdir=os.path.abspath("'"$work"'")))')
rm -f src/pystargz/_inflate*.so
cp "$built" src/pystargz/
echo "built $(basename "$built") ($("$PYTHON" -c 'import sys; sys.path.insert(0, "src"); import pystargz; print(pystargz.native_backend)'))"
