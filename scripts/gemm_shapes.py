#!/usr/bin/python3
"""How fast this machine's BLAS runs the GEMMs of the bart-base training step, shape by shape.

The % of GEMM peak in docs/performance.md divides the step's FLOPs by gemm_peak.py's rate on large
square-ish products. The step's own products are smaller: with soft routes (batched experts,
moe/model/batched_experts.cc) each of the `--threads` workers runs its block of the batch
single-threaded (with 2 threads and batch 8, a decoder projection has 64 rows), and every weight
gradient sums over only the rows of a worker. This
script times each product of the step at its own shape and layout (single-threaded, as a worker
runs it; the output projection on all threads, as the model runs it), and, for comparison, every
product on the whole batch with all threads (the `threads` split, as `bench
--concurrent_experts=false` runs them). It prints markdown tables and the rate a step would reach
if it did nothing but these GEMMs, as a % of the peak measured alongside (gemm_peak.py's
definition: the median over 1024^3 and 2048x768x3072 products). Operands are contiguous here;
in the step, attention's per-head operands are strided views of the projections, which BLAS reads
as they are (BatchedMatmul), so its small products may run slower than timed here.

  /usr/bin/python3 scripts/gemm_shapes.py [--threads 2] [--batch 8] [--src_len 64] [--tgt_len 16]
      [--split both|rows|threads]

Run it with Debian's interpreter (/usr/bin/python3, python3-torch), which links the same LibTorch
and OpenBLAS as the project's tools.
"""

import argparse
import statistics
import time

import torch

D, F, V, HEADS, LAYERS = 768, 3072, 50265, 12, 6  # bart-base


def row_blocks(batch, threads):
    """The block sizes the model splits a batch into (moe/model/expert_jobs.cc AppendRowBlocks):
    min(threads, batch) workers, blocks of ceil(batch / workers) rows, the last one shorter."""
    workers = min(threads, batch)
    block = -(-batch // workers)
    return [min(block, batch - begin) for begin in range(0, batch, block)]


def block_products(b, src_len, tgt_len, experts, product_threads):
    """(name, m, n, k, layout, count per layer) of one layer's expert work on b examples."""
    enc, dec, e, hd = b * src_len, b * tgt_len, experts, D // HEADS
    listed = []

    def linear(name, rows, out, inp, count):
        # forward x W^T, input gradient dY W, weight gradient dY^T x (summed over the rows)
        listed.append((name, rows, out, inp, "nt", count, product_threads))
        listed.append((name + " dX", rows, inp, out, "nn", count, product_threads))
        listed.append((name + " dW", out, inp, rows, "tn", count, product_threads))

    def attention(name, t, s, count):
        # per example, head and expert: scores q k^T and context p v, each with its two gradients;
        # single-threaded products, the matrices split over the threads (BatchedMatmul)
        for suffix, m, n, k, layout in ((" scores", t, s, hd, "nt"), (" scores dQ", t, hd, s, "nn"),
                                        (" scores dK", s, hd, t, "tn"), (" context", t, hd, s, "nn"),
                                        (" context dP", t, s, hd, "nt"),
                                        (" context dV", s, hd, t, "tn")):
            listed.append((name + suffix, m, n, k, layout, count, 1))

    linear("enc q/k/v (all experts)", enc, 3 * e * D, D, 1)
    attention("enc self-attn", src_len, src_len, e * b * HEADS)
    linear("enc out", enc, D, D, e)
    linear("enc fc1", enc, F, D, e)
    linear("enc fc2", enc, D, F, e)
    linear("dec q/k/v (all experts)", dec, 3 * e * D, D, 1)
    attention("dec self-attn", tgt_len, tgt_len, e * b * HEADS)
    linear("dec out", dec, D, D, e)
    linear("dec cross q", dec, D, D, e)
    linear("dec cross k/v (all experts)", enc, 2 * e * D, D, 1)
    attention("dec cross-attn", tgt_len, src_len, e * b * HEADS)
    linear("dec cross out", dec, D, D, e)
    linear("dec fc1", dec, F, D, e)
    linear("dec fc2", dec, D, F, e)
    return listed


def products(batch, src_len, tgt_len, experts, threads, split):
    """(name, m, n, k, layout, count, threads) of one training step; layout "nt" is x @ W^T.

    split "rows": each of the workers runs its block of rows single-threaded (the model's
    concurrent experts); "threads": every product on the whole batch with all threads
    (bench --concurrent_experts=false)."""
    blocks = row_blocks(batch, threads) if split == "rows" else [batch]
    product_threads = 1 if split == "rows" else threads
    rows = []
    for b in sorted(set(blocks)):
        for name, m, n, k, layout, count, t in block_products(b, src_len, tgt_len, experts,
                                                               product_threads):
            # each entry is per layer of its kind (6 encoder, 6 decoder layers) and per block
            rows.append((name, m, n, k, layout, count * LAYERS * blocks.count(b), t))
    tokens = batch * tgt_len
    rows.append(("output projection", tokens, V, D, "nt", 1, threads))
    rows.append(("output projection dX", tokens, D, V, "nn", 1, threads))
    rows.append(("output projection dW", V, D, tokens, "tn", 1, threads))
    return rows


def product_seconds(m, n, k, layout, threads, min_seconds):
    """Seconds of each timed product (after two untimed ones)."""
    torch.set_num_threads(threads)
    a = torch.randn(k, m).t() if layout == "tn" else torch.randn(m, k)
    b = torch.randn(n, k).t() if layout == "nt" else torch.randn(k, n)
    out = torch.empty(m, n)
    for _ in range(2):
        torch.mm(a, b, out=out)
    samples = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_seconds or len(samples) < 5:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        samples.append(time.perf_counter() - t0)
    return samples


def peak(threads, min_seconds):
    """GFLOP/s, as gemm_peak.py: the median over the samples of both shapes together."""
    rates = []
    for m, n, k in ((1024, 1024, 1024), (2048, 3072, 768)):
        rates += [2.0 * m * n * k / seconds / 1e9
                  for seconds in product_seconds(m, n, k, "nn", threads, min_seconds)]
    return statistics.median(rates)


def gemm_table(args, split, peak_all, peak_one):
    """Prints the products of one split and returns (GFLOP, seconds) of the step's GEMMs."""
    print(f"\n{split} split:\n")
    print("| product | m x n x k | layout | per step | threads | GFLOP/s | % of the peak on as many "
          "threads | GFLOP per step |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    total_flops = total_seconds = 0.0
    for name, m, n, k, layout, count, threads in products(
            args.batch, args.src_len, args.tgt_len, args.experts, args.threads, split):
        seconds = statistics.median(product_seconds(m, n, k, layout, threads, args.min_seconds))
        flops = 2.0 * m * n * k
        rate = flops / seconds / 1e9
        reference = peak_one if threads == 1 else peak_all
        print(f"| {name} | {m} x {n} x {k} | {layout} | {count} | {threads} | {rate:.1f} | "
              f"{100 * rate / reference:.0f}% | {flops * count / 1e9:.1f} |")
        total_flops += flops * count
        # the workers' single-threaded products run side by side
        side_by_side = args.threads if threads == 1 else 1
        total_seconds += seconds * count / side_by_side
    return total_flops / 1e9, total_seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="workers (the step's --threads)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--src_len", type=int, default=64)
    ap.add_argument("--tgt_len", type=int, default=16)
    ap.add_argument("--experts", type=int, default=3)
    ap.add_argument("--split", choices=("rows", "threads", "both"), default="both",
                    help="rows: a block of rows per single-threaded worker; threads: whole batch")
    ap.add_argument("--min_seconds", type=float, default=0.3, help="timing per shape")
    args = ap.parse_args()
    torch.manual_seed(0)

    peak_all = peak(args.threads, args.min_seconds)
    peak_one = peak(1, args.min_seconds)
    print(f"fp32 GEMM peak: {peak_all:.1f} GFLOP/s on {args.threads} threads, "
          f"{peak_one:.1f} on 1")
    splits = ("rows", "threads") if args.split == "both" else (args.split,)
    totals = {split: gemm_table(args, split, peak_all, peak_one) for split in splits}
    print("\nThe most a step made of nothing but these GEMMs reaches (workers perfectly balanced):\n")
    for split, (gflop, seconds) in totals.items():
        rate = gflop / seconds
        print(f"- {split} split: {gflop:.1f} GFLOP in {seconds:.2f} s, {rate:.1f} GFLOP/s, "
              f"{100 * rate / peak_all:.1f}% of the {args.threads}-thread peak")


if __name__ == "__main__":
    main()
