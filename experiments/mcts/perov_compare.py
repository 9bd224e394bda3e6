"""perov-heat-ref over several seeds: MCTS vs random assembly vs guided diffusion on one objective and budget.

    nice -n 10 python experiments/mcts/perov_compare.py --seeds 0,1,2

Task ``perov-heat-ref``: V Rh F N O in a 4.02 Å cubic cell; objective ``((heat_ref - 0.5 eV) / 0.5 eV)^2`` from the
shipped ``perov-5-heat-ref`` predictor (``PropertyTarget``); normalised reward ``R = -objective``.

* **random assembly**: uniformly random legal actions of the assembly environment (one evaluation per structure).
* **MCTS**: Gumbel MuZero (16 simulations, 16 considered root actions), default network, self-play training after
  each round (``--train-iters`` AdamW steps on the replay buffer); every finished node of every tree is one
  evaluation (see ``atomsmith.assembly.selfplay.EpisodeResult``).
* **guided diffusion**: the shipped ``perov-5`` diffusion model with the same composition and the same held cell
  (``conditions={"composition", "lattice"}``), gradient guidance by the *same objective* (``env.objective``) with
  ``guidance_scale`` w (w = 0: unguided). Each sampled structure scored by the objective is one evaluation (the
  guidance gradients inside the sampler are not counted). A sample with two atoms closer than the task's 1.7 Å
  minimum distance (which the assembler cannot build) gets the task's dead-end reward.

Every method keeps its ``--top-k`` best distinct structures (by the shipped predictor); those are re-scored by the
independent judge ``experiments/guided/judge_heat_ref.ckpt`` (other split, seed and architecture; test MAE 0.099 eV)
and by the older ``indep_predictor`` (same split). Writes ``TAG.json`` and ``TAG_curves.png`` (``--tag``, default
``perov_compare``); ``--methods`` picks a subset of random, mcts, diffusion.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import log, mcts, random_assembly  # noqa: E402

from atomsmith.assembly import NetworkConfig, init_network, make_env, make_task  # noqa: E402
from atomsmith.assembly.curves import curve_from_returns, evaluations_to_reach, summarise  # noqa: E402
from atomsmith.assembly.scoring import score_crystals  # noqa: E402


def top_distinct(returns, items, k: int) -> list[tuple[float, object]]:
    """The ``k`` best distinct returns with their items, best first."""
    order = np.argsort(-np.asarray(returns, float))
    out, seen = [], set()
    for i in order:
        key = round(float(returns[i]), 7)
        if key in seen or not np.isfinite(returns[i]):
            continue
        seen.add(key)
        out.append((float(returns[i]), items[i]))
        if len(out) == k:
            break
    return out


def judge_top(crystals, returns, judges: dict, target: float) -> dict:
    """Shipped-guide return and judged heat_ref of the top structures (best first)."""
    out = {"guide_return": [float(r) for r in returns]}
    for name, predictor in judges.items():
        values = np.asarray(predictor.predict(crystals), float).reshape(-1)
        out[name] = values.tolist()
        out[f"{name}_abs_err_mean"] = float(np.mean(np.abs(values - target)))
        out[f"{name}_best"] = float(values[0])
    return out


def run_seed(args, seed: int, env, judges, model) -> dict:
    """Every method in ``args.methods`` for one seed: ``{method: {curve, judged_top, ...}}``."""
    res: dict = {}
    if "random" in args.methods:
        run_random(args, seed, env, judges, res)
    if "mcts" in args.methods:
        run_mcts(args, seed, env, judges, res)
    if "diffusion" in args.methods:
        run_diffusion(args, seed, env, judges, model, res)
    return res


def run_random(args, seed: int, env, judges, res: dict) -> None:
    task = env.task
    t0 = time.perf_counter()
    ra, states = random_assembly(env, args.n_random, seed, 16)
    flat = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *states)
    top = top_distinct(ra, list(range(len(ra))), args.top_k)
    crystals = [env.to_crystal(jax.tree_util.tree_map(lambda x, i=i: x[i], flat)) for _, i in top]
    res["random"] = {"curve": curve_from_returns(ra), "wall_s": time.perf_counter() - t0,
                     "judged_top": judge_top(crystals, [r for r, _ in top], judges, task.target)}
    log(f"seed {seed} random best {max(ra):.4f} ({time.perf_counter() - t0:.0f} s)")


def run_mcts(args, seed: int, env, judges, res: dict) -> None:
    task = env.task
    net = NetworkConfig()
    params = init_network(task, net, jax.random.PRNGKey(seed), env.reset())
    t0 = time.perf_counter()
    found: list = []
    m, _ = mcts(env, net, params, args, seed, args.episodes, args.sims, args.train_iters, batch=args.batch,
                keep_top=args.top_k, top_out=found)
    top = top_distinct([r for r, _ in found], [s for _, s in found], args.top_k)
    crystals = [env.to_crystal(s) for _, s in top]
    res["mcts"] = {"curve": m["curve"], "evaluations": m["evaluations"], "episode_returns": m["episode_returns"],
                   "wall_s": time.perf_counter() - t0,
                   "judged_top": judge_top(crystals, [r for r, _ in top], judges, task.target)}
    log(f"seed {seed} mcts best {m['best_return']:.4f} after {m['evaluations']} evals "
        f"({time.perf_counter() - t0:.0f} s)")


def run_diffusion(args, seed: int, env, judges, model, res: dict) -> None:
    """Guided diffusion on the same composition and cell, one run per guidance scale."""
    task = env.task
    composition = [int(z) for z, c in zip(task.species, task.counts) for _ in range(c)]
    for w in args.scales:
        t0 = time.perf_counter()
        crystals = model.sample(jax.random.PRNGKey(1000 + seed), args.n_diffusion, steps=args.steps,
                                conditions={"composition": composition, "lattice": task.lattice_array},
                                guidance=env.objective if w > 0 else None, guidance_scale=w if w > 0 else 1.0)
        raw = score_crystals(env, crystals)
        ret = score_crystals(env, crystals, respect_min_distance=True)
        top = top_distinct(ret, crystals, args.top_k)
        res[f"diffusion_w{w:g}"] = {
            "curve": curve_from_returns(ret), "curve_ignoring_min_distance": curve_from_returns(raw),
            "fraction_min_distance_ok": float(np.mean(ret == raw)), "wall_s": time.perf_counter() - t0,
            "judged_top": judge_top([c for _, c in top], [r for r, _ in top], judges, task.target)}
        log(f"seed {seed} diffusion w={w:g} best {max(ret):.4f} (ignoring 1.7 Å: {max(raw):.4f}), "
            f"{time.perf_counter() - t0:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n-random", type=int, default=256)
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--sims", type=int, default=16)
    p.add_argument("--train-iters", type=int, default=20)
    p.add_argument("--n-diffusion", type=int, default=128)
    p.add_argument("--steps", type=int, default=200, help="diffusion reverse steps")
    p.add_argument("--scales", default="0,25,250", help="guidance scales w (0: unguided)")
    p.add_argument("--top-k", type=int, default=8)
    p.add_argument("--counts", default="16,32,64,128,256")
    p.add_argument("--out", type=Path, default=HERE)
    p.add_argument("--methods", default="random,mcts,diffusion", help="which methods to run (comma-separated)")
    p.add_argument("--tag", default="perov_compare", help="output names: TAG.json, TAG_curves.png")
    args = p.parse_args()
    args.scales = [float(w) for w in args.scales.split(",")]
    args.methods = args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    counts = [int(c) for c in args.counts.split(",")]

    from atomsmith.pretrained import load_model
    from atomsmith.predictors import load_predictor

    task = make_task("perov-heat-ref")
    env = make_env(task)
    judges = {"shipped": load_model("perov-5-heat-ref", kinds=("predictor",)),
              "judge": load_predictor(HERE.parent / "guided" / "judge_heat_ref.ckpt", target="heat_ref")[0]}
    old = HERE / "indep_predictor" / "perov5_heat_ref_indep_seed1.ckpt"
    if old.exists():
        judges["old_indep"] = load_predictor(old, target="heat_ref")[0]
    model = load_model("perov-5", kinds=("diffusion",))
    results = {"command": "python experiments/mcts/perov_compare.py " + " ".join(sys.argv[1:]),
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "environment": {"python": platform.python_version(), "jax": jax.__version__,
                               "machine": platform.machine()},
               "task": {"name": task.name, "target": task.target, "scale": task.target_scale,
                        "min_distance": task.min_distance}, "seeds": {}}
    t_all = time.perf_counter()
    for seed in seeds:
        results["seeds"][str(seed)] = run_seed(args, seed, env, judges, model)
        (args.out / f"{args.tag}.json").write_text(json.dumps(results, indent=1, default=float))
    methods = list(results["seeds"][str(seeds[0])])
    summary = {m: summarise([results["seeds"][str(s)][m]["curve"] for s in seeds], counts) for m in methods}
    results["summary"] = summary
    # target: MCTS reaches the random-search best (at the random budget) with at most half the evaluations
    target = {}
    for s in seeds if "random" in methods else []:
        r = results["seeds"][str(s)]
        budget = min(args.n_random, 128)
        level = max(b for e, b in r["random"]["curve"] if e <= budget)
        target[str(s)] = {"random_budget": budget, "random_best": level,
                          **{f"{m}_evals_to_reach": evaluations_to_reach(r[m]["curve"], level)
                             for m in methods if m != "random"}}
    results["target"] = target
    results["wall_s"] = time.perf_counter() - t_all
    (args.out / f"{args.tag}.json").write_text(json.dumps(results, indent=1, default=float))
    from report import plot

    plot({args.tag: results}, {}, args.out / f"{args.tag}_curves.png")  # the perov panel of report.py's curves.png
    log("done", f"{results['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
