"""What an iterative regression holds, counted against ``memory_cap_bytes`` — one rule for the solver and for
`pntk plan`.

Streaming (Θ(D, D) read per product): each worker's stored tile and float64 strip, the CG vectors, the
diagonal, the sketch's per-block temporaries (pivot rows, residual columns, their product) and the
preconditioner (F, its (k, k) core and the float64 panel FᵀF is built from). The rank is cut so that all of
it fits; where the tiles alone exceed the cap, fewer workers stream, and where one tile does, the solver says
by how much the cap is exceeded (a store's tile size is fixed when it is written). Resident (tiles kept): the
kept tiles, the preconditioner, the CG vectors and the strips.
"""
from __future__ import annotations

from .operator import STRIP_BYTES
from .rpcholesky import BLOCK, PANEL_BYTES

NYSTROM_RANK = 1000  # default landmark columns; iterations ≈ 10·√(λ_ℓ/(λ_min + ridge)): see BENCHMARKS.md
# (n, block) float64 arrays alive during one pivot block of rp_cholesky: the pivot rows and their transpose,
# F's part of them (in F's dtype and converted), the new columns and their square; freed ones count too, as
# glibc keeps freed blocks of this size in the heap (measured: 6,000² store at a 64 MiB cap, BENCHMARKS.md)
SKETCH_TEMPORARIES = 8
CG_VECTORS = 10  # float64 (n, R) vectors of a CG solve: X, R, Z, P, AP, and each product's transposed operands


def stream_bytes(tile_bytes: int, workers: int) -> float:
    """Each streaming worker's stored tile (read into its buffer) and its float64 strip."""
    return workers * (float(tile_bytes) + STRIP_BYTES)


def sketch_block(n: int, cap: int) -> int:
    """Pivots per block of the randomly pivoted Cholesky: BLOCK, fewer (at least 32) where its temporaries
    (SKETCH_TEMPORARIES float64 (n, block)) would take more than a quarter of the cap."""
    return max(32, min(BLOCK, int(cap / 4 / (SKETCH_TEMPORARIES * 8.0 * max(n, 1)))))


def solve_overhead(n: int, rhs: int, landmarks: str, nystrom: bool, cap: int) -> float:
    """CG vectors (CG_VECTORS float64 (n, R): X, R, Z, P, AP and the workers' products), the diagonal, and for
    a pivoted-Cholesky sketch its per-block temporaries."""
    sketch = SKETCH_TEMPORARIES * 8.0 * n * sketch_block(n, cap) if nystrom and landmarks == "rpcholesky" else 0.0
    return 8.0 * (CG_VECTORS * n * rhs + n) + sketch


def preconditioner_bytes(n: int, rank: int, landmarks: str, itemsize: int, nystrom: bool = True) -> float:
    """What the preconditioner holds: F (n, k) in `itemsize` bytes, a float64 (k, k) and the float64 panel FᵀF
    is built from (rpcholesky); two float64 (n, ℓ) (uniform); the inverse diagonal (Jacobi CG)."""
    if not nystrom:
        return 8.0 * n
    if landmarks == "rpcholesky":
        return float(itemsize) * n * rank + 8.0 * rank * rank + min(PANEL_BYTES, 8.0 * n * rank)
    return 2 * 8.0 * n * rank


def nystrom_rank(n: int, rank: int | None, cap: int, landmarks: str = "rpcholesky", itemsize: int = 8,
                 overhead: float = 0.0) -> int:
    """Landmark columns: ``rank`` (default NYSTROM_RANK), at most n, and at most what lets the preconditioner
    (``preconditioner_bytes``) fit in the cap beside ``overhead`` (the streaming buffers and CG vectors)."""
    want = min(NYSTROM_RANK if rank is None else int(rank), n)
    budget = cap - overhead
    lo, hi = 1, max(1, want)
    if preconditioner_bytes(n, hi, landmarks, itemsize) <= budget:
        return hi
    while lo < hi:  # the largest k that fits (the bytes grow with k)
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if preconditioner_bytes(n, mid, landmarks, itemsize) <= budget else (lo, mid - 1)
    return lo


def streaming_workers(tile_bytes: int, threads: int, n_tiles: int, n: int, rhs: int, landmarks: str,
                      nystrom: bool, cap: int) -> tuple[int, float]:
    """(workers, overhead): as many tile workers as `threads` allow whose buffers, with the solve's own
    vectors and a rank-1 preconditioner, fit the cap; at least one (then the overhead may exceed the cap)."""
    workers = max(1, min(threads, n_tiles))
    while True:
        overhead = stream_bytes(tile_bytes, workers) + solve_overhead(n, rhs, landmarks, nystrom, cap)
        if workers == 1 or overhead + preconditioner_bytes(n, 1, landmarks, 8, nystrom) <= cap:
            return workers, overhead
        workers -= 1


def resident_plan(op_bytes: int, n: int, rhs: int, pre_bytes: float, cap: int, workers: int) -> tuple[bool, float]:
    """(whether Θ(D, D) is kept in memory, the bytes the iterative solve then holds): the stored tiles of one
    pass (``op_bytes``, the upper triangle of a symmetric store in its dtype), the preconditioner, the CG
    vectors and each worker's float64 strip, all under the cap; else it streams."""
    held = op_bytes + pre_bytes + 8.0 * CG_VECTORS * n * rhs + workers * STRIP_BYTES
    return held <= cap, held


def rank_cut_reason(n: int, landmarks: str, itemsize: int, cap: int, overhead: float) -> str:
    held = (f"F ({n}, rank) in {itemsize}-byte floats, one (rank, rank) float64 matrix and FᵀF's float64 panel"
            if landmarks == "rpcholesky" else f"two ({n}, rank) float64 matrices")
    return (f"{held} fit the cap {cap / 2**20:.0f} MiB beside {overhead / 2**20:.0f} MiB of streaming buffers, "
            f"CG vectors and sketch temporaries")


def release_freed_memory() -> bool:
    """Hand freed heap pages back to the OS (glibc's malloc_trim) before a job's memory-heavy phase.
    Reading the prepared CIFAR-10 inputs left 0.43 GB of freed but resident heap (measured: 1.08 → 0.66 GB
    RSS) under the regression's 2.4 GB factor and 1.15 GB Gram. False where there is no glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):  # musl, macOS: no malloc_trim
        return False
    trim(0)
    return True
