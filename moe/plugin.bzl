"""Bazel macros for plugins: a routing strategy or a task-embedding method is one folder.

    load("//moe:plugin.bzl", "routing_plugin")
    routing_plugin(name = "my_routing", srcs = ["my_routing.cc"], proto = "my_routing.proto")

builds the plugin's params message (`<name>_proto`) and the plugin itself as an `alwayslink`
library (static registration survives linking) on the core's plugin interface. Add the target to
the umbrella (`//routing_plugins:all` or `//task_embeddings:all`) to link it into every tool.
"""

load("//third_party:proto.bzl", "taskmoe_proto_library")

def _plugin(name, srcs, proto, proto_deps, deps, interface, visibility):
    own_deps = []
    if proto:
        taskmoe_proto_library(
            name = name + "_proto",
            srcs = [proto],
            deps = proto_deps,
            visibility = visibility,
        )
        own_deps = [":" + name + "_proto"]
    native.cc_library(
        name = name,
        srcs = srcs,
        alwayslink = True,
        deps = own_deps + deps + [interface, "//third_party:absl", "//third_party:torch"],
        visibility = visibility,
    )

def routing_plugin(name, srcs, proto = None, proto_deps = [], deps = [], visibility = ["//visibility:public"]):
    """A routing plugin: `srcs` register it with TASKMOE_REGISTER_ROUTING_PLUGIN.

    Args:
      name: the Bazel target (by convention the registered name).
      srcs: the plugin's .cc files.
      proto: its params message (.proto), if it has one.
      proto_deps: proto libraries that `proto` imports.
      deps: further libraries the sources use.
      visibility: who may link it.
    """
    _plugin(name, srcs, proto, proto_deps, deps, "//moe/routing", visibility)

def task_embedding_plugin(name, srcs, proto = None, proto_deps = [], deps = [], visibility = ["//visibility:public"]):
    """A task-embedding method: `srcs` register it with TASKMOE_REGISTER_TASK_EMBEDDING.

    Args as routing_plugin's.
    """
    _plugin(name, srcs, proto, proto_deps, deps, "//moe/embedding:task_embedding", visibility)
