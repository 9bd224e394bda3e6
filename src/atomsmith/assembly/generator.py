"""The MCTS assembler behind the generator protocol: :class:`Assembler` ``.sample(key, n, guidance=..., fixed=...)``
plays search episodes of one task and returns the best finished structures (fewer than ``n``, possibly none, when
the episodes dead-ended: :func:`atomsmith.assemble` turns none into ``NothingAssembledError``).

User objectives (``guidance=``, any shared objective of :mod:`atomsmith.guidance`, lower is better) are added to the
task's own objective, so they shape the reward as they steer diffusion; ``fixed=FixedAtoms(...)`` starts every
episode from held atoms (in the task's cell, of its species). The cell and the composition are the task's, so
``conditions`` do not apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import jax

from atomsmith.assembly.env import AssemblyEnv, make_env
from atomsmith.assembly.networks import NetworkConfig, init_network
from atomsmith.assembly.search import SearchConfig
from atomsmith.assembly.selfplay import run_episodes
from atomsmith.assembly.tasks import AssemblyTask, make_task
from atomsmith.generators.protocol import Capabilities, FixedAtoms, GeneratorBase, InvalidRequestError
from atomsmith.guidance.base import WeightedSum, objective_cutoff
from atomsmith.structures.crystal import Crystal

__all__ = ["Assembler", "AssemblyOptions", "with_guidance"]


@dataclasses.dataclass(frozen=True)
class AssemblyOptions:
    """How the assembler searches.

    Attributes:
      simulations: search simulations per move.
      episodes: episodes played in parallel (the best finished structures are returned).
      considered: root actions considered (Gumbel top-k; at most ``simulations``).
      tiny: a tiny policy/value network (fast to compile; for smoke tests).
      on_move: called as ``on_move(move, evaluations so far, best normalised reward so far)``.
      search_key: the key of the search itself (default: ``fold_in(key, 1)``; the network is initialised from
        ``key``).
    """

    simulations: int = 32
    episodes: int = 1
    considered: int = 16
    tiny: bool = False
    on_move: Callable[[int, int, float], None] | None = None
    search_key: jax.Array | None = None


def with_guidance(env: AssemblyEnv, guidance: Any) -> AssemblyEnv:
    """``env`` whose objective is its task's objective plus ``guidance`` (an objective or a sequence of them); the
    objective's graph reaches the largest predictor cutoff among them."""
    terms = list(guidance) if isinstance(guidance, Sequence) else [guidance]
    for term in terms:
        if not callable(term):
            raise InvalidRequestError(f"guidance must be shared objectives (callables), got {type(term).__name__}")
    objective = WeightedSum.of((1.0, env.objective), *((1.0, t) for t in terms))
    return env.replace(objective=objective, objective_cutoff=objective_cutoff(objective, env.objective_cutoff))


class Assembler(GeneratorBase):
    """The MCTS assembler of one task as a :class:`~atomsmith.generators.protocol.Generator`.

    Args:
      task: a built-in task name (``a-si-64``, ``a-si-8``, ``perov-heat-ref``) or an :class:`AssemblyTask`.
      predictor: the predictor of a ``heat_ref`` task (default: the shipped ``perov-5-heat-ref``).
    """

    kind: ClassVar[str] = "mcts"
    capabilities: ClassVar[Capabilities] = Capabilities(
        guidance=True, fixed_atoms=True,
        about="assembles one task's structure atom by atom (the task fixes the cell and the composition)")
    options_type: ClassVar[type] = AssemblyOptions

    def __init__(self, task: AssemblyTask | str, predictor: Any = None) -> None:
        self.task = make_task(task) if isinstance(task, str) else task  # UnknownTaskError for an unknown name
        self.predictor = predictor
        self.name = self.task.name

    def _start(self, env: AssemblyEnv, fixed: FixedAtoms) -> Any:
        task = self.task
        if not fixed.hold_lattice:
            raise InvalidRequestError(f"{task.name}: the cell is the task's; hold it (hold_lattice=True)")
        if fixed.crystal.n_atoms + fixed.n_free != task.n_atoms:
            raise InvalidRequestError(f"{task.name} builds {task.n_atoms} atoms: with {fixed.crystal.n_atoms} held, "
                                      f"n_free must be {task.n_atoms - fixed.crystal.n_atoms}")
        try:
            return env.reset(fixed.crystal)
        except ValueError as exc:
            raise InvalidRequestError(f"{task.name}: {exc}") from None

    def _sample(self, key: jax.Array, n: int, conditions: Mapping[str, Any] | None, guidance: Any, fixed: Any,
                options: AssemblyOptions) -> list[Crystal]:
        """The ``n`` best distinct finished structures of ``options.episodes`` episodes (best first; fewer when
        fewer finished), with properties ``reward`` (normalised), ``objective`` (the objective value, e.g. SW energy
        per atom in eV, plus the guidance terms), ``evaluations`` and ``task``."""
        if n < 1:
            raise InvalidRequestError(f"n must be >= 1, got {n}")
        if isinstance(fixed, (list, tuple)):
            raise InvalidRequestError("the assembler holds one set of atoms for all episodes: give one FixedAtoms")
        env = make_env(self.task, self.predictor)
        if guidance is not None and not (isinstance(guidance, Sequence) and not guidance):
            env = with_guidance(env, guidance)
        start = None if fixed is None else self._start(env, fixed)
        net = NetworkConfig.tiny() if options.tiny else NetworkConfig()
        params = init_network(self.task, net, key, env.reset())
        config = SearchConfig(num_simulations=options.simulations,
                              max_num_considered_actions=min(options.considered, options.simulations))
        search_key = options.search_key if options.search_key is not None else jax.random.fold_in(key, 1)
        result = run_episodes(env, net, params, config, search_key, batch=options.episodes, start=start,
                              on_move=options.on_move, keep_top=n if n > 1 else 0)
        found = [(result.best_return, result.best_state)] if n == 1 else list(result.top[:n])
        found = [(r, s) for r, s in found if s is not None and bool(s.complete)]
        return [env.to_crystal(state).with_properties(
            reward=float(reward), objective=float(state.objective_value), evaluations=int(result.evaluations),
            task=self.task.name) for reward, state in found]
