"""Data parallelism (:mod:`atomsmith.parallel`): training through the shared loop and diffusion sampling split over
two devices give the one-device results (up to float rounding), batches that do not divide fail clearly, and two
processes joined with :func:`atomsmith.parallel.initialize` train like one device.

JAX fixes its device count at import, and the suite runs on one CPU device, so the two-device checks run once in a
child process started with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``, and the multi-process check in
two worker processes with one CPU device each (this file, run as a script). Each prints one JSON object of
measurements; the tests below assert on them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5  # float32 rounding from a different summation order, accumulated over a few optimiser/sampler steps


# ------------------------------------------------------------------------------------------------ the child process
def _toy_problem(batch_size: int = 16):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3

    def batches(epoch):
        order = np.random.default_rng(epoch).permutation(64)
        for k in range(0, 64 - batch_size + 1, batch_size):
            idx = order[k:k + batch_size]
            yield {"x": x[idx], "y": y[idx]}

    def loss_fn(params, batch, key):  # noise drawn inside jit: must not depend on the sharding
        noise = 1e-2 * jax.random.normal(key, batch["y"].shape)
        loss = jnp.mean((batch["x"] @ params["w"] + params["b"] - batch["y"] + noise) ** 2)
        return loss, {"mse": loss}

    def eval_fn(params):
        return {"loss": jnp.mean((x @ params["w"] + params["b"] - y) ** 2)}

    return loss_fn, {"w": jnp.zeros(3), "b": jnp.zeros(())}, batches, eval_fn


def _graph_problem():
    """A pair potential fitted on flat GraphBatches (edge gathers and per-graph segment sums)."""
    import jax
    import jax.numpy as jnp

    from atomsmith.graphs.batching import batch_graphs
    from atomsmith.training.loop import TrainConfig
    from tests.helpers.symmetry import random_crystal

    rng = np.random.default_rng(1)
    crystals = [random_crystal(rng, n_atoms=int(rng.integers(2, 5)), numbers=None, size=3.5, skew=0.2)
                .with_properties(y=float(rng.normal())) for _ in range(8)]
    graph_batches = [batch_graphs(crystals[k:k + 4], cutoff=3.0, sizes=(24, 256, 5), property_keys=("y",))
                     for k in (0, 4)]

    def graph_loss(p, batch, key):
        d = jnp.sqrt(jnp.sum(batch.edge_vectors() ** 2, -1) + 1e-12)
        pair = jnp.where(batch.edge_mask, p["a"] * jnp.exp(-p["k"] * d), 0.0)
        energy = jax.ops.segment_sum(pair, batch.node_graph[batch.receivers], batch.n_graphs)
        err = jnp.where(batch.graph_mask, energy / jnp.maximum(batch.n_atoms, 1) - batch.properties["y"], 0.0)
        loss = jnp.sum(err ** 2) / jnp.sum(batch.graph_mask)
        return loss, {}

    gp = {"a": jnp.asarray(0.5), "k": jnp.asarray(1.0)}
    gcfg = TrainConfig(learning_rate=0.02, warmup_steps=1, max_steps=6, eval_every=0, checkpoint_every=0)
    return graph_loss, gp, graph_batches, gcfg


def _toy_config():
    from atomsmith.training.loop import TrainConfig

    return TrainConfig(learning_rate=0.05, warmup_steps=5, max_steps=40, eval_every=10, checkpoint_every=7,
                       ema_decay=0.9)


def _max_diff(a, b) -> float:
    import jax

    return max(float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
               for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _n_devices(tree) -> int:
    import jax

    return min(len(x.sharding.device_set) for x in jax.tree_util.tree_leaves(tree))


def _child(tmp: Path) -> dict:
    from atomsmith import parallel

    t0 = time.perf_counter()
    out: dict = {"times": {}}  # seconds since the start, per section (diagnostics only)
    times = out["times"]
    # multi-host helper, single-process path (must come before any computation)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update({parallel.ENV_COORDINATOR: f"127.0.0.1:{port}", parallel.ENV_NUM_PROCESSES: "1",
                       parallel.ENV_PROCESS_ID: "0"})
    out["initialize"] = list(parallel.initialize())
    out["initialize_again"] = list(parallel.initialize())

    import dataclasses

    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec

    split = PartitionSpec(parallel.DATA_AXIS)

    from atomsmith.training.loop import TrainConfig, fit

    out["devices"] = jax.device_count()
    out["mesh_default"] = parallel.mesh_size(parallel.data_mesh())
    try:
        parallel.data_mesh(3)
        out["too_many_devices"] = ""
    except parallel.DataParallelError as exc:
        out["too_many_devices"] = str(exc)

    times["start"] = time.perf_counter() - t0
    rows = np.arange(12, dtype=np.float64).reshape(6, 2)  # host data: each device gets its block of rows
    placed = parallel.shard_leading({"rows": rows, "scale": 2.0}, parallel.data_mesh())
    shards = sorted((s.index[0].start or 0, np.asarray(s.data).tolist()) for s in placed["rows"].addressable_shards)
    out["placement"] = {"shards": [block for _, block in shards], "dtype": str(placed["rows"].dtype),
                        "scale_replicated": placed["scale"].sharding.spec == PartitionSpec()}

    # 1. the shared loop on a toy regression: 1 device vs 2, and resumption across device counts
    loss_fn, params, batches, eval_fn = _toy_problem()
    cfg = _toy_config()
    one = fit(loss_fn, params, batches, dataclasses.replace(cfg, data_parallel=1), eval_fn=eval_fn, progress=False)
    two = fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, progress=False)
    out["toy"] = {"param_diff": _max_diff(one.state.params, two.state.params),
                  "params_one": jax.tree_util.tree_map(lambda x: np.asarray(x).tolist(), one.state.params),
                  "ema_diff": _max_diff(one.state.ema_params, two.state.ema_params),
                  "initial": float(eval_fn(params)["loss"]), "best_one": one.best_metric, "best_two": two.best_metric,
                  "devices_one": _n_devices(one.state.params), "devices_two": _n_devices(two.state.params),
                  "opt_devices_two": _n_devices(two.state.opt_state)}
    mesh = parallel.data_mesh()
    rows = parallel.local_rows(16, mesh)  # a process-local loader: this process's rows of each global batch
    local = fit(loss_fn, params, lambda e: ({k: v[rows] for k, v in b.items()} for b in batches(e)), cfg,
                eval_fn=eval_fn, progress=False, process_local=True)
    out["toy"]["local_rows"] = [rows.start, rows.stop]
    out["toy"]["local_diff"] = _max_diff(two.state.params, local.state.params)
    path = tmp / "toy.ckpt"
    fit(loss_fn, params, batches, cfg, eval_fn=eval_fn, checkpoint_path=path, progress=False, stop_after=13)
    resumed = fit(loss_fn, params, batches, dataclasses.replace(cfg, data_parallel=1), eval_fn=eval_fn,
                  checkpoint_path=path, progress=False)
    out["toy"]["resume_diff"] = _max_diff(one.state.params, resumed.state.params)
    out["toy"]["resume_step"] = int(resumed.state.step)
    loss_fn, params, batches, eval_fn = _toy_problem(batch_size=15)
    try:
        fit(loss_fn, params, batches, cfg, progress=False)
        out["toy"]["odd_batch_error"] = ""
    except parallel.DataParallelError as exc:
        out["toy"]["odd_batch_error"] = str(exc)

    times["toy"] = time.perf_counter() - t0
    # 2. a flat GraphBatch: nodes and edges split over the devices, per-graph arrays replicated
    graph_loss, gp, graph_batches, gcfg = _graph_problem()
    g_one = fit(graph_loss, gp, lambda e: graph_batches, dataclasses.replace(gcfg, data_parallel=1), progress=False)
    g_two = fit(graph_loss, gp, lambda e: graph_batches, gcfg, progress=False)
    placed = parallel.shard_batch(graph_batches[0], parallel.data_mesh())
    try:
        parallel.shard_local_batch(graph_batches[0], mesh)
        out["graph_local_error"] = ""
    except parallel.DataParallelError as exc:
        out["graph_local_error"] = str(exc)
    out["graph"] = {"params_one": jax.tree_util.tree_map(lambda x: np.asarray(x).tolist(), g_one.state.params),
                    "param_diff": _max_diff(g_one.state.params, g_two.state.params),
                    "moved": _max_diff(gp, g_one.state.params),
                    "nodes_split": placed.frac_coords.sharding.spec == split,
                    "edges_split": placed.senders.sharding.spec == split,
                    "graphs_replicated": placed.lattices.sharding.spec == PartitionSpec()}
    times["graph"] = time.perf_counter() - t0

    # 3. diffusion sampling: the cells of a batch split over the devices
    from atomsmith.generators.diffusion import DiffusionConfig, DiffusionModel
    from atomsmith.generators.diffusion.config import CONDITIONING_DIM
    from atomsmith.generators.diffusion.training import init_params
    from atomsmith.nn.encoder import EncoderConfig

    encoder = EncoderConfig.tiny(n_species=3, conditioning_dim=CONDITIONING_DIM, cutoff=3.0, irreps_hidden="4x0e+2x1o",
                                 n_layers=1, sh_lmax=1, n_basis=4, radial_hidden=(8,))
    config = DiffusionConfig.tiny(encoder=encoder, max_edges_per_cell=48, n_images=(1, 1, 1), head_hidden=8,
                                  n_atoms_counts=((3, 1),))
    params = init_params(config, jax.random.PRNGKey(0), n_atoms=3)

    model = DiffusionModel(config, params)
    seen = []
    runner = model._runner

    def spying_runner(*args, **kwargs):  # records how the sampler state reaches the jitted chunk
        run = runner(*args, **kwargs)

        def wrapped(params, state, *rest):
            spec = getattr(state.frac.sharding, "spec", None)
            seen.append((len(state.frac.sharding.device_set), spec == split))
            return run(params, state, *rest)

        return wrapped

    model._runner = spying_runner
    s_one = model.sample(jax.random.PRNGKey(3), 6, steps=2, method="pc", devices=1)
    one_seen, seen[:] = list(seen), []
    s_two = model.sample(jax.random.PRNGKey(3), 6, steps=2, method="pc")
    frac = max(float(np.max(np.abs((a.frac_coords - b.frac_coords + 0.5) % 1.0 - 0.5))) for a, b in zip(s_one, s_two))
    out["sample"] = {"n": [len(s_one), len(s_two)], "frac_diff": frac,
                     "lattice_diff": max(float(np.max(np.abs(a.lattice - b.lattice))) for a, b in zip(s_one, s_two)),
                     "same_species": all(np.array_equal(a.numbers, b.numbers) for a, b in zip(s_one, s_two)),
                     "finite": all(np.all(np.isfinite(c.frac_coords)) for c in s_two),
                     "seen_one": one_seen, "seen_two": list(seen)}
    times["sample"] = time.perf_counter() - t0
    return out


def _worker(ckpt: Path) -> dict:
    """One of two processes (one CPU device each) joined through ``ATOMSMITH_*`` variables: the toy and the
    GraphBatch problems trained over the two processes' devices, the toy also with process-local loading."""
    from atomsmith import parallel

    index, count = parallel.initialize()
    import jax

    from atomsmith.training.loop import fit

    loss_fn, params, batches, eval_fn = _toy_problem()
    toy = fit(loss_fn, params, batches, _toy_config(), eval_fn=eval_fn, progress=False, checkpoint_path=ckpt)
    rows = parallel.local_rows(16, parallel.data_mesh())
    local = fit(loss_fn, params, lambda e: ({k: v[rows] for k, v in b.items()} for b in batches(e)), _toy_config(),
                eval_fn=eval_fn, progress=False, process_local=True)
    graph_loss, gp, graph_batches, gcfg = _graph_problem()
    graph = fit(graph_loss, gp, lambda e: graph_batches, gcfg, progress=False)
    as_list = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(x).tolist(), tree)  # noqa: E731
    return {"index": index, "count": count, "devices": jax.device_count(), "local": jax.local_device_count(),
            "rows": [rows.start, rows.stop], "toy": as_list(toy.state.params), "toy_local": as_list(local.state.params),
            "graph": as_list(graph.state.params), "wrote": ckpt.exists()}


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharding")
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    for name in ("ATOMSMITH_COORDINATOR", "ATOMSMITH_NUM_PROCESSES", "ATOMSMITH_PROCESS_ID"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(tmp)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ tests
def test_child_sees_two_devices_and_uses_both_by_default(child):
    assert child["devices"] == 2 and child["mesh_default"] == 2
    assert "asked for 3 devices" in child["too_many_devices"]


def test_host_rows_go_to_their_devices(child):
    p = child["placement"]
    assert p["shards"] == [[[0, 1], [2, 3], [4, 5]], [[6, 7], [8, 9], [10, 11]]]
    assert p["dtype"] == "float32" and p["scale_replicated"]  # canonical dtype, as jnp.asarray would give


def test_initialize_single_process(child):
    assert child["initialize"] == [0, 1] and child["initialize_again"] == [0, 1]


def test_loop_on_two_devices_equals_one_device(child):
    toy = child["toy"]
    assert toy["devices_one"] == 1 and toy["devices_two"] == 2 and toy["opt_devices_two"] == 2
    assert toy["param_diff"] < TOL and toy["ema_diff"] < TOL
    assert toy["best_two"] == pytest.approx(toy["best_one"], abs=TOL) and toy["best_one"] < 0.5 * toy["initial"]


def test_process_local_loading_single_process(child):
    # one process owns every row; the batch is assembled with make_array_from_process_local_data
    assert child["toy"]["local_rows"] == [0, 16] and child["toy"]["local_diff"] == 0.0
    assert "global node indices" in child["graph_local_error"]


def test_resume_on_another_device_count(child):
    # 13 steps on two devices, the rest on one: the same run as one device throughout
    assert child["toy"]["resume_step"] == 40 and child["toy"]["resume_diff"] < TOL


def test_batch_that_does_not_divide_fails_clearly(child):
    message = child["toy"]["odd_batch_error"]
    assert "15" in message and "2 devices" in message and "multiple of 2" in message


def test_graph_batch_is_split_by_nodes_and_edges(child):
    graph = child["graph"]
    assert graph["nodes_split"] and graph["edges_split"] and graph["graphs_replicated"]
    assert graph["moved"] > 1e-3 and graph["param_diff"] < TOL


def test_diffusion_samples_on_two_devices_equal_one_device(child):
    s = child["sample"]
    assert s["n"] == [6, 6] and s["finite"] and s["same_species"]
    assert all(n == 1 for n, _ in s["seen_one"])
    assert s["seen_two"] and all(n == 2 and split for n, split in s["seen_two"])
    assert s["frac_diff"] < 1e-4 and s["lattice_diff"] < 1e-4


def test_single_device_needs_no_mesh_and_bad_settings_are_typed_errors(monkeypatch):
    import jax

    from atomsmith import parallel

    if jax.device_count() == 1:
        assert parallel.data_mesh() is None and parallel.mesh_size(None) == 1
    assert parallel.round_up(5, None) == 5
    with pytest.raises(parallel.DataParallelError, match="devices"):
        parallel.data_mesh(jax.device_count() + 1)
    with pytest.raises(parallel.DataParallelError, match="must be an integer"):
        monkeypatch.setenv(parallel.ENV_NUM_PROCESSES, "two")
        parallel.initialize()
    monkeypatch.setenv(parallel.ENV_NUM_PROCESSES, "2")
    with pytest.raises(parallel.DataParallelError, match=r"process_id must be in \[0, 2\)"):
        parallel.initialize(process_id=5)


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Two processes on this machine joined with :func:`atomsmith.parallel.initialize` (a real multi-process run
    on CPU: Gloo collectives between the processes)."""
    tmp = tmp_path_factory.mktemp("multiprocess")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for index in range(2):
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        env.update(JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
                   ATOMSMITH_COORDINATOR=f"127.0.0.1:{port}", ATOMSMITH_NUM_PROCESSES="2",
                   ATOMSMITH_PROCESS_ID=str(index))
        procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker",
                                       str(tmp / f"train-{index}.ckpt")], env=env, cwd=ROOT, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, stderr[-4000:]
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return outs


def test_two_processes_train_like_one_device(workers, child):
    assert [w["index"] for w in workers] == [0, 1] and all(w["count"] == 2 for w in workers)
    assert all(w["devices"] == 2 and w["local"] == 1 for w in workers)
    assert [w["rows"] for w in workers] == [[0, 8], [8, 16]]  # each process loads its half of every batch
    for w in workers:
        assert _max_diff(w["toy"], child["toy"]["params_one"]) < TOL
        assert _max_diff(w["toy_local"], child["toy"]["params_one"]) < TOL
        assert _max_diff(w["graph"], child["graph"]["params_one"]) < TOL
    assert [w["wrote"] for w in workers] == [True, False]  # only process 0 writes the checkpoint


if __name__ == "__main__":
    if sys.argv[1] == "--worker":
        print(json.dumps(_worker(Path(sys.argv[2]))))
    else:
        print(json.dumps(_child(Path(sys.argv[1]))))
