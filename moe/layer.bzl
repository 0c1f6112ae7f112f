"""What every layer package of the core declares besides its libraries."""

def layer_sources():
    """`:sources`, every file of the package, for tests/core_boundary_test.cc."""
    native.filegroup(
        name = "sources",
        srcs = native.glob(["*"]),
        visibility = ["//moe:__pkg__", "//tests:__pkg__"],
    )
