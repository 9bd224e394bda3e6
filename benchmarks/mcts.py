"""Searches per second of the MCTS assembler with the default network (this CPU), written to mcts.json.

    nice -n 10 python benchmarks/mcts.py [--quick]

One "search" = one Gumbel MuZero search (``--simulations`` simulations) from one root state; batches of B roots are
searched together, so searches/s = B * calls / wall. Roots are mid-episode states (half the atoms placed) so masks
and the network see realistic sizes; no root finishes inside the tree, so relaxation cost is excluded (reported
separately as the finishing cost per structure).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.assembly import NetworkConfig, SearchConfig, init_network, make_env, make_task, search

HERE = Path(__file__).resolve().parent


def mid_state(env, seed: int, fraction: float = 0.5):
    step = jax.jit(lambda e, s, a: e.transition(s, a))
    rng = np.random.default_rng(seed)
    state = env.reset()
    while int(state.n) < int(fraction * env.task.n_atoms) and not bool(state.done):
        state, _ = step(env, state, jnp.asarray(rng.choice(np.flatnonzero(np.asarray(state.legal)))))
    return state


def bench(task_name: str, batch: int, sims: int, repeats: int) -> dict:
    task = make_task(task_name)
    env = make_env(task)
    net = NetworkConfig()
    state = mid_state(env, 0)
    params = init_network(task, net, jax.random.PRNGKey(0), state)
    states = jax.tree_util.tree_map(lambda x: jnp.stack([x] * batch), state)
    config = SearchConfig(num_simulations=sims, max_num_considered_actions=min(16, sims))
    t0 = time.perf_counter()
    jax.block_until_ready(search(env, net, config, params, states, jax.random.PRNGKey(0)).action)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(repeats):
        jax.block_until_ready(search(env, net, config, params, states, jax.random.PRNGKey(k + 1)).action)
    wall = time.perf_counter() - t0
    out = {"task": task_name, "batch": batch, "simulations": sims, "atoms_placed": int(state.n),
           "n_actions": env.n_actions, "compile_s": round(compile_s, 2), "repeats": repeats,
           "searches_per_s": round(batch * repeats / wall, 3),
           "simulations_per_s": round(batch * repeats * sims / wall, 1)}
    if task.relax_steps:  # finishing cost on a complete structure (random placement, min distance kept)
        from atomsmith.physics.melt_quench import random_start
        pos = random_start(np.random.default_rng(0), task.n_atoms, task.lattice_array[0, 0], task.min_distance)
        full = state.replace(positions=jnp.asarray(pos, jnp.float32), species=jnp.zeros(task.n_atoms, jnp.int32),
                             n=jnp.asarray(task.n_atoms), remaining=jnp.zeros_like(state.remaining),
                             complete=jnp.asarray(True), done=jnp.asarray(True))
        full = jax.tree_util.tree_map(lambda x: x[None], full)
        finish = jax.jit(lambda e, s: jax.vmap(e.finish)(s))
        jax.block_until_ready(finish(env, full).final_return)
        t0 = time.perf_counter()
        jax.block_until_ready(finish(env, full).final_return)
        out["finish_s_per_structure"] = round(time.perf_counter() - t0, 3)
        out["finish_fire_steps"] = int(finish(env, full).relax_steps[0])
    print(out, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    repeats = 2 if args.quick else 5
    rows = [bench("a-si-64", 1, 32, repeats), bench("a-si-64", 4, 16, repeats),
            bench("perov-heat-ref", 4, 32, repeats)]
    result = {"rows": rows, "machine": {"python": platform.python_version(), "jax": jax.__version__,
                                        "cpus": __import__("os").cpu_count(),
                                        "load_average_at_end": list(__import__("os").getloadavg())},
              "note": "shared 2-core CPU, run with nice -n 10 while other jobs ran; read as lower bounds"}
    (HERE / "mcts.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
