"""mctx Gumbel MuZero search with the true environment as the recurrent function (AlphaZero style).

Why ``gumbel_muzero_policy`` rather than ``muzero_policy``: our searches are small (8-64 simulations) against
80-400 actions. Gumbel-top-k with sequential halving at the root guarantees a policy improvement even when only a few
actions can be visited, its ``action_weights`` (softmax of prior logits + transformed completed Q) are a valid
training target at any simulation count, and it needs no Dirichlet-noise or PUCT constants (Danihelka et al.,
ICLR 2022; the mctx maintainers recommend it). PUCT with 32 visits over 80+ actions visits few children and its
visit-count target is very noisy.

Illegal actions are masked twice: at the root through ``invalid_actions`` and inside the tree by the network's
logits (``MASKED_LOGIT`` on illegal actions; mctx masks only at the root). Terminal states have discount 0 and value 0.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import mctx

from atomsmith.assembly.env import AssemblyEnv
from atomsmith.assembly.networks import NetworkConfig, apply_batch
from atomsmith.assembly.state import AssemblyState


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """``num_simulations`` per move, ``max_num_considered_actions`` at the root, ``gumbel_scale`` (0: greedy
    evaluation), ``max_depth`` (None: the number of simulations)."""

    num_simulations: int = 32
    max_num_considered_actions: int = 16
    gumbel_scale: float = 1.0
    max_depth: int | None = None


def root_output(env: AssemblyEnv, net: NetworkConfig, params, states: AssemblyState) -> mctx.RootFnOutput:
    logits, values = apply_batch(env.task, net, params, states, env.lattice)
    return mctx.RootFnOutput(prior_logits=logits, value=jnp.where(states.done, 0.0, values), embedding=states)


def recurrent_fn(env: AssemblyEnv, net: NetworkConfig):
    """The mctx recurrent function: step the real environment, evaluate the network on the new states."""

    def fn(params, rng, action, states):
        del rng
        nxt, rewards, discounts = env.step(states, action)
        logits, values = apply_batch(env.task, net, params, nxt, env.lattice)
        out = mctx.RecurrentFnOutput(reward=rewards, discount=discounts, prior_logits=logits,
                                     value=jnp.where(nxt.done, 0.0, values))
        return out, nxt

    return fn


@functools.partial(jax.jit, static_argnums=(1, 2))
def search(env: AssemblyEnv, net: NetworkConfig, config: SearchConfig, params, states: AssemblyState,
           key: jax.Array) -> mctx.PolicyOutput:
    """One Gumbel MuZero search from each of the B ``states`` (leading axis B)."""
    root = root_output(env, net, params, states)
    return mctx.gumbel_muzero_policy(
        params=params, rng_key=key, root=root, recurrent_fn=recurrent_fn(env, net),
        num_simulations=config.num_simulations, invalid_actions=~states.legal,
        max_depth=config.max_depth, max_num_considered_actions=config.max_num_considered_actions,
        gumbel_scale=config.gumbel_scale)


def tree_evaluations(tree: mctx.Tree) -> tuple[jax.Array, jax.Array, jax.Array]:
    """From a search tree: ``(evaluations [B], best return [B], index of the best node [B])``. An evaluation is a
    node reached by the step that finished an episode (the objective ran there); best is -inf without one."""
    emb = tree.embeddings
    visited = tree.node_visits > 0
    fin = emb.just_finished & visited
    count = jnp.sum(fin, axis=1)
    returns = jnp.where(fin, emb.final_return, -jnp.inf)
    best = jnp.argmax(returns, axis=1)
    return count, jnp.take_along_axis(returns, best[:, None], axis=1)[:, 0], best
