"""The LibTorch repository: Debian's libtorch-dev by default, or any unpacked LibTorch.

Set `--repo_env=TASKMOE_LIBTORCH=/path/to/libtorch` (a directory with include/ and lib/,
e.g. the official CUDA zip) to build the same targets against it; CUDA libraries found
there are linked so that torch::cuda::is_available() sees the GPU.
"""

_DEBIAN_INCLUDE_DIRS = ["ATen", "c10", "caffe2", "torch"]

def _libtorch_repository_impl(ctx):
    root = ctx.os.environ.get("TASKMOE_LIBTORCH", "")
    defines = ["USE_C10D_GLOO"]
    if root:
        include = ctx.path(root + "/include")
        lib = root + "/lib"
        if not include.exists:
            fail("TASKMOE_LIBTORCH=%s has no include/ directory" % root)
        for entry in include.readdir():
            ctx.symlink(entry, "include/" + entry.basename)
        libs = ["torch", "torch_cpu", "c10"]
        if ctx.path(lib + "/libtorch_cuda.so").exists:
            libs += ["torch_cuda", "c10_cuda"]
            defines.append("USE_C10D_NCCL")
        linkopts = ["-L" + lib, "-Wl,-rpath," + lib, "-Wl,--no-as-needed"] + \
                   ["-l" + l for l in libs] + ["-Wl,--as-needed"]
    else:
        for d in _DEBIAN_INCLUDE_DIRS:
            ctx.symlink("/usr/include/" + d, "include/" + d)
        linkopts = ["-ltorch", "-ltorch_cpu", "-lc10"]
    ctx.file("BUILD", """
cc_library(
    name = "libtorch",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh"]),
    includes = ["include", "include/torch/csrc/api/include"],
    defines = {defines},
    linkopts = {linkopts} + ["-lpthread"],
    visibility = ["//visibility:public"],
)
""".format(linkopts = repr(linkopts), defines = repr(defines)))

libtorch_repository = repository_rule(
    implementation = _libtorch_repository_impl,
    environ = ["TASKMOE_LIBTORCH"],
    local = True,
)
