"""a-si-64 over several seeds: random placement vs MCTS (untrained) vs MCTS after behaviour cloning on melt-quench.

    nice -n 10 python experiments/mcts/asi_compare.py --seeds 0,1,2

Objective: SW energy per atom after 100 FIRE steps (fmax 0.05 eV/Å) in the 10.93 Å cubic cell (2.29 g/cm^3);
normalised reward ``R = -(E + 4.0) / 0.25``; one evaluation = one relaxed, scored structure.

* **random placement**: uniform positions with no pair closer than 2.0 Å, then the same relaxation.
* **MCTS untrained**: Gumbel MuZero (``--sims`` simulations) with the default network at its initialisation.
* **MCTS + BC**: the same search after behaviour cloning (``atomsmith.assembly.imitation``): a teacher rebuilds
  each shipped 64-atom melt-quench cell from ``--bc-starts`` start atoms in the assembly action space (placements
  snapped to the action grid); the network is fitted to the teacher's actions (policy) and returns (value, the
  relaxed SW energy of the rebuilt cell plus the shaping terms) for ``--bc-steps`` steps. The teacher's own scored
  structures are pretraining cost, reported separately and not counted in the search budget (like the melt-quench
  cells they come from). ``--train-iters`` > 0 adds self-play training (that many AdamW steps on the replay
  buffer) after each round of episodes, to both MCTS variants (then named ``..._selfplay...``).
* **melt-quench**: the shipped fully relaxed cells, for reference.

Writes ``TAG.json`` and ``TAG_curves.png`` (``--tag``, default ``asi_compare``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import log, mcts, random_placement, sw_per_atom  # noqa: E402

from atomsmith.assembly import NetworkConfig, init_network, make_env, make_task  # noqa: E402
from atomsmith.assembly.curves import curve_from_returns, evaluations_to_reach, summarise  # noqa: E402
from atomsmith.assembly.imitation import behaviour_cloning, teacher_episodes  # noqa: E402
from atomsmith.physics import load_shipped  # noqa: E402


def pretrain(env, net, params, args) -> tuple[object, dict]:
    """Teacher episodes on the melt-quench cells + behaviour cloning."""
    cells = load_shipped(64)
    starts = [int(s) for s in np.random.default_rng(0).choice(64, args.bc_starts, replace=False)]
    targets = [c for c in cells for _ in starts]
    t0 = time.perf_counter()
    res = teacher_episodes(env, targets, [s for _ in cells for s in starts])
    to_e = lambda r: float(env.task.reward_offset - r * env.task.reward_scale)  # noqa: E731
    info = {"cells": len(cells), "starts": starts, "episodes": len(targets),
            "complete": int(np.sum(np.asarray(res.final.complete))),
            "teacher_e": [to_e(r) for r in res.returns], "snap_mean_A": float(np.nanmean(res.snap)),
            "snap_median_A": float(np.nanmedian(res.snap)), "teacher_wall_s": time.perf_counter() - t0}
    log(f"teacher: {info['complete']}/{len(targets)} complete, E {np.round(info['teacher_e'], 3)}, "
        f"snap mean {info['snap_mean_A']:.2f} Å, {info['teacher_wall_s']:.0f} s")
    t0 = time.perf_counter()
    params, history = behaviour_cloning(env, net, params, [res.samples], steps=args.bc_steps,
                                        batch_size=args.bc_batch, learning_rate=args.bc_lr)
    info["history"] = history
    info["bc_wall_s"] = time.perf_counter() - t0
    log(f"behaviour cloning: {history[0]} -> {history[-1]}, {info['bc_wall_s']:.0f} s")
    return params, info


def plot(summary: dict, mq_best: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, s in summary.items():
        c = np.asarray(s["counts"])
        mean, std = np.asarray(s["mean"], float), np.asarray(s["std"], float)
        ok = np.isfinite(mean)
        ax.errorbar(c[ok], -4.0 - 0.25 * mean[ok], yerr=0.25 * std[ok], marker="o", capsize=3, label=name)
    ax.axhline(mq_best, color="k", ls=":", label="melt-quench best (fully relaxed)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("objective evaluations")
    ax.set_ylabel("best SW energy after 100 FIRE steps (eV/atom)")
    ax.set_title("a-si-64 (mean ± std over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-random", type=int, default=32)
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--sims", type=int, default=8)
    p.add_argument("--train-iters", type=int, default=0)
    p.add_argument("--bc-starts", type=int, default=2)
    p.add_argument("--bc-steps", type=int, default=60)
    p.add_argument("--bc-batch", type=int, default=16)
    p.add_argument("--bc-lr", type=float, default=3e-3)
    p.add_argument("--no-bc", action="store_true")
    p.add_argument("--counts", default="8,16,32")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--tag", default="asi_compare", help="output names: TAG.json and TAG_curves.png")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    counts = [int(c) for c in args.counts.split(",")]
    task = make_task("a-si-64")
    env = make_env(task)
    to_e = lambda r: float(task.reward_offset - r * task.reward_scale)  # noqa: E731
    net = NetworkConfig()
    results = {"command": "python experiments/mcts/asi_compare.py " + " ".join(sys.argv[1:]),
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "environment": {"python": platform.python_version(), "jax": jax.__version__,
                               "machine": platform.machine()}, "seeds": {}}
    out_json = args.out / f"{args.tag}.json"
    mq = load_shipped(64)
    results["melt_quench"] = {"energies": sw_per_atom(mq)}
    t_all = time.perf_counter()
    bc_params = None
    if not args.no_bc:
        base = init_network(task, net, jax.random.PRNGKey(0), env.reset())
        bc_params, results["pretraining"] = pretrain(env, net, base, args)
        out_json.write_text(json.dumps(results, indent=1, default=float))
    for seed in seeds:
        r: dict = {}
        t0 = time.perf_counter()
        rp = random_placement(env, args.n_random, seed)
        r["random_placement"] = {"curve": curve_from_returns(rp), "best_e": to_e(max(rp)),
                                 "wall_s": time.perf_counter() - t0}
        log(f"seed {seed} random placement best {to_e(max(rp)):.4f} eV/atom ({time.perf_counter() - t0:.0f} s)")
        scratch = "mcts_untrained" if args.train_iters == 0 else "mcts_selfplay_from_scratch"
        variants = {scratch: init_network(task, net, jax.random.PRNGKey(seed), env.reset())}
        if bc_params is not None:
            variants["mcts_bc" if args.train_iters == 0 else "mcts_bc_then_selfplay"] = bc_params
        for name, params in variants.items():
            t0 = time.perf_counter()
            m, _ = mcts(env, net, params, args, seed, args.episodes, args.sims, args.train_iters, batch=args.batch)
            r[name] = {"curve": m["curve"], "evaluations": m["evaluations"],
                       "episode_e": [to_e(x) for x in m["episode_returns"]], "best_e": to_e(m["best_return"]),
                       "wall_s": time.perf_counter() - t0}
            log(f"seed {seed} {name} best {r[name]['best_e']:.4f} eV/atom after {m['evaluations']} evaluations "
                f"({time.perf_counter() - t0:.0f} s)")
        results["seeds"][str(seed)] = r
        out_json.write_text(json.dumps(results, indent=1, default=float))
    methods = list(results["seeds"][str(seeds[0])])
    summary = {m: summarise([results["seeds"][str(s)][m]["curve"] for s in seeds], counts) for m in methods}
    for s in summary.values():
        s["mean_e"] = [to_e(v) if np.isfinite(v) else None for v in s["mean"]]
        s["std_e"] = [0.25 * v if np.isfinite(v) else None for v in s["std"]]
    results["summary"] = summary
    target = {}
    for s in seeds:
        r = results["seeds"][str(s)]
        level = max(b for _, b in r["random_placement"]["curve"])
        target[str(s)] = {"random_budget": args.n_random, "random_best_e": to_e(level),
                          **{f"{m}_evals_to_reach": evaluations_to_reach(r[m]["curve"], level)
                             for m in methods if m != "random_placement"}}
    results["target"] = target
    results["wall_s"] = time.perf_counter() - t_all
    out_json.write_text(json.dumps(results, indent=1, default=float))
    plot(summary, min(results["melt_quench"]["energies"]), args.out / f"{args.tag}_curves.png")
    log("done", f"{results['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
