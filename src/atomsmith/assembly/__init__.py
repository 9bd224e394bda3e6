"""AlphaZero-style assembler: build structures atom by atom with mctx Gumbel MuZero search over the true
environment, guided by policy/value networks on the shared encoder and rewarded by the shared guidance objectives.

Modules: :mod:`~atomsmith.assembly.tasks` (cells, compositions, objectives), :mod:`~atomsmith.assembly.state`,
:mod:`~atomsmith.assembly.actions` (action space, local frames, masks), :mod:`~atomsmith.assembly.env`
(transitions, terminal reward), :mod:`~atomsmith.assembly.networks` (policy/value), :mod:`~atomsmith.assembly.search`
(mctx), :mod:`~atomsmith.assembly.selfplay` (episodes, replay, training), :mod:`~atomsmith.assembly.objectives`
(SW energy per atom as a guidance objective), :mod:`~atomsmith.assembly.generator` (``Assembler``: the assembler
behind the generator protocol, ``sample(key, n, guidance=..., fixed=...)``), :mod:`~atomsmith.assembly.imitation` (teacher construction sequences,
behaviour cloning), :mod:`~atomsmith.assembly.scoring` (outside structures on a task's reward scale),
:mod:`~atomsmith.assembly.curves` (best-so-far against objective evaluations, summaries over seeds).
"""

from atomsmith.assembly.env import AssemblyEnv, make_env
from atomsmith.assembly.networks import MASKED_LOGIT, NetworkConfig, PolicyValueNet, apply_batch, init_network
from atomsmith.assembly.objectives import SWEnergyPerAtom
from atomsmith.assembly.search import SearchConfig, search, tree_evaluations
from atomsmith.assembly.state import AssemblyState
from atomsmith.assembly.tasks import TASK_NAMES, AssemblyTask, UnknownTaskError, make_task

__all__ = [
    "MASKED_LOGIT", "TASK_NAMES", "AssemblyEnv", "AssemblyState", "AssemblyTask", "NetworkConfig", "PolicyValueNet",
    "SWEnergyPerAtom", "SearchConfig", "UnknownTaskError", "apply_batch", "init_network", "make_env", "make_task",
    "search", "tree_evaluations",
]
