"""Throughput of one jitted diffusion training step on perov_5, and where the step's time goes; written to
training.json.

    python benchmarks/training.py [--config shipped|new|both] [--batch-size 128] [--repeats 30] [--out ...]
    python benchmarks/training.py --config custom --dataset carbon_24_unique --cutoff 4.0 --irreps ... --layers 3

Configs: ``shipped`` is the shipped ``perov-5`` model (3 layers, ``96x0e+32x1o+16x2e``, cutoff 5 Å, relaxed one-hot
species); ``new`` is the model trained for issue 16 (same encoder, absorbing-state species diffusion). Both are
built from perov_5 train with :func:`atomsmith.generators.diffusion.training.make_config`, as ``atomsmith train
diffusion`` builds them.

Parts timed (float32, jitted, warm; medians over ``--repeats`` calls, each followed by ``block_until_ready``), all on
the same noised batch of ``--batch-size`` cells:

* ``graph``: the jit neighbour list of the noised cells alone (:func:`dense_graph`);
* ``encoder fwd+bwd``: ``value_and_grad`` w.r.t. the encoder parameters of ``sum(features^2)`` on that graph
  (the native fused kernel when built, the encoder's default);
* ``network fwd+bwd``: the same for the whole score network (graph + encoder + heads) with a stand-in loss;
* ``loss fwd+bwd``: ``value_and_grad`` of the real loss (noise draws, targets, network, loss);
* ``train step``: the loop's jitted step (loss + AdamW + clipping + EMA);
* ``host batch``: drawing the next batch from the deterministic iterator (numpy fancy indexing);
* ``fit loop``: :func:`atomsmith.training.loop.fit` for ``--fit-steps`` steps end to end (batching, transfers,
  metric bookkeeping), reported as steps/s and cells/s.

The remainder ``train step - loss`` is the optimiser; ``fit loop - train step - host batch`` is the loop's own
overhead per step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

if "GLIBC_TUNABLES" not in os.environ:  # see benchmarks/README.md: free 1.7x on XLA-composed code; same for all rows
    os.environ["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1"
    os.execv(os.sys.executable, [os.sys.executable, *os.sys.argv])

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion.data import batch_iterator, dense_arrays, load_split_cached
from atomsmith.generators.diffusion.graph import dense_graph
from atomsmith.generators.diffusion.losses import make_loss_fn
from atomsmith.generators.diffusion.network import neighbor_spec
from atomsmith.generators.diffusion.training import init_params, make_config
from atomsmith.nn.encoder import Encoder
from atomsmith.training.loop import TrainConfig, count_params, fit, init_state, make_optimizer, make_train_step

HERE = Path(__file__).resolve().parent
SHIPPED = dict(irreps_hidden="96x0e+32x1o+16x2e", n_layers=3, cutoff=5.0)


def build_config(name: str, train, custom: dict | None = None):
    """``shipped`` / ``new`` (perov-5's encoder, see the module docstring) or ``custom``: ``custom`` (irreps_hidden,
    n_layers, cutoff) with absorbing species, e.g. to plan a carbon_24_unique run."""
    elements = sorted({int(z) for c in train for z in c.numbers})
    if name == "custom":
        return make_config(train, elements=elements, species_process="absorbing", **(custom or SHIPPED))
    if name == "shipped":
        return make_config(train, elements=elements, **SHIPPED)
    if name == "new":
        return make_config(train, elements=elements, species_process="absorbing", **SHIPPED)
    raise ValueError(name)


def timed(fn, *args, repeats: int) -> float:
    """Median seconds of ``fn(*args)`` (warm: one call before timing)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, train, batch_size: int, repeats: int, fit_steps: int, custom: dict | None = None) -> dict:
    config = build_config(name, train, custom)
    loss_fn, net = make_loss_fn(config)
    arrays = dense_arrays(train, config.elements)
    batches = batch_iterator(arrays, batch_size, seed=0)
    batch = {k: jnp.asarray(v) for k, v in next(iter(batches(0))).items()}
    params = init_params(config, jax.random.PRNGKey(0), n_atoms=arrays["frac"].shape[1])
    key = jax.random.PRNGKey(1)
    spec = neighbor_spec(config)
    rows = {}

    # the noised inputs the loss would see (any t): coordinates at sigma(0.5), the clean cell
    sigma = config.schedules.sigma(0.5)
    frac_t = (batch["frac"] + sigma * jax.random.normal(key, batch["frac"].shape)) % 1.0

    graph_fn = jax.jit(lambda f, l, m: dense_graph(f, l, m, spec))
    rows["graph"] = timed(graph_fn, frac_t, batch["lattice"], batch["atom_mask"], repeats=repeats)

    graph, _ = graph_fn(frac_t, batch["lattice"], batch["atom_mask"])
    b, a = batch["atom_mask"].shape
    channels = config.encoder.n_species
    species_in = jnp.zeros((b * a, channels)).at[:, 0].set(1.0)
    cond = jnp.zeros((b, config.encoder.conditioning_dim))
    encoder = Encoder(config.encoder)
    enc_params = {"params": params["params"]["encoder"]}

    def enc_loss(p):
        out = encoder.apply(p, graph, species=species_in, conditioning=cond)
        return jnp.sum(out.array ** 2)

    rows["encoder fwd+bwd"] = timed(jax.jit(jax.value_and_grad(enc_loss)), enc_params, repeats=repeats)

    t = jnp.full((b,), 0.5)
    csp = jnp.zeros((b,))
    species_net = jnp.zeros((b, a, channels)).at[..., 0].set(1.0)

    def net_loss(p):
        outs = net.apply(p, frac_t, batch["lattice"], species_net, batch["atom_mask"], t, csp)
        return sum(jnp.sum(o.astype(jnp.float32) ** 2) for o in outs[:3])

    rows["network fwd+bwd"] = timed(jax.jit(jax.value_and_grad(net_loss)), params, repeats=repeats)
    rows["loss fwd+bwd"] = timed(jax.jit(jax.value_and_grad(loss_fn, has_aux=True)), params, batch, key,
                                 repeats=repeats)
    tc = TrainConfig(max_steps=10 ** 6, warmup_steps=10, eval_every=0, checkpoint_every=0)
    step = make_train_step(loss_fn, tc, make_optimizer(tc))
    state = init_state(params, tc)
    rows["train step"] = timed(step, state, batch, repeats=repeats)

    it = iter(batches(1))
    host = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        next(it)
        host.append(time.perf_counter() - t0)
    rows["host batch"] = statistics.median(host)

    tc_fit = dataclasses.replace(tc, max_steps=fit_steps + 5)
    t0 = time.perf_counter()
    fit(loss_fn, params, batches, tc_fit, progress=False)
    fit_wall = time.perf_counter() - t0
    # each fit call compiles its own step (a fresh jit): a run of 5 steps gives the fixed cost to subtract
    t0 = time.perf_counter()
    fit(loss_fn, params, batches, dataclasses.replace(tc_fit, max_steps=5), progress=False)
    short_wall = time.perf_counter() - t0
    per_step = (fit_wall - short_wall) / fit_steps
    rows["fit loop"] = per_step
    ms = {k: round(v * 1e3, 2) for k, v in rows.items()}
    return {
        "config": name, "species_process": getattr(config, "species_process", "gaussian"),
        "encoder": dataclasses.asdict(config.encoder), "n_params": count_params(params),
        "batch_size": batch_size, "max_edges_per_cell": config.max_edges_per_cell,
        "edges_in_batch": int(jnp.sum(graph.edge_mask)), "ms": ms,
        "train_step_cells_per_s": round(batch_size / rows["train step"], 1),
        "fit_steps_per_s": round(1.0 / per_step, 2), "fit_cells_per_s": round(batch_size / per_step, 1),
        "epoch_s_fit": round(len(train) / batch_size * per_step, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("shipped", "new", "both", "custom"), default="both")
    parser.add_argument("--dataset", default="perov_5", help="training split to batch from (e.g. carbon_24_unique)")
    parser.add_argument("--irreps", default=SHIPPED["irreps_hidden"], help="--config custom: hidden irreps")
    parser.add_argument("--layers", type=int, default=SHIPPED["n_layers"], help="--config custom: layers")
    parser.add_argument("--cutoff", type=float, default=SHIPPED["cutoff"], help="--config custom: cutoff (Å)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--fit-steps", type=int, default=100)
    parser.add_argument("--tag", default="", help="label stored with the results (e.g. before/after)")
    parser.add_argument("--out", type=Path, default=HERE / "training.json")
    args = parser.parse_args()
    train = load_split_cached(args.dataset, "train")
    names = ("shipped", "new") if args.config == "both" else (args.config,)
    custom = dict(irreps_hidden=args.irreps, n_layers=args.layers, cutoff=args.cutoff)
    load0 = os.getloadavg()
    results = [bench(n, train, args.batch_size, args.repeats, args.fit_steps, custom) for n in names]
    record = {"tag": args.tag, "dataset": args.dataset, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "jax": jax.__version__, "loadavg_start": load0, "loadavg_end": os.getloadavg(),
              "glibc_tunables": os.environ.get("GLIBC_TUNABLES"), "n_train": len(train), "results": results}
    previous = json.loads(args.out.read_text()) if args.out.exists() else []
    previous = [r for r in previous if r.get("tag") != args.tag]
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(previous + [record], indent=1) + "\n")
    tmp.replace(args.out)
    for r in results:
        print(f"{r['config']}: {r['n_params']} params, batch {r['batch_size']}, {r['edges_in_batch']} edges")
        for k, v in r["ms"].items():
            print(f"  {k:18s} {v:9.2f} ms")
        print(f"  train step {r['train_step_cells_per_s']} cells/s; fit loop {r['fit_steps_per_s']} steps/s, "
              f"{r['fit_cells_per_s']} cells/s, epoch {r['epoch_s_fit']} s")


if __name__ == "__main__":
    main()
