"""Guidance with the shipped perov_5 heat_ref predictor: steer cells towards a target heat of formation.

    nice -n 10 python experiments/predictors/guidance_demo.py

A demonstration of the one guidance interface (``objective(batch, species_weights) -> [G]`` and
``guidance.value_and_grad``) as a generator would use it. Each of 16 perov_5 test cells starts at its own predicted
heat_ref; the objective asks for ``start - 0.5 eV``, plus a ``MinDistance`` term that keeps atoms >= 1.6 Å apart.
Adam steps move fractional coordinates and lattice; the neighbour list is rebuilt every 10 steps. Writes
guidance_demo.json (per-step mean objective, predicted values, minimum distances before and after).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from common import HERE, environment, write_json

from atomsmith import datasets, pretrained
from atomsmith.graphs.batching import batch_graphs
from atomsmith.guidance import MinDistance, PropertyTarget, value_and_grad
from atomsmith.predictors import load_predictor
from atomsmith.structures.crystal import Crystal


def min_distance(crystal: Crystal) -> float:
    pairs = crystal.close_pairs(5.0)
    return min(d for _, _, d in pairs)


def main(n_cells: int = 16, steps: int = 60, shift_ev: float = -0.5, lr: float = 0.01) -> None:
    predictor, _ = load_predictor(pretrained.path_of("perov-5-heat-ref"), target="heat_ref")
    cells = datasets.load("perov_5", "test", limit=n_cells)
    cutoff = predictor.config.encoder.cutoff
    sizes = (128, 8192, n_cells + 1)
    start = np.asarray(predictor.predict(cells))
    target = np.zeros(sizes[2], np.float32)
    target[:n_cells] = start + shift_ev
    objective = (PropertyTarget(predictor, target=jnp.asarray(target), scale=0.1)
                 + 10.0 * MinDistance(min_distance=1.6))
    step_fn = jax.jit(value_and_grad)
    frac = np.stack([c.frac_coords for c in cells])
    lattice = np.stack([c.lattice for c in cells])
    params = {"frac": jnp.asarray(frac, jnp.float32), "lattice": jnp.asarray(lattice, jnp.float32)}
    opt = optax.adam(lr)
    opt_state = opt.init(params)
    history = []
    t0 = time.perf_counter()
    batch = None
    for step in range(steps + 1):
        current = [c.replace(frac_coords=np.asarray(params["frac"][k], np.float64),
                             lattice=np.asarray(params["lattice"][k], np.float64)) for k, c in enumerate(cells)]
        if step % 10 == 0 or batch is None:
            batch = batch_graphs(current, cutoff=cutoff, sizes=sizes)
        batch = batch.replace(
            frac_coords=batch.frac_coords.at[: 5 * n_cells].set(params["frac"].reshape(-1, 3)),
            lattices=batch.lattices.at[:n_cells].set(params["lattice"]))
        result = step_fn(objective, batch)
        history.append({"step": step, "mean_objective": float(jnp.mean(result.values[:n_cells]))})
        if step == steps:
            break
        grads = {"frac": result.frac_coords[: 5 * n_cells].reshape(n_cells, 5, 3),
                 "lattice": result.lattices[:n_cells]}
        updates, opt_state = opt.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
    final = np.asarray(predictor.predict(current))
    out = {"n_cells": n_cells, "steps": steps, "target_shift_eV": shift_ev, "adam_lr": lr,
           "predicted_start_eV": start.tolist(), "target_eV": target[:n_cells].tolist(),
           "predicted_final_eV": final.tolist(),
           "mean_abs_error_to_target_start_eV": float(np.mean(np.abs(start - target[:n_cells]))),
           "mean_abs_error_to_target_final_eV": float(np.mean(np.abs(final - target[:n_cells]))),
           "min_distance_start_A": float(min(min_distance(c) for c in cells)),
           "min_distance_final_A": float(min(min_distance(c) for c in current)),
           "history": history, "wall_s": round(time.perf_counter() - t0, 1), "environment": environment()}
    write_json(HERE / "guidance_demo.json", out)
    print({k: v for k, v in out.items() if not isinstance(v, list) and k != "environment"})


if __name__ == "__main__":
    main()
