#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: set-up, lint, types,
# the tests (Go reference peer included), a fuzz smoke, then the native module
# rebuilt against zlib and under AddressSanitizer + UBSan for the native tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy
echo "== pytest (native backend: libdeflate)"
PYTHONDEVMODE=1 HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} PYSTARGZ_EXPECT_NATIVE_BACKEND=libdeflate \
    pytest -p no:cacheprovider
echo "== fuzz smoke (atheris, every target)"
bash tools/fuzz.sh "${FUZZ_SECONDS:-15}"

bash tools/variant-tests.sh zlib
bash tools/variant-tests.sh sanitize
