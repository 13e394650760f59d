"""Time the vision cleaning scorer's training: the full cleaning curve (one model per prefix
k = 0..n of a cleaning order) trained batched, against ``train`` called once per prefix.

Data: the original shapes, n=300 training rows with 30% of the labels flipped, 500 test rows,
two Gaussian classes, random order; at d=2048 (the original) and d=256 (ours). The batched
curve (``cleaning_curve``: distinct label vectors only, trained in stacks, the first layer's
optimizer fused into one pass) is timed whole, after a warm-up call. The one-by-one loops train
``--prefixes`` evenly spaced prefixes and are extrapolated to all n+1: the straightforward loop
(plain numpy operations, ``fused=False``) and the same loop with the fused optimizer; their
predictions on those prefixes must equal the batched curve's. With ``--torch K`` the original
PyTorch procedure is also timed on K prefixes, one torch thread, and extrapolated (torch must
be installed).

    python bench/bench_cleaning_trainer.py [--dims 2048 256] [--prefixes 30] [--torch 0]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from dataperf.learners.debug_linear import cleaning_curve, train


def make_data(n: int, dim: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n + n_test)
    mean = rng.normal(size=dim)
    mean *= 0.6 / np.linalg.norm(mean)
    x = (rng.normal(size=(n + n_test, dim)) / np.sqrt(dim) + np.outer(2 * labels - 1, mean)) * 3
    true = labels[:n]
    noisy = true.copy()
    flipped = rng.choice(n, size=round(0.3 * n), replace=False)
    noisy[flipped] = 1 - noisy[flipped]
    order = rng.permutation(n)
    return x[:n].astype(np.float32), noisy, true, order, x[n:].astype(np.float32), labels[n:]


def prefix_labels(noisy: np.ndarray, true: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
    labels = noisy.copy()
    labels[order[:k]] = true[order[:k]]
    return labels


def torch_seconds_per_model(x: np.ndarray, labels: list[np.ndarray]) -> float:
    import torch

    torch.set_num_threads(1)  # as in a scoring slot; with more, its threads wait on each other
    started = time.perf_counter()
    for y in labels:
        torch.manual_seed(42)
        model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 128), torch.nn.Linear(128, 1))
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.9)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        features, targets = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
        for _ in range(20):
            for start in range(0, len(x), 64):
                optimizer.zero_grad()
                logits = model(features[start : start + 64])[:, 0]
                loss_fn(logits, targets[start : start + 64]).backward()
                optimizer.step()
    return (time.perf_counter() - started) / len(labels)


def bench(dim: int, n_prefixes: int, n_torch: int) -> None:
    x, noisy, true, order, x_test, y_test = make_data(300, dim, 500)
    n = len(x)
    print(f"\nd={dim}: n={n} ({int((noisy != true).sum())} flipped), {len(x_test)} test rows")
    started = time.perf_counter()
    cleaning_curve(x[:, :8], noisy, true, order, x_test[:, :8], y_test)
    print(f"  warm-up (loads or compiles the fused kernel): {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    curve = cleaning_curve(x, noisy, true, order, x_test, y_test)
    t_batched = time.perf_counter() - started
    print(
        f"  batched curve:  {t_batched:7.2f} s for {n + 1} prefixes, {curve.trainings} distinct "
        f"trainings ({t_batched / curve.trainings * 1e3:.0f} ms each); accuracy "
        f"{curve.accuracy[0]:.3f} -> {curve.accuracy[-1]:.3f}"
    )

    prefixes = np.unique(np.linspace(0, n, min(n_prefixes, n + 1)).round().astype(int))
    subset = "" if len(prefixes) == n + 1 else f", extrapolated from {len(prefixes)} prefixes"
    for name, fused in (("one by one, plain numpy", False), ("one by one, fused optimizer", True)):
        same = True
        started = time.perf_counter()
        for k in prefixes:
            model = train(x, prefix_labels(noisy, true, order, k), fused=fused)
            same &= np.array_equal(model.predict(x_test) == y_test, curve.correct[k])
        per_model = (time.perf_counter() - started) / len(prefixes)
        t_loop = per_model * (n + 1)
        print(
            f"  {name + ':':29s}{t_loop:7.2f} s ({per_model * 1e3:.0f} ms per prefix{subset}); "
            f"same predictions: {same}; ratio to batched x{t_loop / t_batched:.1f}"
        )
    if n_torch:
        labels = [prefix_labels(noisy, true, order, k) for k in prefixes[:n_torch]]
        t_torch = torch_seconds_per_model(x, labels) * (n + 1)
        print(
            f"  torch one by one (the original): {t_torch:7.2f} s, extrapolated from "
            f"{len(labels)} prefixes; ratio to batched x{t_torch / t_batched:.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2048, 256])
    parser.add_argument("--prefixes", type=int, default=30)
    parser.add_argument("--torch", type=int, default=0, metavar="K")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for dim in args.dims:
        bench(dim, args.prefixes, args.torch)
    print(f"\nload average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
