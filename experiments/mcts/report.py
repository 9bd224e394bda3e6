"""Tables (markdown, to stdout) and ``curves.png`` from ``perov_compare.json`` and ``asi_compare.json``.

    python experiments/mcts/report.py [DIR]      # DIR: where the JSON files are (default: this folder)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def fmt(mean, std, n, total, digits=4, column=None) -> str:
    """``mean ± std``; ``(n=k)`` when only k of the runs had a finished structure within that budget."""
    if mean is None or not math.isfinite(mean):
        if column is not None and any(v == -math.inf for v in column):
            return "none finished yet"
        return "budget not run"
    if digits >= 4 and abs(mean) < 1e-3:
        s = f"{mean:.1e} ± {std:.1e}"
    else:
        s = f"{mean:.{digits}f} ± {std:.{digits}f}"
    return s if n == total else f"{s} (n={n})"


def perov_tables(r: dict, tag: str, reference: dict | None = None) -> None:
    """Tables of one perov run; ``reference`` (the main run) supplies the random-assembly best when ``r`` has no
    random baseline of its own (same seeds)."""
    seeds = list(r["seeds"])
    print(f"### perov-heat-ref ({tag}.json), {len(seeds)} seeds: best normalised reward (mean ± std) at fixed "
          "evaluation counts\n")
    print(f"`{r['command']}`\n")
    counts = next(iter(r["summary"].values()))["counts"]
    print("| method | " + " | ".join(str(c) for c in counts) + " | evaluations used |")
    print("|---|" + "---|" * (len(counts) + 1))
    for name, s in r["summary"].items():
        used = [max(e for e, _ in r["seeds"][k][name]["curve"]) for k in seeds]
        cols = list(zip(*s["per_seed"]))
        cells = [fmt(m, sd, n, len(seeds), column=c) for m, sd, n, c in zip(s["mean"], s["std"], s["n"], cols)]
        print(f"| {name} | " + " | ".join(cells) + f" | {min(used)}-{max(used)} |")
    print("\n### judged heat_ref (target 0.5 eV) of each method's top-k structures (by the shipped guide)\n")
    k = r["args"]["top_k"]
    print(f"| method | guide best (eV) | judge of guide-best (eV) | judge abs. error, mean top-{k} (eV) | "
          f"guide abs. error, mean top-{k} (eV) | old indep. of guide-best (eV) |")
    print("|---|---|---|---|---|---|")
    for name in r["summary"]:
        rows = [r["seeds"][s][name]["judged_top"] for s in seeds]

        def ms(key, rows=rows):
            v = np.array([row[key] for row in rows if key in row], float)
            return f"{v.mean():.3f} ± {v.std():.3f}" if v.size else "—"
        print(f"| {name} | {ms('shipped_best')} | {ms('judge_best')} | {ms('judge_abs_err_mean')} | "
              f"{ms('shipped_abs_err_mean')} | {ms('old_indep_best')} |")
    if not r["target"] and reference is not None:
        from atomsmith.assembly.curves import evaluations_to_reach

        print("\n### target (per seed): evaluations to reach the random-assembly best at 128 evaluations of "
              "perov_compare.json (same seed)\n")
        for s in seeds:
            if s not in reference["target"]:
                continue
            level = reference["target"][s]["random_best"]
            reach = {m: evaluations_to_reach(r["seeds"][s][m]["curve"], level) for m in r["seeds"][s]}
            print(f"- seed {s}: random_best={level}, " + ", ".join(f"{m}_evals_to_reach={v}" for m, v in reach.items()))
        print()
        return
    if not r["target"]:
        return
    print("\n### target (per seed): evaluations each method needs to reach the random-assembly best at its budget\n")
    for s, t in r["target"].items():
        print(f"- seed {s}: " + ", ".join(f"{k}={v}" for k, v in t.items()))
    print()


def asi_tables(r: dict, tag: str) -> None:
    seeds = list(r["seeds"])
    print(f"### a-si-64 ({tag}.json), {len(seeds)} seeds: best SW energy after 100 FIRE steps (eV/atom, mean ± std)\n")
    print(f"`{r['command']}`" + (" (stopped before its last seed)" if r.get("stopped_early") else "") + "\n")
    counts = next(iter(r["summary"].values()))["counts"]
    print("| method | " + " | ".join(str(c) for c in counts) + " | best over seeds | evaluations used |")
    print("|---|" + "---|" * (len(counts) + 2))
    for name, s in r["summary"].items():
        cols = list(zip(*s["per_seed"]))
        cells = [fmt(m, sd, n, len(seeds), 3, c) for m, sd, n, c in zip(s["mean_e"], s["std_e"], s["n"], cols)]
        best = min(r["seeds"][k][name]["best_e"] for k in seeds)
        used = [max(e for e, _ in r["seeds"][k][name]["curve"]) for k in seeds]
        print(f"| {name} | " + " | ".join(cells) + f" | {best:.3f} | {min(used)}-{max(used)} |")
    mq = r["melt_quench"]["energies"]
    print(f"| melt-quench (shipped, fully relaxed) | | | | {min(mq):.3f} (4 cells: {np.round(mq, 3).tolist()}) | — |")
    if "pretraining" in r:
        p = r["pretraining"]
        print(f"\nBC teacher: {p['complete']}/{p['episodes']} rebuilt cells complete, E after 100 FIRE steps "
              f"{min(p['teacher_e']):.3f} to {max(p['teacher_e']):.3f} eV/atom, mean snap {p['snap_mean_A']:.2f} Å; "
              f"BC ({len(p['history'])} logged points): policy loss {p['history'][0]['policy_loss']:.2f} -> "
              f"{p['history'][-1]['policy_loss']:.2f}, value loss {p['history'][0]['value_loss']:.2f} -> "
              f"{p['history'][-1]['value_loss']:.2f}; teacher {p['teacher_wall_s']:.0f} s, BC {p['bc_wall_s']:.0f} s")
    print("\n### target (per seed)\n")
    for s, t in r["target"].items():
        print(f"- seed {s}: " + ", ".join(f"{k}={v}" for k, v in t.items()))
    print()


def complete_asi(r: dict) -> dict:
    """Summary and target of an a-Si run that was stopped before its last seed (finished seeds only)."""
    from atomsmith.assembly.curves import evaluations_to_reach, summarise

    seeds = list(r["seeds"])
    counts = [int(c) for c in r["args"]["counts"].split(",")]
    to_e = lambda v: -4.0 - 0.25 * v  # noqa: E731
    r["summary"] = {m: summarise([r["seeds"][s][m]["curve"] for s in seeds], counts) for m in r["seeds"][seeds[0]]}
    for s in r["summary"].values():
        s["mean_e"] = [to_e(v) if np.isfinite(v) else None for v in s["mean"]]
        s["std_e"] = [0.25 * v if np.isfinite(v) else None for v in s["std"]]
    r["target"] = {}
    for s in seeds:
        level = max(b for _, b in r["seeds"][s]["random_placement"]["curve"])
        r["target"][s] = {"random_best_e": to_e(level), **{f"{m}_evals_to_reach": evaluations_to_reach(
            r["seeds"][s][m]["curve"], level) for m in r["seeds"][s] if m != "random_placement"}}
    r["stopped_early"] = True
    return r


def plot(perovs: dict, asis: dict, path: Path) -> None:
    """Left: perov objective ((heat_ref - 0.5) / 0.5)^2 (= -R, log scale, lower is better): mean over seeds (line)
    and each seed (dots). Right: a-Si SW energy after 100 FIRE steps (eV/atom), mean ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    if perovs:
        lines = [(name if tag == "perov_compare" else f"{name} [{tag}]", s)
                 for tag, r in perovs.items() for name, s in r["summary"].items()]
        for i, (name, s) in enumerate(lines):
            color = f"C{i}"
            c = np.asarray(s["counts"], float)
            per = -np.asarray(s["per_seed"], float)  # objective, lower is better
            mean = -np.asarray(s["mean"], float)
            ok = np.isfinite(mean)
            ax.plot(c[ok], np.maximum(mean[ok], 1e-7), "-o", color=color, label=name)
            for row in per:
                good = np.isfinite(row)
                ax.plot(c[good] * (1 + 0.04 * (i - 2)), np.maximum(row[good], 1e-7), ".", color=color, alpha=0.4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("objective evaluations")
        ax.set_ylabel("best ((heat_ref - 0.5 eV) / 0.5 eV)^2 so far (lower is better)")
        n_seeds = max(len(r["seeds"]) for r in perovs.values())
        ax.set_title(f"perov-heat-ref, shipped guide: mean (line) and {n_seeds} seeds (dots)", fontsize=9)
        ax.legend(fontsize=7)
    else:
        ax.set_visible(False)
    ax = axes[1]
    if asis:
        k = 0
        for tag, r in asis.items():
            for name, s in r["summary"].items():
                c = np.asarray(s["counts"], float)
                mean = np.asarray([np.nan if v is None else v for v in s["mean_e"]], float)
                std = np.asarray([np.nan if v is None else v for v in s["std_e"]], float)
                ok = np.isfinite(mean)
                ax.errorbar(c[ok] * (1 + 0.03 * (k - 2)), mean[ok], yerr=std[ok], marker="o", capsize=3,
                            label=f"{name} [{tag}, {len(r['seeds'])} seeds]")
                k += 1
        mq = min(min(r["melt_quench"]["energies"]) for r in asis.values())
        ax.axhline(mq, color="k", ls=":", label="melt-quench best (fully relaxed)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("objective evaluations")
        ax.set_ylabel("best SW energy after 100 FIRE steps (eV/atom)")
        ax.set_title("a-si-64: mean ± std over seeds", fontsize=9)
        ax.legend(fontsize=6)
    else:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    import sys

    here = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    perovs = {}
    for path in sorted(here.glob("perov_*.json"), key=lambda q: (q.stem != "perov_compare", q.stem)):
        r = json.loads(path.read_text())
        if "summary" in r:
            perov_tables(r, path.stem, perovs.get("perov_compare"))
            perovs[path.stem] = r
    asis = {}
    for path in sorted(here.glob("asi_*.json")):
        r = json.loads(path.read_text())
        if "summary" not in r and r.get("seeds"):  # a run stopped early: summarise the seeds it finished
            r = complete_asi(r)
        if "summary" in r:
            asi_tables(r, path.stem)
            asis[path.stem] = r
    plot(perovs, asis, here / "curves.png")


if __name__ == "__main__":
    main()
