"""Builds ``pystargz._inflate``, the native inflate module, with cffi in API mode.

API mode compiles a real CPython extension whose calls release the GIL, which
is what lets the reader inflate chunks on all cores from Python threads.

The backend is libdeflate when it is installed (about twice zlib's speed),
else zlib.  ``PYSTARGZ_NATIVE_BACKEND=zlib`` (or ``libdeflate``) forces the
choice; ``PYSTARGZ_SANITIZE=1`` builds with AddressSanitizer and UBSan.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src"
BACKENDS = {
    "libdeflate": {"libraries": ["deflate"], "define_macros": [("PSGZ_USE_LIBDEFLATE", "1")]},
    "zlib": {"libraries": ["z"], "define_macros": []},
}
LIBDEFLATE_PROBE = "#include <libdeflate.h>\nint main(void){return libdeflate_crc32(0, 0, 0) != 0;}\n"


def libdeflate_available() -> bool:
    """Whether a C compiler here can include and link libdeflate."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        probe = pathlib.Path(tmp, "probe.c")
        probe.write_text(LIBDEFLATE_PROBE)
        result = subprocess.run(
            [cc, str(probe), "-o", str(pathlib.Path(tmp, "probe")), "-ldeflate"],
            capture_output=True,
            check=False,
        )
    return result.returncode == 0


def chosen_backend() -> str:
    """The backend named by the environment, else the fastest one present."""
    forced = os.environ.get("PYSTARGZ_NATIVE_BACKEND", "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise SystemExit(f"PYSTARGZ_NATIVE_BACKEND must be one of {sorted(BACKENDS)}, not {forced!r}")
        return forced
    return "libdeflate" if libdeflate_available() else "zlib"


def compile_args() -> tuple[list[str], list[str]]:
    """Optimised by default; instrumented when a sanitizer run asks for it."""
    if os.environ.get("PYSTARGZ_SANITIZE") == "1":
        flags = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
        return [*flags, "-fno-sanitize-recover=undefined"], ["-fsanitize=address,undefined"]
    return ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"], []


backend = chosen_backend()
extra_compile, extra_link = compile_args()
ffibuilder = FFI()
ffibuilder.cdef((SRC / "_inflate.h").read_text())
ffibuilder.set_source(
    "pystargz._inflate",
    '#include "_inflate.h"',
    sources=[str((SRC / "_inflate.c").relative_to(HERE))],
    include_dirs=[str(SRC)],
    extra_compile_args=extra_compile,
    extra_link_args=extra_link,
    **BACKENDS[backend],  # type: ignore[arg-type]
)
