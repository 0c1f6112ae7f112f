"""One parser fuzzer: its LLVMFuzzerTestOneInput, a corpus replay test and a libFuzzer binary."""

def taskmoe_fuzzer(name, deps):
    """Defines <name>_fuzz_target, <name>_corpus_test and <name>_fuzzer.

    The corpus test replays corpus/<name>/ through the target with the normal toolchain, so
    `bazel test //...` checks every seed and every fixed finding. The `manual` <name>_fuzzer is
    the libFuzzer binary; only scripts/fuzz.sh builds it, with clang and the sanitizers.
    """
    native.cc_library(
        name = name + "_fuzz_target",
        testonly = True,
        srcs = [name + "_fuzzer.cc"],
        deps = deps,
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        args = ["tests/fuzz/corpus/" + name],
        data = native.glob(["corpus/%s/**" % name]),
        deps = [":replay_main", ":" + name + "_fuzz_target"],
    )
    native.cc_binary(
        name = name + "_fuzzer",
        testonly = True,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        deps = [":" + name + "_fuzz_target"],
    )
