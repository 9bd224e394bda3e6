"""Cost of slow a-Si protocols: MD throughput by cell size, the extrapolated CPU time per cell, and one pilot cell.

    nice -n 19 python experiments/a_si_data/pilot.py bench --sizes 64 216 512 --steps 2000   # -> pilot_bench.json
    nice -n 19 python experiments/a_si_data/pilot.py plan                                    # cost table (no MD)
    nice -n 19 python experiments/a_si_data/pilot.py diffusion --potential vink              # liquid or solid?
    nice -n 19 python experiments/a_si_data/pilot.py cell --protocol vink-1e13 --n-atoms 64  # -> pilot_<name>_n64.json

``bench`` times the production MD path (:func:`atomsmith.physics.md.run` in chunks of 500 steps, Langevin BAOAB,
dt 2 fs, the Verlet list of :mod:`atomsmith.physics.melt_quench`) from a random start at 2.29 g/cm^3, once hot
(liquid, frequent list rebuilds) and once at 300 K, after one untimed chunk that compiles. ``plan`` divides the MD
steps of each candidate protocol by the measured rates. ``cell`` makes one cell and reports its statistics against
the issue-15 targets (:data:`atomsmith.metrics.amorphous.A_SI_TARGETS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.metrics.amorphous import amorphous_statistics, compare_to_targets
from atomsmith.physics import md
from atomsmith.physics.melt_quench import MeltQuenchConfig, melt_quench, random_start
from atomsmith.physics.stillinger_weber import SWModel, parameter_set

HERE = Path(__file__).resolve().parent
BENCH = HERE / "pilot_bench.json"
CHUNK = 500

#: Candidate protocols (all: random start at 2.29 g/cm^3, Langevin dt 2 fs, FIRE at the end). The slow ramps run
#: from 2000 K to 300 K. ``diffusion`` (pilot_diffusion.json) puts the Vink liquid's arrest on a 5 ps scale between
#: 2000 K (MSD 6.7 A^2 in 5 ps) and 1700 K (0.8 A^2): the plateau at 1500 K anneals the just-frozen network
#: (the original set still diffuses at 1400 K, so its plateau sits at 1000 K).
_VINK_SLOW = dict(params=parameter_set("vink"), t_melt=3000.0, melt_ps=5.0, hot_quench_rate=1e14, t_hold=2000.0,
                  hold_ps=0.0)
PROTOCOLS = {
    "default": MeltQuenchConfig(),
    "vink-1e13": MeltQuenchConfig(**_VINK_SLOW, quench_rate=1e13, anneals=((1500.0, 50.0),), anneal_ps=5.0),
    "vink-1e12": MeltQuenchConfig(**_VINK_SLOW, quench_rate=1e12, anneals=((1500.0, 100.0),), anneal_ps=10.0),
    "vink-1e11": MeltQuenchConfig(**_VINK_SLOW, quench_rate=1e11, anneals=((1500.0, 200.0),), anneal_ps=10.0),
    "original-1e12": MeltQuenchConfig(t_melt=3000.0, melt_ps=5.0, hot_quench_rate=1e14, t_hold=2000.0, hold_ps=0.0,
                                      quench_rate=1e12, anneals=((1000.0, 100.0),), anneal_ps=10.0),
}


def bench(sizes: list[int], steps: int, potential: str) -> dict:
    params = parameter_set(potential)
    out = {"potential": potential, "steps_timed": steps, "chunk": CHUNK, "rates": {}}
    for n in sizes:
        config = MeltQuenchConfig(n_atoms=n, params=params)
        box = config.box_length
        lattice = np.eye(3) * box
        start = random_start(np.random.default_rng(n), n, box, config.min_start_distance)
        md_config = md.MDConfig(dt=config.dt, friction=config.friction, model=SWModel(params, config.max_degree))
        spec = md.md_spec(lattice, n, md_config, config.max_neighbors)
        lat = jnp.asarray(lattice, jnp.float32)
        state = md.init_state(jnp.asarray(start, jnp.float32), lat, jax.random.PRNGKey(0), jnp.float32(2000.0),
                              spec, md_config)
        row = {}
        for label, temp in (("hot_2000K", 2000.0), ("cold_300K", 300.0)):
            chunk = jnp.full(CHUNK, temp, jnp.float32)
            t0 = time.perf_counter()
            state, _ = md.run(state, chunk, lat, spec, md_config)  # compile (first) / equilibrate
            jax.block_until_ready(state.positions)
            compile_s = time.perf_counter() - t0
            builds0 = int(state.vlist.n_builds)
            t0 = time.perf_counter()
            for _ in range(max(1, steps // CHUNK)):
                state, log = md.run(state, chunk, lat, spec, md_config)
            jax.block_until_ready(state.positions)
            seconds = time.perf_counter() - t0
            done = max(1, steps // CHUNK) * CHUNK
            row[label] = {"steps_per_s": done / seconds, "seconds": seconds, "steps": done,
                          "first_chunk_s": compile_s, "list_builds": int(state.vlist.n_builds) - builds0,
                          "temperature_K": float(np.mean(np.asarray(log.temperature)))}
            print(f"{n} atoms {label}: {done / seconds:.0f} steps/s ({done} steps in {seconds:.1f} s, "
                  f"{row[label]['list_builds']} list builds, first chunk {compile_s:.1f} s)", flush=True)
        out["rates"][str(n)] = row
    out["machine"] = {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg(), "platform": platform.platform(),
                      "jax": jax.__version__, "nice": os.nice(0)}
    return out


def diffusion(potential: str, temps: list[float], ps: float, n_atoms: int = 64) -> dict:
    """Mean-squared displacement of a 64-atom cell held ``ps`` ps at each temperature in turn (hottest first, from a
    random start melted 5 ps at the first one): liquid where the MSD grows by several Å^2, solid where it stays
    below ~1 Å^2. D = MSD / (6 t) over the second half of each hold."""
    params = parameter_set(potential)
    config = MeltQuenchConfig(n_atoms=n_atoms, params=params)
    box = config.box_length
    lattice = np.eye(3) * box
    start = random_start(np.random.default_rng(1), n_atoms, box, config.min_start_distance)
    md_config = md.MDConfig(dt=config.dt, friction=config.friction, model=SWModel(params, config.max_degree))
    spec = md.md_spec(lattice, n_atoms, md_config, config.max_neighbors)
    lat = jnp.asarray(lattice, jnp.float32)
    state = md.init_state(jnp.asarray(start, jnp.float32), lat, jax.random.PRNGKey(1), jnp.float32(temps[0]), spec,
                          md_config)
    state, _ = md.run(state, jnp.full(2500, temps[0], jnp.float32), lat, spec, md_config)
    rows = []
    half = int(round(ps * 500 / 2))  # steps in half of the hold (dt 2 fs)
    for temp in temps:
        chunk = jnp.full(half, temp, jnp.float32)
        state, _ = md.run(state, chunk, lat, spec, md_config)  # equilibrate
        x0 = np.asarray(state.positions)
        state, log = md.run(state, chunk, lat, spec, md_config)
        msd = float(np.mean(np.sum((np.asarray(state.positions) - x0) ** 2, axis=1)))
        rows.append({"T_K": temp, "msd_A2": msd, "D_A2_per_ps": msd / (6 * half * config.dt / 1000.0),
                     "energy_eV_per_atom": float(np.mean(np.asarray(log.potential))) / n_atoms,
                     "T_kinetic_K": float(np.mean(np.asarray(log.temperature)))})
        print(f"{potential} {temp:.0f} K: MSD {msd:.2f} A^2 in {half * config.dt / 1000:.1f} ps, "
              f"E_pot {rows[-1]['energy_eV_per_atom']:.4f} eV/atom", flush=True)
    return {"potential": potential, "n_atoms": n_atoms, "hold_ps": ps, "rows": rows}


def plan(rates: dict) -> list[dict]:
    rows = []
    for name, base in PROTOCOLS.items():
        for n, row in rates["rates"].items():
            config = dataclasses.replace(base, n_atoms=int(n))
            # the time at each temperature: hot rate above 1000 K, cold rate below (a coarse two-level model)
            hot = sum(k for _, a, b, k in config.segments() if max(a, b) > 1000.0)
            cold = config.n_steps - hot
            seconds = hot / row["hot_2000K"]["steps_per_s"] + cold / row["cold_300K"]["steps_per_s"]
            rows.append({"protocol": name, "n_atoms": int(n), "md_steps": config.n_steps,
                         "simulated_ps": config.total_ps, "mean_rate_K_per_s": config.mean_quench_rate,
                         "cpu_hours_md": seconds / 3600.0, "describe": config.describe()})
    return rows


def pilot_cell(name: str, n_atoms: int, seed: int) -> dict:
    config = dataclasses.replace(PROTOCOLS[name], n_atoms=n_atoms)
    print(config.describe(), f"({config.n_steps} MD steps)", flush=True)
    cell = melt_quench(config, seed=seed, index=0, progress=lambda m: print(m, flush=True))
    stats = amorphous_statistics(cell)
    props = {k: v for k, v in cell.properties.items() if k != "stress"}
    result = {"protocol": name, "config": dataclasses.asdict(config), "properties": props,
              "statistics": stats.as_dict(), "targets": compare_to_targets(stats)}
    from atomsmith.structures import io

    io.write(HERE / f"pilot_{name}_n{n_atoms}.extxyz", cell, overwrite=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--sizes", type=int, nargs="+", default=[64, 216, 512])
    b.add_argument("--steps", type=int, default=2000)
    b.add_argument("--potential", default="vink")
    sub.add_parser("plan")
    d = sub.add_parser("diffusion")
    d.add_argument("--potential", default="vink")
    d.add_argument("--temps", type=float, nargs="+", default=[3000, 2500, 2000, 1700, 1400, 1200, 1000, 800])
    d.add_argument("--ps", type=float, default=10.0)
    c = sub.add_parser("cell")
    c.add_argument("--protocol", default="vink-1e13", choices=list(PROTOCOLS))
    c.add_argument("--n-atoms", type=int, default=64)
    c.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.what == "bench":
        result = bench(args.sizes, args.steps, args.potential)
        previous = json.loads(BENCH.read_text()) if BENCH.exists() else {}
        previous.setdefault("runs", []).append(result)
        BENCH.write_text(json.dumps(previous, indent=2))
    elif args.what == "diffusion":
        result = diffusion(args.potential, args.temps, args.ps)
        path = HERE / "pilot_diffusion.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        previous[args.potential] = result
        path.write_text(json.dumps(previous, indent=2))
    elif args.what == "plan":
        rates = json.loads(BENCH.read_text())["runs"][-1]
        for row in plan(rates):
            print(f"{row['protocol']:>14} {row['n_atoms']:>4} atoms: {row['md_steps']:>9,} steps, "
                  f"{row['simulated_ps']:8.1f} ps, {row['cpu_hours_md']:7.2f} h")
        (HERE / "pilot_plan.json").write_text(json.dumps(plan(rates), indent=2))
    else:
        t0 = time.time()
        result = pilot_cell(args.protocol, args.n_atoms, args.seed)
        result["script_seconds"] = time.time() - t0
        (HERE / f"pilot_{args.protocol}_n{args.n_atoms}.json").write_text(json.dumps(result, indent=2, default=str))
        for key, row in result["targets"].items():
            verdict = "ok" if row["ok"] else "MISS"
            print(f"{key:>18}: {row['value']:.3f}  target [{row['low']}, {row['high']}]  {verdict}")


if __name__ == "__main__":
    main()
