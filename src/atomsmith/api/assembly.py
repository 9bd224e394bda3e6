"""``atomsmith.assemble``: build a structure atom by atom with Gumbel MuZero search (mctx).

    >>> import atomsmith
    >>> best = atomsmith.assemble("a-si-8", simulations=8, tiny=True)      # Crystal with property 'reward'
"""

from __future__ import annotations

from collections.abc import Callable

from atomsmith.generators.protocol import InvalidRequestError
from atomsmith.structures.crystal import Crystal


class NothingAssembledError(RuntimeError):
    """No episode completed the task's composition (every path dead-ended)."""


def assemble(task: str = "a-si-64", *, simulations: int = 32, seed: int = 0, episodes: int = 1,
             considered: int = 16, tiny: bool = False,
             on_move: Callable[[int, int, float], None] | None = None) -> Crystal:
    """Search for the best structure of an assembly task.

    Args:
      task: ``a-si-64``, ``a-si-8`` or ``perov-heat-ref`` (see :func:`atomsmith.assembly.make_task`).
      simulations: search simulations per move.
      seed: the same seed gives the same search.
      episodes: episodes played in parallel (the best finished one is returned).
      considered: root actions considered (Gumbel top-k).
      tiny: a tiny policy/value network (fast to compile; for smoke tests).
      on_move: called as ``on_move(move, evaluations so far, best normalised reward so far)``.

    Returns:
      The best finished structure, with properties ``reward`` (normalised), ``objective`` (the task's objective
      value, e.g. SW energy per atom in eV) and ``evaluations``.

    Raises:
      InvalidRequestError for an unknown task; :class:`NothingAssembledError` when no episode finished.
    """
    import jax

    from atomsmith.assembly import NetworkConfig, SearchConfig, UnknownTaskError, init_network, make_env, make_task
    from atomsmith.assembly.selfplay import run_episodes

    try:
        spec = make_task(task)
    except UnknownTaskError as exc:
        raise InvalidRequestError(str(exc)) from None
    env = make_env(spec)
    net = NetworkConfig.tiny() if tiny else NetworkConfig()
    params = init_network(spec, net, jax.random.PRNGKey(seed), env.reset())
    config = SearchConfig(num_simulations=simulations, max_num_considered_actions=min(considered, simulations))
    result = run_episodes(env, net, params, config, jax.random.PRNGKey(seed + 1), batch=episodes, on_move=on_move)
    if result.best_state is None or not bool(result.best_state.complete):
        raise NothingAssembledError(f"no episode of {task} completed the composition (dead ends only)")
    return env.to_crystal(result.best_state).with_properties(
        reward=float(result.best_return), objective=float(result.best_state.objective_value),
        evaluations=int(result.evaluations), task=task)


def n_atoms_of(task: str) -> int:
    """Atoms of a finished structure of ``task`` (for progress bars)."""
    from atomsmith.assembly import UnknownTaskError, make_task

    try:
        return make_task(task).n_atoms
    except UnknownTaskError as exc:
        raise InvalidRequestError(str(exc)) from None
