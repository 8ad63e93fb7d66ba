"""Time one AND-mask training step against an ERM step and against the reference code's loop.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_andmask.py [--repeats 7] [--steps 20]

Model: the paper-size spirals MLP 34 -> 256 -> 256 -> 256 -> 2 (ReLU; 2 mechanism + 32 shortcut
inputs, larger than the 18-input network notebook 02 trains), cross-entropy, Adam. Two settings:
32 environments x 32 examples (the spirals benchmark) and 80 environments x 1 example (random
labels, every example its own environment). Each line times one full training step on the same
env-stacked batch:

* ``erm``       one forward/backward on the pooled batch + Adam step;
* ``and_mask``  ``hvnotes.andmask.and_mask_step`` (one pooled forward/backward, sign counts
                formed block by block, mask, Adam step);
* ``vmap``      ``env_gradients`` (``torch.func.vmap(grad)``) + ``masked_gradient`` + Adam step;
* ``loop``      a Python loop over environments: each its own forward and ``autograd.grad``
                (as DomainBed does; the paper's code instead backpropagates every
                environment through one retained pooled graph, which is slower still)
                + mask + Adam step.

Targets (issue 5): 32 x 32: and_mask <= 2.0x erm; 80 x 1: and_mask >= 4x faster than loop.
Timings are medians over interleaved repeats (the machine may be shared). Not a test: prints.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from hvnotes import andmask, models


def make_steps(model, opt, xs, ys, tau):
    params = dict(model.named_parameters())
    x_flat, y_flat = xs.flatten(0, 1), ys.flatten(0, 1)
    n_envs = xs.shape[0]

    def erm():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x_flat), y_flat).backward()
        opt.step()

    def and_mask():
        andmask.and_mask_step(model, F.cross_entropy, xs, ys, opt, tau, rescale=True)

    def write_and_step(grads):
        with torch.no_grad():
            for name, g in grads.items():
                params[name].grad = andmask.masked_gradient(g, tau, rescale=True)
        opt.step()

    def vmap():
        write_and_step(andmask.env_gradients(model, F.cross_entropy, xs, ys))

    def loop():
        names, tensors = zip(*params.items(), strict=True)
        per_env = [
            torch.autograd.grad(F.cross_entropy(model(xs[e]), ys[e]), tensors)
            for e in range(n_envs)
        ]
        write_and_step({n: torch.stack([g[i] for g in per_env]) for i, n in enumerate(names)})

    return {"erm": erm, "and_mask": and_mask, "vmap": vmap, "loop": loop}


def bench(n_envs: int, batch: int, tau: float, repeats: int, steps: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = models.mlp(34, (256, 256, 256), 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    xs = torch.randn(n_envs, batch, 34)
    ys = torch.randint(0, 2, (n_envs, batch))
    fns = make_steps(model, opt, xs, ys, tau)
    times = {name: [] for name in fns}
    for fn in fns.values():  # warm up
        for _ in range(3):
            fn()
    for _ in range(repeats):  # interleaved, so a burst of load hits every method alike
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, MLP 34-256-256-256-2")
    for n_envs, batch, tau in ((32, 32, 0.8), (80, 1, 0.2)):
        ms = bench(n_envs, batch, tau, args.repeats, args.steps)
        print(f"\n{n_envs} environments x {batch} example(s), tau={tau}: ms per step (median)")
        for name, value in ms.items():
            print(f"  {name:9s} {value:8.2f} ms   {value / ms['erm']:5.2f}x erm")
        print(f"  and_mask vs erm:  {ms['and_mask'] / ms['erm']:.2f}x  (target <= 2.0x at 32 x 32)")
        print(
            f"  loop vs and_mask: {ms['loop'] / ms['and_mask']:.2f}x faster  (target >= 4x at 80 x 1)"
        )
        print(f"  loop vs vmap:     {ms['loop'] / ms['vmap']:.2f}x faster")


if __name__ == "__main__":
    main()
