"""Speed of the equivariant convolution layer and of the full encoder, against the plain e3nn yardstick.

    python benchmarks/encoder.py            # full run (about 10 min on 2 busy cores)
    python benchmarks/encoder.py --quick    # fewer repeats

What is timed (each a jitted forward + backward pass, ``value_and_grad`` of ``sum(out**2)``):

* **layer**: one :class:`atomsmith.nn.convolution.Convolution` (32x0e+16x1o+8x2e, sh l<=2), gradient w.r.t. the
  parameters and the edge vectors, and the reference layer ``../shared/bench/reference_conv.py`` on the *same*
  graph with the *same* parameters (transplanted), features and loss. The reference step is built exactly as
  ``time_reference`` builds it (its features are a closed-over constant; ours are a traced input, which can only
  make ours slower). The ratio of medians of interleaved calls in this one process is the figure that counts;
  ``time_reference`` itself is also called once per graph as a cross-check.
* **encoder**: the full :class:`atomsmith.nn.encoder.Encoder` (default ``EncoderConfig``: 3 interaction blocks),
  gradient w.r.t. the parameters and the fractional coordinates (edge vectors are recomputed inside from
  positions, lattice and image shifts), with the native kernel and with the pure-JAX path.
* a jitted 2048 x 2048 float32 matmul, as the machine's attainable GFLOP/s.

Graphs: (a) a padded batch of 64 perov_5 cells (test split; ``atomsmith.datasets`` or, failing that, the first 64
CIFs of ``../shared/data/perov_5/test.csv.gz``), (b) one 512-atom diamond-silicon cell (4x4x4 conventional cells,
a = 5.431 Å, 0.05 Å Gaussian displacements, seed 0), cutoff 5 Å; edges/s counts real (unpadded) edges. The layer
runs on the real edges; the encoder on the padded batch, as in training. Without ``--quick`` also (c) the
yardstick's own random graph (1280 nodes, 38000 edges; layer only), the workload of ``performance-notes.md``.

GFLOP/s: XLA's cost analysis of the compiled step (``jitted.lower(...).compile().cost_analysis()``). XLA cannot see
inside the native kernel (an FFI custom call), so for the same math the FLOPs counted for the reference layer (and
for the pure-JAX encoder) are used as the work done by ours: achieved GFLOP/s = those FLOPs / our time.

Allocator: with glibc's default malloc every temporary buffer above 32 MB is mmapped and unmapped on each call,
costing ~100k page faults per step (see ``shared/docs/performance-notes.md``). The script therefore re-executes
itself with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` unless ``GLIBC_TUNABLES`` is already set or
``--default-allocator`` is given. Both layers run in the same process, so both get the same allocator.

Machine noise: the timings interleave all steps round by round and report medians (and minima); the load
average before and after is printed. On a shared 2-core machine absolute numbers move by +-25%; the same-process
ratio is much steadier.
"""

from __future__ import annotations

import os
import sys

ALLOCATOR = "glibc.malloc.hugetlb=1"

if __name__ == "__main__" and "GLIBC_TUNABLES" not in os.environ and "--default-allocator" not in sys.argv:
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "GLIBC_TUNABLES": ALLOCATOR})

import argparse  # noqa: E402
import csv  # noqa: E402
import gzip  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import e3nn_jax as e3nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from atomsmith.graphs.batching import GraphBatch, batch_graphs  # noqa: E402
from atomsmith.nn import _native_build  # noqa: E402
from atomsmith.nn.convolution import Convolution  # noqa: E402
from atomsmith.nn.encoder import Encoder, EncoderConfig  # noqa: E402
from atomsmith.structures.crystal import Crystal  # noqa: E402

IRREPS = "32x0e+16x1o+8x2e"
CUTOFF = 5.0
SHARED = Path(__file__).resolve().parents[2] / "shared"
console = Console(width=None if sys.stdout.isatty() else 150)


# ----------------------------------------------------------------------------------------------- workloads


def perov5_cells(n: int = 64) -> tuple[list[Crystal], str]:
    """The first ``n`` perov_5 test cells, from atomsmith.datasets or directly from the shared CSV."""
    try:
        from atomsmith import datasets

        return datasets.load("perov_5", "test", limit=n), "atomsmith.datasets perov_5/test"
    except Exception as err:  # noqa: BLE001 - the loader is optional here; fall back to the raw CSV
        console.print(f"[yellow]atomsmith.datasets unavailable ({type(err).__name__}: {err}); parsing the CSV[/]")
    from atomsmith.structures.io import parse_cif

    path = SHARED / "data" / "perov_5" / "test.csv.gz"
    cells = []
    with gzip.open(path, "rt") as f:
        for row in csv.DictReader(io.StringIO(f.read())):
            cells.extend(parse_cif(row["cif"], source=f"{path.name}:{row['material_id']}"))
            if len(cells) >= n:
                break
    return cells[:n], f"{path} (first {n} rows)"


def silicon_512(seed: int = 0, sigma: float = 0.05) -> Crystal:
    """Diamond Si, 4x4x4 conventional cells (512 atoms), a = 5.431 Å, Gaussian displacements of ``sigma`` Å."""
    a = 5.431
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    basis = np.concatenate([fcc, fcc + 0.25])
    cell = Crystal(np.eye(3) * a, basis, np.full(8, 14)).supercell(4)
    rng = np.random.default_rng(seed)
    positions = cell.positions + rng.normal(scale=sigma, size=cell.positions.shape)
    return Crystal.from_cartesian(cell.lattice, positions, cell.numbers)


def load_reference():
    path = SHARED / "bench" / "reference_conv.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("reference_conv", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------- steps


def flops(jitted, *args) -> float:
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, list):  # older jax returns one dict per device
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


def layer_steps(reference, vectors, senders, receivers, n_nodes: int):
    """Our layer and the reference layer on the same graph, params, features and loss (see module docstring)."""
    key = jax.random.PRNGKey(0)
    features = e3nn.normal(e3nn.Irreps(IRREPS), key, (n_nodes,))  # as time_reference draws them
    vectors = jnp.asarray(vectors, jnp.float32)
    senders, receivers = jnp.asarray(senders), jnp.asarray(receivers)
    ours = Convolution(IRREPS)

    def loss_ours(p, v, x):
        out = ours.apply(p, e3nn.IrrepsArray(features.irreps, x), v, senders, receivers, n_nodes)
        return jnp.sum(out.array ** 2)

    step_ours = jax.jit(jax.value_and_grad(loss_ours, argnums=(0, 1)))
    if reference is None:
        params = ours.init(key, features, vectors, senders, receivers, n_nodes)
        return {"ours": (step_ours, (params, vectors, features.array))}, None
    layer = reference.ReferenceConv(IRREPS, 2)
    params = layer.init(key, features, vectors, senders, receivers, n_nodes)  # transplanted into ours

    def loss_ref(p, v):
        out = layer.apply(p, features, v, senders, receivers, n_nodes)
        return jnp.sum(out.array ** 2)

    step_ref = jax.jit(jax.value_and_grad(loss_ref, argnums=(0, 1)))
    steps = {"ours": (step_ours, (params, vectors, features.array)), "reference": (step_ref, (params, vectors))}
    return steps, compare(steps)


def compare(steps) -> dict[str, float]:
    """Max deviations of ours from the reference: loss, params grads and vector grads (relative to scale)."""
    (loss_o, (gp_o, gv_o)) = steps["ours"][0](*steps["ours"][1])
    (loss_r, (gp_r, gv_r)) = steps["reference"][0](*steps["reference"][1])

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))

    return {"loss": rel(loss_o, loss_r),
            "param grads": max(rel(a, b) for a, b in zip(jax.tree_util.tree_leaves(gp_o),
                                                           jax.tree_util.tree_leaves(gp_r))),
            "vector grads": rel(gv_o, gv_r)}


def encoder_steps(batch: GraphBatch, include_jax: bool):
    cfg = EncoderConfig()
    encoder = Encoder(cfg)
    params = jax.jit(encoder.init)(jax.random.PRNGKey(1), batch)

    def loss(p, frac):
        return jnp.sum(encoder.apply(p, batch.replace(frac_coords=frac)).array ** 2)

    steps = {}
    for name, native in (("encoder", "1"), ("encoder (jax path)", "0")):
        if name != "encoder" and not include_jax:
            continue
        previous = os.environ.get(_native_build.ENV_DISABLE)
        os.environ[_native_build.ENV_DISABLE] = native  # read when the step is traced
        try:
            step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            step.lower(params, batch.frac_coords).compile()
            jax.block_until_ready(step(params, batch.frac_coords))
        finally:
            if previous is None:
                os.environ.pop(_native_build.ENV_DISABLE)
            else:
                os.environ[_native_build.ENV_DISABLE] = previous
        steps[name] = (step, (params, batch.frac_coords))
    return steps


def interleave(steps: dict, rounds: int) -> dict[str, np.ndarray]:
    """Warm up, then time one call of every step per round, round after round."""
    for fn, args in steps.values():
        jax.block_until_ready(fn(*args))
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, (fn, args) in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            times[name].append(time.perf_counter() - start)
    return {name: np.asarray(t) for name, t in times.items()}


# -------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip the pure-JAX encoder")
    parser.add_argument("--rounds", type=int, default=None, help="timed calls per step (default 15, quick 5)")
    parser.add_argument("--default-allocator", action="store_true", help="do not set GLIBC_TUNABLES")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)

    console.print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs; "
                  f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}; "
                  f"native kernels: {'off' if _native_build.disabled() else 'on'}; rounds {rounds}; "
                  f"load average before: {os.getloadavg()[0]:.1f}")
    reference = load_reference()
    if reference is None:
        console.print(f"[yellow]{SHARED / 'bench' / 'reference_conv.py'} is missing: no reference timings, "
                      "no ratio[/]")

    workloads = {}
    try:
        cells, source = perov5_cells(64)
        workloads["perov_5 x64"] = (cells, source)
    except Exception as err:  # noqa: BLE001
        console.print(f"[yellow]perov_5 cells unavailable ({type(err).__name__}: {err}); skipping that graph[/]")
    workloads["Si 512"] = ([silicon_512()], "diamond Si 4x4x4 conventional cells, 0.05 Å displacements")
    if not args.quick:
        workloads["random 1280/38000"] = (None, "reference_conv.py's own random graph (layer only)")

    a = jax.random.normal(jax.random.PRNGKey(0), (2048, 2048), jnp.float32)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul_steps = {"matmul": (matmul, (a, a))}

    table = Table(title="Forward + backward, jitted, median of interleaved calls (min in brackets)")
    for column in ("graph", "step", "nodes", "edges", "ms / step", "edges/s", "GFLOP/step", "GFLOP/s",
                   "% matmul", "ratio"):
        table.add_column(column, justify="left" if column in ("graph", "step") else "right")
    notes = []
    matmul_times = []
    for label, (cells, source) in workloads.items():
        if cells is None:  # the yardstick's default graph: random indices, Gaussian vectors (some beyond cutoff)
            batch = None
            rng = np.random.default_rng(0)
            n_atoms, n_edges = 1280, 38000
            senders, receivers = rng.integers(0, n_atoms, n_edges), rng.integers(0, n_atoms, n_edges)
            vectors = rng.normal(size=(n_edges, 3)) * 2.0
            console.print(f"[bold]{label}[/]: {n_atoms} nodes, {n_edges} edges; source: {source}")
        else:
            batch = batch_graphs(cells, cutoff=CUTOFF)
            mask = np.asarray(batch.edge_mask)
            n_atoms = int(np.sum(np.asarray(batch.node_mask)))
            n_edges = int(mask.sum())
            vectors = np.asarray(batch.edge_vectors())[mask]
            senders, receivers = np.asarray(batch.senders)[mask], np.asarray(batch.receivers)[mask]
            console.print(f"[bold]{label}[/]: {len(cells)} cells, {n_atoms} atoms, {n_edges} edges within {CUTOFF} Å "
                          f"(padded to {batch.n_nodes} nodes, {mask.size} edges); source: {source}")
        steps, deviations = layer_steps(reference, vectors, senders, receivers, n_atoms)
        if deviations:
            console.print("  ours vs reference, same params (max |diff| / max |ref|): "
                          + ", ".join(f"{k} {v:.1e}" for k, v in deviations.items()))
        work = {}
        if "reference" in steps:
            work["layer"] = flops(steps["reference"][0], *steps["reference"][1])
        if batch is not None:
            steps.update(encoder_steps(batch, include_jax=not args.quick))
        if "encoder (jax path)" in steps:
            work["encoder"] = flops(steps["encoder (jax path)"][0], *steps["encoder (jax path)"][1])
        times = interleave({**matmul_steps, **steps}, rounds)
        matmul_times.extend(times.pop("matmul"))
        matmul_gflops = 2 * 2048 ** 3 / np.median(matmul_times) / 1e9
        if reference is not None:
            cross = reference.time_reference(vectors, senders, receivers, n_atoms, IRREPS,
                                             repeats=3 if args.quick else 5)
            notes.append(f"{label}: time_reference() itself: {cross * 1e3:.1f} ms ({n_edges / cross:,.0f} edges/s)")
        for name, t in times.items():
            median = float(np.median(t))
            kind = "layer" if name in ("ours", "reference") else "encoder"
            f = work.get(kind, float("nan"))
            ratio = ""
            if name == "ours" and "reference" in times:
                ratio = f"{np.median(times['reference']) / median:.2f}x"
            if name == "encoder" and "encoder (jax path)" in times:
                ratio = f"{np.median(times['encoder (jax path)']) / median:.2f}x vs JAX path"
            gflops = f / median / 1e9
            step_name = {"ours": "layer: Convolution", "reference": "layer: reference_conv.py",
                         "encoder": "encoder (3 blocks)", "encoder (jax path)": "encoder, pure-JAX path"}[name]
            table.add_row(label, step_name, str(n_atoms), str(n_edges),
                          f"{median * 1e3:.1f} ({np.min(t) * 1e3:.1f})", f"{n_edges / median:,.0f}",
                          f"{f / 1e9:.2f}" if np.isfinite(f) else "n/a", f"{gflops:.1f}" if np.isfinite(f) else "n/a",
                          f"{100 * gflops / matmul_gflops:.1f}" if np.isfinite(f) else "n/a", ratio)
    matmul_median = float(np.median(matmul_times))
    table.add_row("-", "matmul 2048^2 f32", "", "", f"{matmul_median * 1e3:.1f} ({np.min(matmul_times) * 1e3:.1f})",
                  "", f"{2 * 2048 ** 3 / 1e9:.2f}", f"{2 * 2048 ** 3 / matmul_median / 1e9:.1f}", "100", "")
    console.print(table)
    for note in notes:
        console.print(note)
    console.print("GFLOP/step: XLA's count for the reference layer / the pure-JAX encoder (same math as ours; the "
                  "native kernel is opaque to XLA). ratio: reference median / ours, same process.")
    console.print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
