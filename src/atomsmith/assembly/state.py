"""The assembly state: a frozen pytree with static shapes (the mctx embedding is this state itself).

``N`` = atoms of the finished structure (``task.n_atoms``), ``S`` = species, ``A`` = actions.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class AssemblyState:
    """One partially built structure in the task's fixed cell.

    Attributes:
      positions: ``[N, 3]`` Cartesian Å (slots ``>= n`` are empty and hold zeros).
      species: ``[N]`` int index into ``task.species``; -1 for empty slots.
      fixed: ``[N]`` bool, atoms given at the start (infilling).
      n: number of placed atoms.
      remaining: ``[S]`` int atoms of each species still to place.
      closed: ``[N]`` bool, atoms around which no legal placement is left (monotone: adding atoms only removes room).
      focus: atom the next placement is relative to (lowest-index open atom), -1 before the first atom.
      frame: ``[3, 3]`` rows x, y, z of the focus's local frame (see :mod:`atomsmith.assembly.actions`).
      legal: ``[A]`` bool legal actions.
      done: episode over (composition complete or no legal action).
      complete: the composition is complete.
      just_finished: this state was reached by the step that ended the episode (the objective was evaluated).
      potential: shaping potential of this state (normalised reward units).
      final_return: normalised terminal return ``R`` (set when ``done``).
      objective_value: objective of the finished structure (lower is better; NaN until evaluated).
      relaxed: ``[N, 3]`` Å positions after the finishing relaxation (set when complete).
      relax_steps: FIRE steps used by the finishing relaxation.
    """

    positions: jax.Array
    species: jax.Array
    fixed: jax.Array
    n: jax.Array
    remaining: jax.Array
    closed: jax.Array
    focus: jax.Array
    frame: jax.Array
    legal: jax.Array
    done: jax.Array
    complete: jax.Array
    just_finished: jax.Array
    potential: jax.Array
    final_return: jax.Array
    objective_value: jax.Array
    relaxed: jax.Array
    relax_steps: jax.Array

    @property
    def occupied(self) -> jax.Array:
        """``[N]`` bool, slots holding an atom."""
        return self.species >= 0


def empty_state(n_atoms: int, counts, n_actions: int, dtype=jnp.float32) -> AssemblyState:
    """An empty cell (no focus, legality not yet computed: call ``actions.refresh``)."""
    return AssemblyState(
        positions=jnp.zeros((n_atoms, 3), dtype), species=jnp.full((n_atoms,), -1, jnp.int32),
        fixed=jnp.zeros((n_atoms,), bool), n=jnp.asarray(0, jnp.int32),
        remaining=jnp.asarray(counts, jnp.int32), closed=jnp.zeros((n_atoms,), bool),
        focus=jnp.asarray(-1, jnp.int32), frame=jnp.eye(3, dtype=dtype), legal=jnp.zeros((n_actions,), bool),
        done=jnp.asarray(False), complete=jnp.asarray(False), just_finished=jnp.asarray(False),
        potential=jnp.asarray(0.0, dtype), final_return=jnp.asarray(0.0, dtype),
        objective_value=jnp.asarray(jnp.nan, dtype), relaxed=jnp.zeros((n_atoms, 3), dtype),
        relax_steps=jnp.asarray(0, jnp.int32))
