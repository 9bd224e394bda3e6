"""Episodes with search (self-play), a replay buffer and the policy/value training step (shared training loop).

Targets (AlphaZero with Gumbel MuZero): policy = the search's ``action_weights``; value = the return-to-go of the
episode (sum of the remaining rewards, discount 1). Loss = softmax cross-entropy + ``value_weight`` * squared error,
optimised by :func:`atomsmith.training.loop.make_train_step` (AdamW + cosine + EMA, the one training loop).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from atomsmith.assembly.env import AssemblyEnv
from atomsmith.assembly.networks import NetworkConfig, apply_batch
from atomsmith.assembly.search import SearchConfig, search, tree_evaluations
from atomsmith.assembly.state import AssemblyState
from atomsmith.training.loop import TrainConfig, init_state, make_train_step


@dataclasses.dataclass
class EpisodeResult:
    """Outcome of B parallel episodes.

    Attributes:
      final: the final states (leading axis B).
      returns: ``[B]`` normalised terminal returns ``R`` of the played episodes.
      evaluations: objective evaluations used (every finished node in every search tree, plus the played steps that
        finished an episode; re-visits of the same terminal structure count again).
      best_return: best ``R`` seen anywhere (tree nodes included); ``best_state``: that state (a single state).
      history: ``[(evaluations so far, best R so far)]`` after each move.
      samples: training samples ``(states [T*B], action_weights [T*B, A], value targets [T*B], mask [T*B])``.
      top: the ``keep_top`` best distinct finished structures seen anywhere, ``[(R, state)]`` best first (a
        structure found again, i.e. the same return, is kept once).
    """

    final: AssemblyState
    returns: np.ndarray
    evaluations: int
    best_return: float
    best_state: AssemblyState | None
    history: list
    samples: tuple
    top: list = dataclasses.field(default_factory=list)


def _offer(top: dict, keep: int, value: float, get_state: Callable[[], AssemblyState]) -> None:
    """Keep the ``keep`` best distinct returns in ``top`` (``{rounded R: (R, state)}``)."""
    if keep <= 0 or not np.isfinite(value):
        return
    k = round(value, 7)
    if k in top:
        return
    if len(top) >= keep:
        worst = min(top)
        if k <= worst:
            return
        del top[worst]
    top[k] = (value, get_state())


_step = jax.jit(lambda env, s, a: env.step(s, a))


def _index(tree, i):
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def run_episodes(env: AssemblyEnv, net: NetworkConfig, params, config: SearchConfig, key: jax.Array,
                 batch: int = 1, start: AssemblyState | None = None,
                 on_move: Callable[[int, int, float], None] | None = None, keep_top: int = 0) -> EpisodeResult:
    """Play ``batch`` episodes in parallel with one search per move until every episode is done (``keep_top``:
    how many of the best distinct finished structures to return in ``EpisodeResult.top``)."""
    s0 = env.reset() if start is None else start
    states = jax.tree_util.tree_map(lambda x: jnp.stack([x] * batch), s0)
    evaluations, best, best_state, history = 0, -np.inf, None, []
    traj_states, traj_weights, traj_rewards, traj_live = [], [], [], []
    move = 0
    top: dict = {}
    while not bool(jnp.all(states.done)):
        key, sub = jax.random.split(key)
        out = search(env, net, config, params, states, sub)
        count, tree_best, node = tree_evaluations(out.search_tree)
        live = ~np.asarray(states.done)
        evaluations += int(np.sum(np.asarray(count)[live]))
        for b in np.flatnonzero(live):
            if float(tree_best[b]) > best:
                best = float(tree_best[b])
                best_state = _index(_index(out.search_tree.embeddings, b), int(node[b]))
        if keep_top > 0:
            emb = out.search_tree.embeddings
            fin_nodes = np.asarray(emb.just_finished & (out.search_tree.node_visits > 0))
            node_returns = np.asarray(emb.final_return)
            for b in np.flatnonzero(live):
                for j in np.flatnonzero(fin_nodes[b]):
                    _offer(top, keep_top, float(node_returns[b, j]),
                           lambda b=b, j=j: _index(_index(emb, int(b)), int(j)))
        traj_states.append(states)
        traj_weights.append(out.action_weights)
        traj_live.append(live)
        states, rewards, _ = _step(env, states, out.action)
        traj_rewards.append(np.where(live, np.asarray(rewards), 0.0))
        fin = np.asarray(states.just_finished) & live
        evaluations += int(np.sum(fin & np.asarray(states.complete)))
        for b in np.flatnonzero(fin):
            if float(states.final_return[b]) > best:
                best = float(states.final_return[b])
                best_state = _index(states, b)
        for b in np.flatnonzero(fin & np.asarray(states.complete)):
            _offer(top, keep_top, float(states.final_return[b]), lambda b=b: _index(states, int(b)))
        move += 1
        history.append((evaluations, best))
        if on_move is not None:
            on_move(move, evaluations, best)
    rewards = np.stack(traj_rewards)  # [T, B]
    value_targets = np.cumsum(rewards[::-1], axis=0)[::-1]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *traj_states)
    samples = (stacked, jnp.concatenate(traj_weights), jnp.asarray(value_targets.reshape(-1), jnp.float32),
               jnp.asarray(np.stack(traj_live).reshape(-1)))
    ranked = sorted(top.values(), key=lambda t: -t[0])
    return EpisodeResult(states, np.asarray(states.final_return), evaluations, best, best_state, history, samples,
                         ranked)


def random_episodes(env: AssemblyEnv, key: jax.Array, batch: int) -> AssemblyState:
    """``batch`` episodes of uniformly random legal actions (a baseline; one evaluation per finished episode)."""
    states = jax.tree_util.tree_map(lambda x: jnp.stack([x] * batch), env.reset())
    while not bool(jnp.all(states.done)):
        key, sub = jax.random.split(key)
        logits = jnp.where(states.legal, 0.0, -jnp.inf)
        action = jax.random.categorical(sub, jnp.where(states.done[:, None], 0.0, logits))
        states, _, _ = _step(env, states, action)
    return states


class ReplayBuffer:
    """The last ``capacity`` samples (host memory)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.data = None

    def add(self, samples: tuple) -> None:
        states, weights, values, mask = samples
        keep = np.flatnonzero(np.asarray(mask))
        new = jax.tree_util.tree_map(lambda x: np.asarray(x)[keep], (states, weights, values))
        if self.data is None:
            self.data = new
        else:
            self.data = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b])[-self.capacity:], self.data, new)

    def __len__(self) -> int:
        return 0 if self.data is None else int(self.data[2].shape[0])

    def sample(self, rng: np.random.Generator, size: int):
        idx = rng.integers(0, len(self), size)
        return jax.tree_util.tree_map(lambda x: jnp.asarray(x[idx]), self.data)


def make_loss(env: AssemblyEnv, net: NetworkConfig, value_weight: float = 0.25):
    """``loss(params, (states, action_weights, value_targets), key) -> (loss, metrics)``."""

    def loss_fn(params, batch, key):
        del key
        states, weights, targets = batch
        logits, values = apply_batch(env.task, net, params, states, env.lattice)
        policy = jnp.mean(optax.softmax_cross_entropy(logits, weights))
        value = jnp.mean((values - targets) ** 2)
        return policy + value_weight * value, {"policy_loss": policy, "value_loss": value}

    return loss_fn


def make_trainer(env: AssemblyEnv, net: NetworkConfig, params, train: TrainConfig):
    """``(state, step)`` of the shared training loop for the policy/value loss."""
    return init_state(params, train), make_train_step(make_loss(env, net), train)
