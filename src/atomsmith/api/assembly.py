"""``atomsmith.assemble``: build a structure atom by atom with Gumbel MuZero search (mctx), through the generator
protocol (:class:`~atomsmith.assembly.generator.Assembler`), so user objectives (``guidance=``) reach the search.

With a task (tens of seconds on a CPU: the search compiles)::

    best = atomsmith.assemble("a-si-8", simulations=8, tiny=True)      # Crystal with property 'reward'
    best = atomsmith.assemble("a-si-8", guidance=atomsmith.MinDistance(2.2))   # plus your own objective

The assembler of a task is a generator like the others:

    >>> from atomsmith.assembly.generator import Assembler
    >>> assembler = Assembler("a-si-8")
    >>> assembler.task.n_atoms, assembler.capabilities.guidance, assembler.options(simulations=8).simulations
    (8, True, 8)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.structures.crystal import Crystal


class NothingAssembledError(RuntimeError):
    """No episode completed the task's composition (every path dead-ended)."""


def assemble(task: str = "a-si-64", *, simulations: int = 32, seed: int = 0, episodes: int = 1,
             considered: int = 16, tiny: bool = False, guidance: Any = None,
             on_move: Callable[[int, int, float], None] | None = None) -> Crystal:
    """Search for the best structure of an assembly task.

    Args:
      task: ``a-si-64``, ``a-si-8`` or ``perov-heat-ref`` (see :func:`atomsmith.assembly.make_task`).
      simulations: search simulations per move.
      seed: the same seed gives the same search.
      episodes: episodes played in parallel (the best finished one is returned).
      considered: root actions considered (Gumbel top-k).
      tiny: a tiny policy/value network (fast to compile; for smoke tests).
      guidance: your own objective from :mod:`atomsmith.guidance` (e.g. ``MinDistance(2.0)``; lower is better),
        added to the task's objective (the reward is the normalised sum).
      on_move: called as ``on_move(move, evaluations so far, best normalised reward so far)``.

    Returns:
      The best finished structure, with properties ``reward`` (normalised), ``objective`` (the task's objective
      value, e.g. SW energy per atom in eV) and ``evaluations``.

    Raises:
      InvalidRequestError for an unknown task; :class:`NothingAssembledError` when no episode finished.
    """
    import jax

    from atomsmith.assembly import UnknownTaskError
    from atomsmith.assembly.generator import Assembler

    try:
        assembler = Assembler(task)
    except UnknownTaskError as exc:
        raise InvalidRequestError(str(exc)) from None
    found = assembler.sample(jax.random.PRNGKey(seed), 1, guidance=guidance, simulations=simulations,
                             episodes=episodes, considered=considered, tiny=tiny, on_move=on_move,
                             search_key=jax.random.PRNGKey(seed + 1))
    if not found:
        raise NothingAssembledError(f"no episode of {task} completed the composition (dead ends only)")
    return found[0]


def n_atoms_of(task: str) -> int:
    """Atoms of a finished structure of ``task`` (for progress bars)."""
    from atomsmith.assembly import UnknownTaskError, make_task

    try:
        return make_task(task).n_atoms
    except UnknownTaskError as exc:
        raise InvalidRequestError(str(exc)) from None
