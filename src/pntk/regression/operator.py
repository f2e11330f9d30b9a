"""A kernel matrix Θ (+ ridge·I) as a linear operator that streams its tiles from a Zarr store.

Kernels may be np.ndarray, torch.Tensor or zarr.Array (or a path to a Zarr group holding array
``kernel``). Layouts: pNTK (N1, N2); eNTK (N1, N2, O, O), flattened to (N1·O, N2·O) with row n*O+a.

One pass (``matmat``, ``columns``, ``to_dense``) reads every tile once: a zarr chunk, or a virtual
square tile of ≤ ``block_bytes`` (float64) for in-memory kernels. Tiles are split statically among
``threads`` workers (tile k → worker k mod W), each reading (decoding) its tiles and multiplying them
in float64 row strips that stay in cache, into a private accumulator; the accumulators are summed in
worker order, so a result depends on the thread count but not on scheduling. Resident memory is one
decoded tile per worker plus the operands — never N². ``symmetric=True`` reads only the upper tile
triangle and uses each off-diagonal tile B_IJ for B_IJ v_J and B_IJᵀ v_I, halving the reads.

``make_resident()`` reads every tile of a pass once more and keeps them, in the stored dtype (float32 stays
float32), on the operator's device (host RAM or GPU memory): later passes multiply the kept tiles with the
same workers and the same float64 strips, so their results equal the streaming ones bit for bit, without a
read. ``resident_nbytes`` says what that holds (the upper tile triangle of a symmetric kernel).
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..store.raw_chunks import RawChunks
from ..tiling import TileGrid

STRIP_BYTES = 4 << 20  # float64 rows converted at a time: small enough to stay in L2/L3 cache


def kernel_operand(k):
    """A str/PathLike names a Zarr group with array ``kernel`` (a local path, or an s3:// or http(s):// URL:
    read lazily, chunk by chunk); anything else is returned as is."""
    if isinstance(k, (str, os.PathLike)):
        import zarr

        from ..store.remote import zarr_store

        try:
            return zarr.open_group(zarr_store(k, read_only=True), mode="r")["kernel"]
        except (KeyError, FileNotFoundError) as e:
            raise ValueError(f"{k}: expected a Zarr group with array 'kernel' ({e})") from e
    if not hasattr(k, "shape") or not hasattr(k, "__getitem__"):
        raise TypeError(f"kernel must be an ndarray, torch.Tensor, zarr.Array or path; got {type(k)}")
    return k


def describe_kernel(k) -> str:
    """Where a kernel lives, for error messages: the store's path, or the in-memory type and shape."""
    store = getattr(k, "store", None)
    root = getattr(store, "root", None)
    if root is not None:
        return f"store {root}" + (f" array {k.path}" if getattr(k, "path", "") else "")
    return f"in-memory {type(k).__name__} {tuple(k.shape)}"


class ZarrKernelOperator:
    """Θ (+ ridge·I when square) as a linear operator of flat shape (N1·O, N2·O)."""

    def __init__(self, k, *, ridge: float = 0.0, block_bytes: int = 64 << 20, device="cpu",
                 symmetric: bool = False, threads: int | None = None):
        self.k = kernel_operand(k)
        shape = tuple(self.k.shape)
        if len(shape) not in (2, 4) or (len(shape) == 4 and shape[2] != shape[3]):
            raise ValueError(f"kernel shape {shape}: expected (N1, N2) or (N1, N2, O, O)")
        self.n1, self.n2 = shape[:2]
        self.o = shape[2] if len(shape) == 4 else 1
        self.shape = (self.n1 * self.o, self.n2 * self.o)  # flat (N1·O, N2·O)
        self.ridge = float(ridge)
        self.device = torch.device(device)
        if self.ridge and self.n1 != self.n2:
            raise ValueError(f"ridge needs a square kernel; got {shape}")
        if symmetric and self.n1 != self.n2:
            raise ValueError(f"symmetric needs a square kernel; got {shape}")
        self.symmetric = symmetric
        self.where = describe_kernel(self.k)
        chunks = None if isinstance(self.k, (np.ndarray, torch.Tensor)) else getattr(self.k, "chunks", None)
        if chunks:
            tile = (int(chunks[0]), int(chunks[1]))
        else:  # in memory: virtual square tiles of ≤ block_bytes in float64
            side = max(1, math.isqrt(max(1, block_bytes // (8 * self.o * self.o))))
            tile = (min(side, max(1, self.n1)), min(side, max(1, self.n2)))
        self.grid = TileGrid(self.n1, self.n2, tile[0], symmetric, col_tile=tile[1])  # a pass: grid.tiles()
        self.tile = (self.grid.tile, self.grid.col_tile)
        self.threads = max(1, int(threads or torch.get_num_threads()))
        # Uncompressed local stores: chunk files read straight into per-worker buffers (no allocation per tile)
        self.raw = RawChunks.of(self.k) if chunks and len(shape) == 2 else None
        self._diagonal = None  # Θ's diagonal once read (without the ridge)
        self.resident: dict[tuple[int, int], torch.Tensor] | None = None  # (r0, c0) → tile, once made resident
        self._buffers: dict[tuple[str, int], object] = {}  # per-worker tile and strip buffers, kept
        self.passes = 0  # full sweeps over the kernel
        self.read_seconds = 0.0  # summed over workers: time spent reading/decoding tiles
        self.pass_seconds = 0.0  # wall time of all passes
        if symmetric:
            self.check_symmetric()  # only the upper tile triangle is read: it must stand for the lower

    @property
    def block_nbytes(self) -> int:
        """float64 bytes of one tile (what ``columns`` and dense reads convert at a time)."""
        return 8 * self.o * self.o * self.tile[0] * self.tile[1]

    @property
    def stored_block_nbytes(self) -> int:
        """Bytes of one tile in the stored dtype: what one worker holds during ``matmat`` (it converts
        float64 row strips of STRIP_BYTES, never the whole tile)."""
        item = np.dtype(getattr(self.k, "dtype", np.float64)).itemsize if not isinstance(self.k, torch.Tensor) \
            else self.k.element_size()
        return item * self.o * self.o * self.tile[0] * self.tile[1]

    def _worker_buffer(self, what: str, w: int):
        """Worker w's tile buffer (raw chunk reads) or float64 strip buffer, allocated once and kept: a fresh one
        per pass was freed into glibc's heap and kept there too (a 64 MiB-cap solve peaked 50 MiB higher)."""
        key = (what, w)
        if key not in self._buffers:
            if what == "tile":
                self._buffers[key] = self.raw.buffer() if self.raw is not None else None
            else:
                self._buffers[key] = torch.empty(STRIP_BYTES // 8 + self.tile[1] * self.o, dtype=torch.float64) \
                    if self.device.type == "cpu" else None
        return self._buffers[key]

    @property
    def resident_nbytes(self) -> int:
        """Bytes the tiles of one pass take in the stored dtype: what ``make_resident`` keeps."""
        item = self.stored_block_nbytes // max(1, self.o * self.o * self.tile[0] * self.tile[1])
        return sum(item * self.o * self.o * (r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in self.tiles())

    def make_resident(self) -> None:
        """Read every tile of a pass once and keep it (stored dtype, on the device); idempotent."""
        if self.resident is not None:
            return
        tiles: dict[tuple[int, int], torch.Tensor] = {}
        t0 = time.perf_counter()
        buffer = self.raw.buffer() if self.raw is not None else None  # chunk files read into it, then copied
        for r0, r1, c0, c1 in self.tiles():
            tile = self.read(r0, r1, c0, c1, buffer)
            tiles[(r0, c0)] = tile.to(self.device, copy=True).contiguous()  # (Δr·O, Δc·O), its own memory
        self.read_seconds += time.perf_counter() - t0
        self.resident = tiles

    def tiles(self) -> list[tuple[int, int, int, int]]:
        """Sample ranges (r0, r1, c0, c1) of the tiles one pass reads: all, or the upper triangle."""
        return self.grid.bounds()

    def read(self, r0: int, r1: int, c0: int, c1: int, buffer: np.ndarray | None = None) -> torch.Tensor:
        """Samples r0:r1 × c0:c1 as a flat (Δr·O, Δc·O) tensor in the stored dtype, on the CPU
        (in-memory tensors: wherever they are). One zarr chunk per call when the range is one tile;
        with ``buffer`` (from ``self.raw.buffer()``) that chunk's file is read into it and a view returned."""
        if self.resident is not None and (r0, c0) in self.resident:
            tile = self.resident[(r0, c0)]
            if tile.shape == ((r1 - r0) * self.o, (c1 - c0) * self.o):
                return tile
        if buffer is not None and self.raw is not None and r0 % self.tile[0] == 0 and c0 % self.tile[1] == 0 \
                and r1 - r0 <= self.tile[0] and c1 - c0 <= self.tile[1]:
            self.raw.read_chunk((r0 // self.tile[0], c0 // self.tile[1]), buffer)
            return torch.from_numpy(buffer)[: r1 - r0, : c1 - c0]  # a view: valid until the next read
        t = self.k[r0:r1, c0:c1]
        t = t if isinstance(t, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(t))
        if t.ndim == 4:  # (r, c, O, O) → (r, O, c, O) → (r·O, c·O): row index n*O+a
            t = t.permute(0, 2, 1, 3).reshape((r1 - r0) * self.o, (c1 - c0) * self.o)
        return t

    def stream(self, work) -> None:
        """One pass: ``work(worker, r0, r1, c0, c1, tile)`` for every tile, on ``threads`` workers.
        Flat row/col offsets are r0·O, c0·O; ``tile`` is on the device, in the stored dtype."""
        tiles = self.tiles()
        n_workers = min(self.threads, len(tiles))
        t0 = time.perf_counter()
        reading = [0.0] * n_workers  # per worker: no shared counter between threads

        def worker(w: int) -> None:
            if self.resident is not None:  # kept tiles: no read, the same split among the workers
                for r0, r1, c0, c1 in tiles[w::n_workers]:
                    work(w, r0, r1, c0, c1, self.resident[(r0, c0)])
                return
            buffer = self._worker_buffer("tile", w)  # one tile per worker, kept across passes
            for r0, r1, c0, c1 in tiles[w::n_workers]:
                t_read = time.perf_counter()
                tile = self.read(r0, r1, c0, c1, buffer)
                reading[w] += time.perf_counter() - t_read
                work(w, r0, r1, c0, c1, tile.to(self.device))

        if n_workers <= 1:
            worker(0)
        else:
            # The workers are the parallelism: each torch op inside them on one thread. With torch's own
            # threads as well, W workers ran W × T threads on T cores and a pass took 6.4 s instead of
            # 3.3 s (N = 50,000, 2 cores, measured).
            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(n_workers, thread_name_prefix="pntk-tiles") as ex:
                    for f in [ex.submit(worker, w) for w in range(n_workers)]:
                        f.result()  # re-raises a worker's exception
            finally:
                torch.set_num_threads(before)
        self.passes += 1
        self.read_seconds += sum(reading)
        self.pass_seconds += time.perf_counter() - t0

    def _strips(self, tile: torch.Tensor, buffer: torch.Tensor | None = None):
        """(start, float64 row strip) pieces of a tile; one piece on a GPU (no cache to fit). On the CPU
        each strip is converted into ``buffer`` (float64, ≥ STRIP_BYTES, reused: a fresh 4 MB strip per
        step page-faulted and made a tile's products 4× slower, measured)."""
        if tile.device.type != "cpu":
            yield 0, tile.to(torch.float64)
            return
        rows = max(1, STRIP_BYTES // (8 * max(1, tile.shape[1])))
        if buffer is None or buffer.numel() < rows * tile.shape[1]:
            buffer = torch.empty(rows * tile.shape[1], dtype=torch.float64)
        for s in range(0, tile.shape[0], rows):
            n = min(rows, tile.shape[0] - s)
            strip = buffer[: n * tile.shape[1]].view(n, tile.shape[1])
            strip.copy_(tile[s : s + n])
            yield s, strip  # (≤rows, Δc·O), valid until the next strip

    def matmat(self, v: torch.Tensor) -> torch.Tensor:
        """(N2·O, R) float64 → (N1·O, R), streaming the kernel once (or multiplying the kept tiles).

        Computed transposed, Vᵀ (R, N2·O) → (R, N1·O): each strip S (Δs rows) adds Vᵀ_c Sᵀ and, mirrored,
        Vᵀ_rows S — GEMMs with N2-long rows, 4.3× faster than S V_c and Sᵀ V_rows with R = 10 columns (one
        6,000² float32 tile, one thread: 0.089 against 0.385 s, measured)."""
        if v.shape[0] != self.shape[1]:
            raise ValueError(f"matmat: operand has {v.shape[0]} rows, kernel has {self.shape[1]} columns")
        o, v = self.o, v.to(device=self.device, dtype=torch.float64)
        vt = v.T.contiguous()  # (R, N2·O)
        n_workers = min(self.threads, len(self.tiles()))
        outs = [torch.zeros(v.shape[1], self.shape[0], dtype=torch.float64, device=self.device)
                for _ in range(n_workers)]  # (R, N1·O) each
        strip_buffers = [self._worker_buffer("strip", w) for w in range(n_workers)]

        def work(w, r0, r1, c0, c1, tile):
            out, vt_c = outs[w], vt[:, c0 * o : c1 * o]
            for s, strip in self._strips(tile, strip_buffers[w]):  # strip (Δs, Δc·O)
                rows = slice(r0 * o + s, r0 * o + s + strip.shape[0])
                out[:, rows].addmm_(vt_c, strip.T)  # (R, Δs) += (R, Δc·O) @ (Δc·O, Δs); in place
                if self.symmetric and c0 != r0:  # mirrored tile B_JI = B_IJᵀ
                    out[:, c0 * o : c1 * o].addmm_(vt[:, rows], strip)  # (R, Δc·O) += (R, Δs) @ (Δs, Δc·O)

        self.stream(work)
        out_t = outs[0]
        for extra in outs[1:]:
            out_t += extra
        out = out_t.T.contiguous()  # (N1·O, R)
        if self.ridge:
            out += self.ridge * v
        if not bool(torch.isfinite(out).all()) and bool(torch.isfinite(v).all()):
            raise ValueError(f"{self.where}: kernel contains NaN/inf (unwritten tiles of a store are NaN)")
        return out

    __call__ = matmat

    def columns(self, idx) -> torch.Tensor:
        """Flat columns ``idx`` (sorted, unique) of Θ + ridge·I → float64 (N1·O, len(idx)), one pass.
        Each tile writes its own rows of the result (and, mirrored, its own rows of the transposed
        tile), so workers write disjoint parts of one shared matrix."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= self.shape[1]):
            raise ValueError(f"columns: indices must be sorted, unique and in [0, {self.shape[1]})")
        o = self.o
        out = torch.full((self.shape[0], idx.size), math.nan, dtype=torch.float64, device=self.device)

        def picks(lo, hi):  # (positions in idx, local offsets) of the indices in [lo, hi)
            a, b = np.searchsorted(idx, [lo, hi])
            return torch.arange(a, b, device=self.device), torch.as_tensor(idx[a:b] - lo, device=self.device)

        def work(w, r0, r1, c0, c1, tile):
            pos, loc = picks(c0 * o, c1 * o)
            if pos.numel():
                out[r0 * o : r1 * o, pos] = tile[:, loc].to(torch.float64)
            if self.symmetric and c0 != r0:
                pos, loc = picks(r0 * o, r1 * o)
                if pos.numel():
                    out[c0 * o : c1 * o, pos] = tile[loc].T.to(torch.float64)

        self.stream(work)
        if self.ridge and idx.size:
            out[torch.as_tensor(idx, device=self.device), torch.arange(idx.size, device=self.device)] += self.ridge
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"{self.where}: kernel contains NaN/inf (unwritten tiles of a store are NaN)")
        return out

    def rows(self, idx) -> torch.Tensor:
        """Flat rows ``idx`` (sorted, unique) of Θ, without the ridge → float64 (len(idx), N2·O). On an
        uncompressed local store each row is one ``pread`` per tile column (a pivoted Cholesky reads a
        few thousand rows, not the store); otherwise the rows' samples are read through zarr."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= self.shape[0]):
            raise ValueError(f"rows: indices must be sorted, unique and in [0, {self.shape[0]})")
        o, grid = self.o, self.grid
        if self.resident is not None and self.symmetric:
            out = self._resident_rows(idx)
        elif self.raw is not None:  # 2-D store: O = 1
            out = torch.empty(idx.size, self.n2, dtype=torch.float64)
            n_row_tiles, n_col_tiles = grid.shape
            for i in range(n_row_tiles):
                rs = grid.row_range(i)
                a, b = np.searchsorted(idx, [rs.start, rs.stop])
                if a == b:
                    continue
                buf = np.empty((b - a, self.raw.chunk_shape[1]), dtype=self.raw.dtype)
                for j in range(n_col_tiles):
                    cs = grid.col_range(j)
                    self.raw.read_rows((i, j), idx[a:b] - rs.start, buf)
                    out[a:b, cs] = torch.from_numpy(buf[:, : cs.stop - cs.start])
        else:
            samples = np.unique(idx // o)
            k = self.k
            if isinstance(k, torch.Tensor):
                part = k[torch.as_tensor(samples, device=k.device)].cpu()
            elif isinstance(k, np.ndarray):
                part = torch.from_numpy(np.ascontiguousarray(k[samples]))
            else:  # zarr: the orthogonal selection reads only the chunks of those rows
                part = torch.from_numpy(np.ascontiguousarray(k.get_orthogonal_selection((samples, slice(None)))))
            if part.ndim == 4:  # (s, N2, O, O) → (s, O, N2, O) → (s·O, N2·O): row index n*O+a
                part = part.permute(0, 2, 1, 3).reshape(samples.size * o, self.n2 * o)
            flat = (samples[:, None] * o + np.arange(o)[None]).reshape(-1)  # flat row of each row of part
            out = part[torch.as_tensor(np.searchsorted(flat, idx))].to(torch.float64)
        out = out.to(self.device)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"{self.where}: kernel contains NaN/inf (unwritten tiles of a store are NaN)")
        return out

    def _resident_rows(self, idx: np.ndarray) -> torch.Tensor:
        """Flat rows ``idx`` from the kept upper tiles: tile (I, J) for J ≥ I, the transpose of (J, I) below."""
        o, grid = self.o, self.grid
        out = torch.empty(idx.size, self.shape[1], dtype=torch.float64, device=self.device)
        n_row_tiles, n_col_tiles = grid.shape
        for i in range(n_row_tiles):
            r0, r1 = grid.row_range(i).start, grid.row_range(i).stop
            a, b = np.searchsorted(idx, [r0 * o, r1 * o])
            if a == b:
                continue
            local = torch.as_tensor(idx[a:b] - r0 * o, device=self.device)
            for j in range(n_col_tiles):
                c0, c1 = grid.col_range(j).start, grid.col_range(j).stop
                if j >= i:
                    part = self.resident[(r0, c0)][local]  # (rows, Δc·O)
                else:
                    part = self.resident[(c0, r0)][:, local].T  # rows of the mirrored tile
                out[a:b, c0 * o : c1 * o] = part
        return out

    def diagonal(self) -> torch.Tensor:
        """Diagonal (N·O,) of Θ + ridge, read from the diagonal tiles once (they are 2 GB at N = 50,000) and
        kept: the ridge scale, the Jacobi and the Nyström preconditioners all ask for it."""
        if self.n1 != self.n2:
            raise ValueError("diagonal needs a square kernel")
        if self._diagonal is None:
            # One tile in memory at a time: a list of diagonal *views* kept every tile alive (2 GB at
            # N = 50,000: N·tile values, whatever the tile size), a peak above the solver's own.
            buffer = self.raw.buffer() if self.raw is not None else None
            diag = [self.grid.row_range(i) for i in range(self.grid.shape[0])]  # tiles (i, i), square
            parts = [torch.diagonal(self.read(s.start, s.stop, s.start, s.stop, buffer)).to(torch.float64, copy=True)
                     for s in diag]
            self._diagonal = torch.cat(parts).to(device=self.device)  # (N·O,) float64 of Θ
        return self._diagonal + self.ridge

    def to_dense(self) -> torch.Tensor:
        """Fresh float64 (N1·O, N2·O) tensor on the device, ridge on the diagonal; filled tile by tile."""
        o = self.o
        out = torch.empty(self.shape, dtype=torch.float64, device=self.device)

        def work(w, r0, r1, c0, c1, tile):
            out[r0 * o : r1 * o, c0 * o : c1 * o] = tile
            if self.symmetric and c0 != r0:
                out[c0 * o : c1 * o, r0 * o : r1 * o] = tile.T

        self.stream(work)
        if self.ridge:
            out.diagonal().add_(self.ridge)
        return out

    def check_symmetric(self, rtol: float = 1e-4) -> None:
        """Compare tile (0,1) with tile (1,0)ᵀ: catches stores holding only one triangle."""
        tr = self.tile[0] if self.tile[0] < self.n1 else self.n1 // 2
        if self.n1 != self.n2 or tr < 1:
            return
        e = min(2 * tr, self.n1)
        a, b = self.read(0, tr, tr, e), self.read(tr, e, 0, tr)  # (tr·O, (e−tr)·O) and its mirror, as stored
        # In float64 row strips: whole float64 copies, their difference and its abs were 3.1 GB above the
        # job's base for a 10,000² float32 tile (measured), more than the solver's streaming buffers.
        rows = max(1, STRIP_BYTES // (8 * max(1, a.shape[1])))
        scale = diff = 0.0
        for s in range(0, a.shape[0], rows):
            sa, sb = a[s : s + rows].to(torch.float64), b[:, s : s + rows].T.to(torch.float64)
            scale = max(scale, float(sa.abs().max()), float(sb.abs().max()))
            diff = max(diff, float((sa - sb).abs().max()))
        if diff > rtol * max(scale, 1e-300):
            raise ValueError(f"{self.where}: kernel is not symmetric (tile (0,1) != tile (1,0)ᵀ): "
                             "is only one triangle stored?")
