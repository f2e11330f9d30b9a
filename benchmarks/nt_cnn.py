"""neural-tangents' empirical NTK of bench_kernels' cnn-bench, run in a separate environment (JAX, numpy < 2).

    <nt-env>/bin/python benchmarks/nt_cnn.py WEIGHTS.npz OUT.json [--repeats 3] [--impls 1 3]

WEIGHTS.npz (written by bench_kernels.py): x (N, C, H, W) float32, conv{i}_w (Cout, Cin, 3, 3), conv{i}_b,
readout_w (O, C), readout_b — the same network as the torch model, so the two kernels are compared value by
value. Times every implementation of ``nt.empirical_ntk_fn`` (1 Jacobian contraction, 2 NTK-vector
products, 3 structured derivatives; --impls picks them: 2 took 113 s where 1 and 3 took 4 s, cnn-bench
N = 64 on this CPU) on the full eNTK (trace_axes=()), after a compiling warm-up, on one
thread (XLA_FLAGS set before JAX is imported); writes {implementation: {seconds: [...], kernel_file}} and
the eNTK of each to OUT.json / OUT.impl{k}.npy. The environment: benchmarks/requirements-nt.txt.
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax
import jax.numpy as jnp
import neural_tangents as nt
import numpy as np
from neural_tangents import stax


def network(w: dict):
    """stax twin of bench_kernels.CNNBench in standard parameterization (raw weights, NHWC / HWIO)."""
    layers, params = [], []
    i = 0
    while f"conv{i}_w" in w:
        cout = w[f"conv{i}_w"].shape[0]
        layers += [stax.Conv(cout, (3, 3), padding="SAME", parameterization="standard"), stax.Relu()]
        params += [(jnp.asarray(w[f"conv{i}_w"].transpose(2, 3, 1, 0)), jnp.asarray(w[f"conv{i}_b"])), ()]
        i += 1
    o = w["readout_w"].shape[0]
    layers += [stax.GlobalAvgPool(), stax.Dense(o, parameterization="standard")]
    params += [(), (jnp.asarray(w["readout_w"].T), jnp.asarray(w["readout_b"]))]
    _, apply_fn, _ = stax.serial(*layers)
    return apply_fn, params


def main() -> None:
    weights, out = sys.argv[1], sys.argv[2]
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
    impls = (1, 2, 3)
    if "--impls" in sys.argv:
        impls = tuple(int(a) for a in sys.argv[sys.argv.index("--impls") + 1:] if a.isdigit())
    w = dict(np.load(weights))
    apply_fn, params = network(w)
    x = jnp.asarray(w["x"].transpose(0, 2, 3, 1))  # (N, H, W, C)
    res = {"jax": jax.__version__, "neural_tangents": nt.__version__, "n": int(x.shape[0])}
    for impl in impls:
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0, implementation=impl))
        try:
            fn(x[:2], None, params).block_until_ready()  # compile for the small shape, then for the real one
            k = fn(x, None, params).block_until_ready()
        except Exception as err:  # report and go on with the other implementations
            res[str(impl)] = {"error": f"{type(err).__name__}: {err}"[:300]}
            continue
        secs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(x, None, params).block_until_ready()
            secs.append(time.perf_counter() - t)
        np.save(f"{out}.impl{impl}.npy", np.asarray(k))  # (N, N, O, O)
        res[str(impl)] = {"seconds": secs, "kernel_file": f"{out}.impl{impl}.npy"}
        print(f"neural-tangents implementation {impl}: best {min(secs):.3f} s of {secs}", flush=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
