"""Time one RRR training step against one plain step (notebook 03's cost of double backprop).

    OMP_NUM_THREADS=1 python scripts/bench_rrr.py [--repeats 200] [--device cpu]

Both steps train the paper's MLP 784-50-30-10 on a batch of 256 random 28x28 images with Adam:
the plain step is cross-entropy; the RRR step is ``rrr.rrr_loss`` (cross-entropy plus the penalty
on annotated input gradients, one forward pass, a ``create_graph=True`` input gradient and one
backward through both). Prints the median time per step of each (CPU time of this process on a
CPU, wall time on CUDA) and their ratio (target <= 3x).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import hvnotes
from hvnotes import models, rrr


def step_times(loss_fn, model, x, y, repeats: int, sync, clock) -> list[float]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for i in range(repeats + 10):  # the first 10 steps warm up (allocator, Adam state)
        sync()
        start = clock()
        out = loss_fn(model, x, y)
        loss = out[0] if isinstance(out, tuple) else out
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        if i >= 10:
            times.append(clock() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args(argv)
    device = hvnotes.setup(0)
    if args.device != "auto":
        device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    # On a CPU shared with other jobs, wall time counts the waiting; this process's CPU time does not.
    clock = time.perf_counter if device.type == "cuda" else time.process_time

    x = torch.rand(args.batch_size, 28, 28, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    annotations = torch.zeros_like(x, dtype=torch.bool)
    annotations[:, :4, :4] = True  # a Decoy-MNIST-like swatch

    def plain(model, xb, yb):
        return torch.nn.functional.cross_entropy(model(xb), yb)

    def right_reasons(model, xb, yb):
        return rrr.rrr_loss(model, xb, yb, annotations, 100.0)

    print(
        f"device {device}, torch threads {torch.get_num_threads()}, MLP 784-50-30-10, "
        f"batch {args.batch_size}"
    )
    results: dict[str, list[float]] = {}
    # Interleave the two kinds in rounds so that a load change on a shared machine hits both.
    for _ in range(3):
        for name, fn in [("plain", plain), ("rrr", right_reasons)]:
            torch.manual_seed(0)
            model = models.mlp(784, (50, 30), 10).to(device)
            times = step_times(fn, model, x, y, args.repeats // 3, sync, clock)
            results.setdefault(name, []).extend(times)
    plain_ms = 1e3 * statistics.median(results["plain"])
    rrr_ms = 1e3 * statistics.median(results["rrr"])
    print(f"plain step (cross-entropy):         {plain_ms:7.3f} ms")
    print(f"RRR step (CE + input-grad penalty): {rrr_ms:7.3f} ms")
    print(f"ratio RRR / plain: {rrr_ms / plain_ms:.2f}x (target <= 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
