#!/usr/bin/env bash
# Rebuilds the native module in a variant and runs the tests that exercise it.
#   zlib      built against zlib instead of libdeflate (the fallback must stay correct)
#   sanitize  built with AddressSanitizer + UBSan; any memory error aborts the run; then the fuzz
#             smoke of the native inflate and open + read-all targets (FUZZ_SECONDS each, default 15),
#             which first replays the corpora of an earlier guided run in FUZZ_DIR (default .fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
variant=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
NATIVE_TESTS=(tests/test_native.py tests/test_vectors.py tests/test_seek.py tests/test_malformed.py tests/test_deflate.py)

# Build from a clean copy: a build/ directory left by another variant could be reused.
mkdir "$work/pkg"
cp -r pyproject.toml setup.py build_ffi.py README.md src "$work/pkg/"
find "$work/pkg/src" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q pytest hypothesis
case "$variant" in
    zlib)
        PYSTARGZ_NATIVE_BACKEND=zlib "$work/venv/bin/python" -m pip install -q "$work/pkg"
        echo "== pytest (native backend: zlib)"
        PYTHONDEVMODE=1 PYSTARGZ_EXPECT_NATIVE_BACKEND=zlib HYPOTHESIS_PROFILE=ci \
            "$work/venv/bin/python" -m pytest -p no:cacheprovider -q "${NATIVE_TESTS[@]}"
        ;;
    sanitize)
        PYSTARGZ_SANITIZE=1 "$work/venv/bin/python" -m pip install -q "$work/pkg"
        so=$(ls "$work"/venv/lib/python3*/site-packages/pystargz/_inflate*.so)
        ldd "$so" | grep libasan >/dev/null || { echo "variant-tests: $so is not built with ASan" >&2; exit 1; }
        asan=$(gcc -print-file-name=libasan.so)
        ubsan=$(gcc -print-file-name=libubsan.so)
        echo "== pytest (native module under AddressSanitizer + UBSan)"
        LD_PRELOAD="$asan $ubsan" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
            UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 HYPOTHESIS_PROFILE=ci \
            "$work/venv/bin/python" -m pytest -p no:cacheprovider -q "${NATIVE_TESTS[@]}"
        echo "== fuzz smoke (native module under AddressSanitizer + UBSan)"
        "$work/venv/bin/python" -m pip install -q atheris
        # GCC's ASan runtime shadows libFuzzer's coverage hooks, so this run is not coverage-guided:
        # its value is every input of the guided run's corpora, and random mutations, under ASan.
        PYTHON="$work/venv/bin/python" FUZZ_PRELOAD="$asan $ubsan" \
            ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            bash tools/fuzz.sh "${FUZZ_SECONDS:-15}" inflate open
        ;;
    *)
        echo "usage: $0 zlib|sanitize" >&2
        exit 2
        ;;
esac
