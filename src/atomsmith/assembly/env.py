"""The assembly environment: pure-JAX transitions, terminal logic and the reward from a guidance objective.

Reward (single player, discount 1, discount 0 after the terminal step). With ``R`` the normalised objective of the
finished structure, ``R = -(objective - offset) / scale`` (:meth:`AssemblyTask.normalise`), and ``Phi`` the shaping
potential (``task.shaping``: minus the normalised unrelaxed SW energy of the atoms placed so far, 0 otherwise)::

    r_t = Phi(s_{t+1}) - Phi(s_t)      (non-terminal step)
    r_t = R(s_{t+1})   - Phi(s_t)      (step that ends the episode)

so the return of an episode is ``R - Phi(s_0)`` (potential-based shaping does not change the optimal policy; Ng et
al. 1999), and the terminal reward is exactly the guidance objective of the finished (relaxed) structure, normalised.
An episode that ends before the composition is complete (no legal action left) gets
``R = task.dead_end_return - missing fraction``. Finishing a-Si structures runs ``task.relax_steps`` FIRE steps
(:func:`atomsmith.physics.fire_relax`) before the objective.

:meth:`AssemblyEnv.step` works on a batch and evaluates the (costly) finishing only when some state of the batch
finishes (a batch-level ``lax.cond``), so searches pay for relaxations only at terminal nodes.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.assembly import actions as act
from atomsmith.assembly.graph import neighbor_spec, state_graph
from atomsmith.assembly.objectives import SWEnergyPerAtom
from atomsmith.assembly.state import AssemblyState, empty_state
from atomsmith.assembly.tasks import AssemblyTask
from atomsmith.physics.relax import FireConfig, fire_relax, relax_spec
from atomsmith.physics.stillinger_weber import SILICON, SWModel
from atomsmith.structures.crystal import Crystal


@flax.struct.dataclass
class AssemblyEnv:
    """A task plus the guidance objective that scores finished structures (a pytree: pass it to jitted code).

    Attributes:
      task: the static :class:`AssemblyTask`.
      objective: a shared guidance objective ``(batch) -> [G]`` (lower is better).
      objective_cutoff: graph cutoff (Å) the objective needs (SW cutoff, or the predictor's encoder cutoff).
    """

    task: AssemblyTask = flax.struct.field(pytree_node=False)
    objective: Any
    objective_cutoff: float = flax.struct.field(pytree_node=False, default=SILICON.cutoff + 0.2)

    # ---- static helpers -------------------------------------------------------------------------------------
    @property
    def lattice(self) -> jax.Array:
        return jnp.asarray(self.task.lattice_array, jnp.float32)

    @property
    def n_actions(self) -> int:
        return act.n_actions(self.task)

    @property
    def numbers(self) -> jax.Array:
        return jnp.asarray(self.task.species, jnp.int32)

    def _objective_spec(self):
        return neighbor_spec(self.task.lattice_array, self.task.n_atoms, self.objective_cutoff, 64)

    def _fire(self) -> tuple[FireConfig, Any]:
        config = FireConfig(fmax=self.task.relax_fmax, max_steps=max(self.task.relax_steps, 1),
                            model=SWModel(max_degree=24))
        return config, relax_spec(self.task.lattice_array, self.task.n_atoms, config)

    # ---- pieces -------------------------------------------------------------------------------------------
    def graph(self, positions: jax.Array, state: AssemblyState):
        """The objective's :class:`GraphBatch` of ``state``'s atoms at ``positions`` ``[N, 3]`` Å."""
        numbers = self.numbers[jnp.maximum(state.species, 0)]
        batch, _ = state_graph(positions, state.occupied, numbers, self.lattice, self._objective_spec())
        return batch

    def objective_value(self, positions: jax.Array, state: AssemblyState) -> jax.Array:
        """Scalar objective of the structure (lower is better)."""
        return self.objective(self.graph(positions, state))[0]

    def potential(self, state: AssemblyState) -> jax.Array:
        """Shaping potential ``Phi`` (normalised units; 0 without shaping)."""
        if not self.task.shaping:
            return jnp.zeros((), state.positions.dtype)
        numbers = self.numbers[jnp.maximum(state.species, 0)]
        spec = neighbor_spec(self.task.lattice_array, self.task.n_atoms, SILICON.cutoff + 0.2, 64)
        batch, _ = state_graph(state.positions, state.occupied, numbers, self.lattice, spec)
        total = SWEnergyPerAtom()(batch)[0] * state.n
        n_target = self.task.n_atoms
        return -(total / n_target - self.task.reward_offset * state.n / n_target) / self.task.reward_scale

    def finish(self, state: AssemblyState) -> AssemblyState:
        """Evaluate a finished state: relax (a-Si), objective, normalised return (dead ends get the floor)."""
        task = self.task
        if task.relax_steps > 0:
            config, spec = self._fire()
            result = fire_relax(state.positions, self.lattice, spec, config)
            relaxed, steps = result.positions, result.n_steps
        else:
            relaxed, steps = state.positions, jnp.asarray(0, jnp.int32)
        value = self.objective_value(relaxed, state)
        finished = state.complete | (jnp.asarray(task.allow_stop) & state.done & (state.n > 0))
        missing = jnp.sum(state.remaining) / task.n_atoms
        ret = jnp.where(finished, task.normalise(value), task.dead_end_return - missing)
        return state.replace(final_return=ret.astype(state.positions.dtype),
                             objective_value=jnp.where(finished, value, jnp.nan).astype(state.positions.dtype),
                             relaxed=relaxed, relax_steps=jnp.where(finished, steps, 0).astype(jnp.int32))

    def transition(self, state: AssemblyState, action: jax.Array) -> tuple[AssemblyState, jax.Array]:
        """One state, one action -> (next state without finishing, shaping reward). Done states stay put."""
        task = self.task
        stop = action == act.stop_action(task)
        species_index, placement = act.decode(task, jnp.minimum(action, act.stop_action(task) - 1))
        pts = act.candidates(task, state.positions, state.focus, state.frame)
        new_pos = jnp.where(state.n == 0, jnp.zeros(3, state.positions.dtype), pts[placement])
        frac = new_pos @ jnp.linalg.inv(self.lattice)
        new_pos = (frac - jnp.floor(frac)) @ self.lattice
        slot = jnp.minimum(state.n, task.n_atoms - 1)
        placed = state.replace(positions=state.positions.at[slot].set(new_pos),
                               species=state.species.at[slot].set(species_index.astype(jnp.int32)),
                               n=state.n + 1, remaining=state.remaining.at[species_index].add(-1))
        placed = act.refresh(task, placed, self.lattice)
        stopped = state.replace(done=jnp.asarray(True))
        nxt = jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), stopped, placed)
        nxt = nxt.replace(potential=self.potential(nxt), just_finished=nxt.done)
        shaping = nxt.potential - state.potential
        # a done state never moves
        nxt = jax.tree_util.tree_map(lambda a, b: jnp.where(state.done, a, b), state.replace(
            just_finished=jnp.asarray(False)), nxt)
        return nxt, jnp.where(state.done, 0.0, shaping)

    def step(self, states: AssemblyState, actions: jax.Array) -> tuple[AssemblyState, jax.Array, jax.Array]:
        """Batched step: ``states`` with leading axis B, ``actions [B]`` -> (states, rewards [B], discounts [B])."""
        nxt, shaping = jax.vmap(self.transition)(states, actions)

        def evaluate(s):
            return jax.vmap(self.finish)(s)

        finished = jax.lax.cond(jnp.any(nxt.just_finished), evaluate, lambda s: s, nxt)
        nxt = jax.tree_util.tree_map(
            lambda a, b: jnp.where(_bcast(nxt.just_finished, a), a, b), finished, nxt)
        rewards = jnp.where(nxt.just_finished, nxt.final_return - states.potential, shaping)
        discounts = jnp.where(nxt.done, 0.0, 1.0).astype(rewards.dtype)
        return nxt, rewards, discounts

    # ---- host side ----------------------------------------------------------------------------------------
    def reset(self, fixed: Crystal | None = None) -> AssemblyState:
        """The start state: an empty cell, or ``fixed`` atoms (infilling; same cell, species from the task)."""
        task = self.task
        state = empty_state(task.n_atoms, task.counts, self.n_actions)
        if fixed is not None:
            if not np.allclose(fixed.lattice, task.lattice_array, atol=1e-4):
                raise ValueError("fixed atoms must be given in the task's cell")
            index = {z: i for i, z in enumerate(task.species)}
            if any(int(z) not in index for z in fixed.numbers):
                raise ValueError(f"fixed atoms must be of species {task.species}")
            k = fixed.n_atoms
            species = np.asarray([index[int(z)] for z in fixed.numbers], np.int32)
            remaining = np.asarray(task.counts) - np.bincount(species, minlength=task.n_species)
            if k > task.n_atoms or np.any(remaining < 0):
                raise ValueError("more fixed atoms than the task's composition allows")
            state = state.replace(
                positions=state.positions.at[:k].set(jnp.asarray(fixed.positions, jnp.float32)),
                species=state.species.at[:k].set(jnp.asarray(species)), fixed=state.fixed.at[:k].set(True),
                n=jnp.asarray(k, jnp.int32), remaining=jnp.asarray(remaining, jnp.int32))
        state = _refresh_jit(self, state)
        return state.replace(potential=_potential_jit(self, state))

    def to_crystal(self, state: AssemblyState, relaxed: bool = True) -> Crystal:
        """Host: the placed atoms as a :class:`Crystal` (relaxed positions if the state was finished)."""
        occ = np.asarray(state.species) >= 0
        use_relaxed = relaxed and bool(state.complete) and self.task.relax_steps > 0
        pos = np.asarray(state.relaxed if use_relaxed else state.positions, np.float64)[occ]
        lattice = self.task.lattice_array
        frac = np.linalg.solve(lattice.T, pos.T).T % 1.0
        numbers = np.asarray(self.task.species)[np.asarray(state.species)[occ]]
        props = {}
        if bool(state.done):
            props = {"assembly_return": float(state.final_return), "objective": float(state.objective_value)}
        return Crystal(lattice, frac, numbers, properties=props)


def _bcast(mask: jax.Array, like: jax.Array) -> jax.Array:
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


@jax.jit
def _refresh_jit(env: AssemblyEnv, state: AssemblyState) -> AssemblyState:
    return act.refresh(env.task, state, env.lattice)


@jax.jit
def _potential_jit(env: AssemblyEnv, state: AssemblyState) -> jax.Array:
    return env.potential(state)


def make_env(task: AssemblyTask, predictor: Any = None) -> AssemblyEnv:
    """The environment of a task with its objective: SW energy per atom, or a ``PropertyTarget`` on ``predictor``
    (default: the shipped ``perov-5-heat-ref``) for ``heat_ref`` tasks."""
    if task.objective == "sw_energy":
        return AssemblyEnv(task=task, objective=SWEnergyPerAtom())
    from atomsmith.guidance import PropertyTarget

    if predictor is None:
        from atomsmith import pretrained
        from atomsmith.predictors import load_predictor

        predictor, _ = load_predictor(pretrained.path_of("perov-5-heat-ref"), target="heat_ref")
    objective = PropertyTarget(predictor=predictor, target=task.target, scale=task.target_scale)
    return AssemblyEnv(task=task, objective=objective, objective_cutoff=float(predictor.config.encoder.cutoff))
