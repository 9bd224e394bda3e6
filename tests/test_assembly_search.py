"""Assembly search and networks: fixed-seed reproducibility, masking inside the tree, policy/value symmetries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.assembly import NetworkConfig, SearchConfig, init_network, make_env, make_task, search
from atomsmith.assembly import actions as act
from atomsmith.assembly.networks import PolicyValueNet
from atomsmith.nn.encoder import EncoderConfig
from tests.helpers.symmetry import random_o3

TASK = make_task("a-si-8", counts=(5,), relax_steps=0, shaping=False)
ENV = make_env(TASK)
NET = NetworkConfig(encoder=EncoderConfig.tiny(n_layers=1, cutoff=3.5), width=8)
CONFIG = SearchConfig(num_simulations=6, max_num_considered_actions=4)


@pytest.fixture(scope="module")
def setup():
    state = ENV.reset()
    params = init_network(TASK, NET, jax.random.PRNGKey(0), state)
    # a state with a few atoms (a fixed sequence of legal actions)
    step = jax.jit(lambda env, s, a: env.transition(s, a))
    rng = np.random.default_rng(1)
    for _ in range(3):
        state, _ = step(ENV, state, jnp.asarray(rng.choice(np.flatnonzero(np.asarray(state.legal)))))
    assert not bool(state.done)
    return params, state


def test_fixed_seed_search_is_reproducible_and_legal(setup):
    params, state = setup
    states = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), state)
    key = jax.random.PRNGKey(7)
    a = search(ENV, NET, CONFIG, params, states, key)
    b = search(ENV, NET, CONFIG, params, states, key)
    np.testing.assert_array_equal(np.asarray(a.action), np.asarray(b.action))
    np.testing.assert_array_equal(np.asarray(a.action_weights), np.asarray(b.action_weights))
    legal = np.asarray(states.legal)
    assert np.all(legal[np.arange(2), np.asarray(a.action)])
    assert np.all(np.asarray(a.action_weights)[~legal] < 1e-6)
    # inside the tree: every expanded node was reached by an action legal in its parent
    tree = a.search_tree
    parents, moves = np.asarray(tree.parents), np.asarray(tree.action_from_parent)
    node_legal = np.asarray(tree.embeddings.legal)
    node_done = np.asarray(tree.embeddings.done)
    visited = np.asarray(tree.node_visits) > 0
    n_checked = 0
    for bi in range(2):
        for node in np.flatnonzero(visited[bi])[1:]:
            p = parents[bi, node]
            if not node_done[bi, p]:
                assert node_legal[bi, p, moves[bi, node]], (bi, node)
                n_checked += 1
    assert n_checked >= CONFIG.num_simulations  # there were interior expansions to check


def _apply(params, state, lattice):
    return PolicyValueNet(TASK, NET).apply({"params": params}, state, lattice)


def test_policy_value_rotation_and_permutation(setup):
    params, state = setup
    lattice = jnp.asarray(TASK.lattice_array, jnp.float32)
    logits, value = jax.jit(_apply)(params, state, lattice)
    legal = np.asarray(state.legal)
    assert np.std(np.asarray(logits)[legal]) > 1e-6  # not a vacuous comparison
    rng = np.random.default_rng(0)
    for reflection in (False, True):
        rot = jnp.asarray(random_o3(rng, reflection=reflection), jnp.float32)
        rotated = state.replace(positions=state.positions @ rot.T)
        rotated = act.refresh(TASK, rotated, lattice @ rot.T)
        r_logits, r_value = jax.jit(_apply)(params, rotated, lattice @ rot.T)
        np.testing.assert_allclose(float(r_value), float(value), atol=1e-4)  # value: O(3) invariant
        if not reflection:  # the local frame is right-handed: logits are SO(3) invariant
            np.testing.assert_array_equal(np.asarray(rotated.legal), legal)
            np.testing.assert_allclose(np.asarray(r_logits)[legal], np.asarray(logits)[legal], atol=2e-3)
    # permutation of the placed atoms (same focus atom, same frame): logits and value unchanged
    n = int(state.n)
    perm = np.concatenate([rng.permutation(n), np.arange(n, TASK.n_atoms)])
    inverse = np.argsort(perm)
    permuted = state.replace(positions=state.positions[perm], species=state.species[perm],
                             fixed=state.fixed[perm], closed=state.closed[perm],
                             focus=jnp.asarray(inverse[int(state.focus)], jnp.int32))
    p_logits, p_value = jax.jit(_apply)(params, permuted, lattice)
    np.testing.assert_allclose(float(p_value), float(value), atol=1e-4)
    np.testing.assert_allclose(np.asarray(p_logits)[legal], np.asarray(logits)[legal], atol=1e-3)


def test_episodes_keep_the_best_distinct_structures(setup):
    from atomsmith.assembly.selfplay import run_episodes

    params, _ = setup
    res = run_episodes(ENV, NET, params, CONFIG, jax.random.PRNGKey(3), batch=2, keep_top=3)
    values = [r for r, _ in res.top]
    assert 1 <= len(values) <= 3
    assert values == sorted(values, reverse=True) and len(set(values)) == len(values)
    assert values[0] == pytest.approx(res.best_return)
    for r, state in res.top:  # each kept state is a finished structure with that return
        assert bool(state.done) and float(state.final_return) == pytest.approx(r)
