"""C++ code from .proto files with the system protoc (no @com_google_protobuf offline)."""

def taskmoe_proto_library(name, srcs, deps = [], visibility = None):
    """A cc_library `name` over the protoc output of `srcs` (paths from the workspace root).

    Imports are resolved from the workspace root, so `import "moe/train/experiment.proto";` works.
    `deps` are other taskmoe_proto_library targets whose protos these import.
    """
    hdrs = [s[:-len(".proto")] + ".pb.h" for s in srcs]
    ccs = [s[:-len(".proto")] + ".pb.cc" for s in srcs]
    native.genrule(
        name = name + "_genproto",
        srcs = srcs + [d + "_protos" for d in deps],
        outs = hdrs + ccs,
        cmd = "protoc --proto_path=. --cpp_out=$(GENDIR) " +
              " ".join(["$(location %s)" % s for s in srcs]),
    )
    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [d + "_protos" for d in deps],
        visibility = visibility,
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        deps = deps + ["//third_party:protobuf"],
        visibility = visibility,
    )
