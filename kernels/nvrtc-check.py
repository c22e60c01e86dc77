#!/usr/bin/env python3
"""Compiles every kernels/*.cu with NVRTC exactly as the CUDA backend does at run time (no host
headers, -std=c++17, the *.cuh files passed as named headers) and prints the log. Needs only
libnvrtc (e.g. Debian's nvidia-cuda-toolkit), no GPU:  python3 kernels/nvrtc-check.py [sm_80]"""
import ctypes, ctypes.util, glob, os, sys

here = os.path.dirname(os.path.abspath(__file__))
arch = sys.argv[1] if len(sys.argv) > 1 else "sm_80"
lib = ctypes.CDLL(ctypes.util.find_library("nvrtc") or "libnvrtc.so")
headers = sorted(glob.glob(os.path.join(here, "*.cuh")))
names = [os.path.basename(h).encode() for h in headers]
texts = [open(h, "rb").read() for h in headers]
failed = 0
for source in sorted(glob.glob(os.path.join(here, "*.cu"))):
    prog = ctypes.c_void_p()
    n = len(headers)
    arr = lambda xs: (ctypes.c_char_p * n)(*xs)
    status = lib.nvrtcCreateProgram(ctypes.byref(prog), open(source, "rb").read(), os.path.basename(source).encode(),
                                    n, arr(texts), arr(names))
    assert status == 0, status
    opts = [b"--gpu-architecture=" + arch.encode(), b"-default-device", b"-std=c++17"]
    status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace").strip()
    print(f"{os.path.basename(source)}: {'ok' if status == 0 else 'FAILED'}" + (f"\n{text}" if text else ""))
    failed += status != 0
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
sys.exit(1 if failed else 0)
