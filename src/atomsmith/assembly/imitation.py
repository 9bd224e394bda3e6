"""Behaviour cloning: construction sequences that rebuild known structures in the assembly action space.

A *teacher* rebuilds a target structure (e.g. a shipped melt-quench a-Si cell, scaled into the task's cell) with the
environment's own actions: the target is translated so that its ``start`` atom sits at the origin (where the first
atom goes); at every later step the teacher takes the legal action whose placement lies closest (minimum image) to a
target atom of that species not matched yet, and marks that atom matched. The placements are snapped to the action
grid, so the rebuilt structure approximates the target; ``snap`` reports by how much (Å).

The sequences give behaviour-cloning samples in the format of :func:`atomsmith.assembly.selfplay.run_episodes`
(``states, action weights, value targets, mask``): policy target = the teacher's action (label-smoothed over the legal
actions), value target = the return-to-go of the teacher's episode (its finished structure is scored, and relaxed,
like any other). :func:`behaviour_cloning` fits them with the shared training loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.assembly import actions as act
from atomsmith.assembly.env import AssemblyEnv
from atomsmith.assembly.networks import NetworkConfig
from atomsmith.assembly.selfplay import ReplayBuffer, make_trainer
from atomsmith.assembly.state import AssemblyState
from atomsmith.structures.crystal import Crystal
from atomsmith.training.loop import TrainConfig

_BIG = 1e6


class TeacherTargetError(ValueError):
    """Raised for a target structure that does not fit the task (composition or species)."""


@dataclasses.dataclass
class TeacherResult:
    """Teacher episodes for B targets.

    Attributes:
      final: final states (leading axis B); ``returns [B]`` their normalised returns ``R``.
      snap: ``[B, N]`` distance (Å) between each placed atom and the target atom it was matched to (NaN if unplaced).
      samples: ``(states [T*B], action weights [T*B, A], value targets [T*B], mask [T*B])`` for training.
    """

    final: AssemblyState
    returns: np.ndarray
    snap: np.ndarray
    samples: tuple


def target_arrays(env: AssemblyEnv, crystal: Crystal, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(positions [N, 3] Å in the task cell, species index [N])`` of ``crystal`` with atom ``start`` moved to the
    origin; the fractional coordinates are kept (the cell is rescaled to the task's)."""
    task = env.task
    if crystal.n_atoms != task.n_atoms:
        raise TeacherTargetError(f"the target has {crystal.n_atoms} atoms, the task builds {task.n_atoms}")
    index = {int(z): i for i, z in enumerate(task.species)}
    if any(int(z) not in index for z in crystal.numbers):
        raise TeacherTargetError(f"target species {sorted(set(crystal.numbers.tolist()))} not in {task.species}")
    species = np.asarray([index[int(z)] for z in crystal.numbers], np.int32)
    if not np.array_equal(np.bincount(species, minlength=task.n_species), np.asarray(task.counts)):
        raise TeacherTargetError("the target's composition differs from the task's counts")
    if not 0 <= start < crystal.n_atoms:
        raise TeacherTargetError(f"start atom {start} out of range")
    frac = (np.asarray(crystal.frac_coords) - crystal.frac_coords[start]) % 1.0
    return (frac @ task.lattice_array).astype(np.float32), species


def _teacher_one(env: AssemblyEnv, state: AssemblyState, targets: jax.Array, tspecies: jax.Array,
                 used: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(action, matched target, snap distance Å)`` for one state."""
    task = env.task
    lattice = env.lattice
    inv = jnp.linalg.inv(lattice)
    n_species = task.n_species
    pts = act.candidates(task, state.positions, state.focus, state.frame)  # [P, 3]
    n_place = pts.shape[0]
    first = state.n == 0
    pts = jnp.where(first, jnp.zeros_like(pts), pts)  # the first atom goes to the origin
    frac = (targets[None, :, :] - pts[:, None, :]) @ inv
    frac = frac - jnp.round(frac)
    dist = jnp.linalg.norm(frac @ lattice, axis=-1)  # [P, M]
    dist = jnp.where(used[None, :], _BIG, dist)
    same = tspecies[None, :] == jnp.arange(n_species)[:, None]  # [S, M]
    cost = jnp.where(same[:, None, :], dist[None, :, :], _BIG)  # [S, P, M]
    best_m = jnp.argmin(cost, axis=-1)  # [S, P]
    best_d = jnp.min(cost, axis=-1)
    legal = state.legal[:-1].reshape(n_species, n_place)
    flat = jnp.where(legal, best_d, _BIG).reshape(-1)
    action = jnp.argmin(flat)
    matched = best_m.reshape(-1)[action]
    return action.astype(jnp.int32), matched.astype(jnp.int32), flat[action]


@jax.jit
def teacher_actions(env: AssemblyEnv, states: AssemblyState, targets: jax.Array, tspecies: jax.Array,
                    used: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Batched teacher: states (leading B), ``targets [B, M, 3]`` Å, ``tspecies [B, M]``, ``used [B, M]`` ->
    ``(actions [B], matched [B], snap [B])``."""
    return jax.vmap(lambda s, t, ts, u: _teacher_one(env, s, t, ts, u))(states, targets, tspecies, used)


_step = jax.jit(lambda env, s, a: env.step(s, a))


def teacher_episodes(env: AssemblyEnv, crystals: Sequence[Crystal], starts: Sequence[int] | None = None,
                     smoothing: float = 0.1) -> TeacherResult:
    """Rebuild ``crystals`` (one episode each, in parallel) from their ``starts`` atoms (default 0)."""
    crystals = list(crystals)
    if not crystals:
        raise TeacherTargetError("no target structures")
    starts = [0] * len(crystals) if starts is None else list(starts)
    if len(starts) != len(crystals):
        raise TeacherTargetError("one start atom per target structure")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError("smoothing must be in [0, 1)")
    arrays = [target_arrays(env, c, s) for c, s in zip(crystals, starts)]
    targets = jnp.asarray(np.stack([a for a, _ in arrays]))
    tspecies = jnp.asarray(np.stack([b for _, b in arrays]))
    b, m = tspecies.shape
    used = np.zeros((b, m), bool)
    snap = np.full((b, env.task.n_atoms), np.nan)
    states = jax.tree_util.tree_map(lambda x: jnp.stack([x] * b), env.reset())
    traj_states, traj_weights, traj_rewards, traj_live = [], [], [], []
    while not bool(jnp.all(states.done)):
        live = ~np.asarray(states.done)
        actions, matched, dist = (np.asarray(x) for x in teacher_actions(env, states, targets, tspecies,
                                                                          jnp.asarray(used)))
        n_before = np.asarray(states.n)
        for i in np.flatnonzero(live):
            used[i, matched[i]] = True
            snap[i, n_before[i]] = dist[i]
        legal = np.asarray(states.legal, np.float32)
        uniform = legal / np.maximum(legal.sum(axis=1, keepdims=True), 1.0)
        weights = (1.0 - smoothing) * np.eye(legal.shape[1], dtype=np.float32)[actions] + smoothing * uniform
        traj_states.append(states)
        traj_weights.append(jnp.asarray(weights))
        traj_live.append(live)
        states, rewards, _ = _step(env, states, jnp.asarray(actions))
        traj_rewards.append(np.where(live, np.asarray(rewards), 0.0))
    rewards = np.stack(traj_rewards)
    value_targets = np.cumsum(rewards[::-1], axis=0)[::-1]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *traj_states)
    samples = (stacked, jnp.concatenate(traj_weights), jnp.asarray(value_targets.reshape(-1), jnp.float32),
               jnp.asarray(np.stack(traj_live).reshape(-1)))
    return TeacherResult(states, np.asarray(states.final_return), snap, samples)


def behaviour_cloning(env: AssemblyEnv, net: NetworkConfig, params, samples: Sequence[tuple], steps: int,
                      batch_size: int = 32, seed: int = 0, learning_rate: float = 1e-3) -> tuple[object, list[dict]]:
    """Fit the policy/value network to teacher (or any) samples with the shared training loop.

    Returns ``(params, history)``; ``history`` holds the loss terms every ``max(1, steps // 10)`` steps.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    replay = ReplayBuffer(capacity=10 ** 7)
    for s in samples:
        replay.add(s)
    state, step = make_trainer(env, net, params, TrainConfig(learning_rate=learning_rate, warmup_steps=min(10, steps),
                                                             max_steps=steps, ema_decay=0.0))
    rng = np.random.default_rng(seed)
    history = []
    for i in range(steps):
        state, metrics = step(state, replay.sample(rng, batch_size))
        if i % max(1, steps // 10) == 0 or i == steps - 1:
            history.append({"step": i, **{k: float(v) for k, v in metrics.items()}})
    return state.params, history
