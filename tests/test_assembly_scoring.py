"""Scoring outside structures with a task's objective matches the environment's terminal reward."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.assembly import make_env, make_task
from atomsmith.assembly.scoring import UnsupportedScoringError, score_crystals
from atomsmith.structures.crystal import Crystal


@pytest.fixture(scope="module")
def perov_env():
    return make_env(make_task("perov-heat-ref"))


def test_score_crystals_equals_terminal_reward(perov_env):
    env = perov_env
    step = jax.jit(lambda e, s, a: e.step(s, a))
    rng = np.random.default_rng(0)
    finals = []
    for _ in range(10):
        states = jax.tree_util.tree_map(lambda x: x[None], env.reset())
        while not bool(states.done[0]):
            legal = np.flatnonzero(np.asarray(states.legal[0]))
            states, _, _ = step(env, states, jnp.asarray([rng.choice(legal)]))
        if bool(states.complete[0]):
            finals.append(jax.tree_util.tree_map(lambda x: x[0], states))
        if len(finals) == 2:
            break
    assert finals, "no random perov episode completed"
    crystals = [env.to_crystal(s) for s in finals]
    got = score_crystals(env, crystals)  # host neighbour list: an independent graph path
    want = [float(s.final_return) for s in finals]
    np.testing.assert_allclose(got, want, atol=2e-4)
    # structures the environment built respect its minimum distance, so the constraint changes nothing
    np.testing.assert_allclose(score_crystals(env, crystals, respect_min_distance=True), got)


def test_min_distance_violations_get_the_dead_end_reward(perov_env):
    env = perov_env
    frac = np.array([[0, 0, 0], [0.3, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0, 0.5, 0.5]])  # 1.21 Å pair
    crystal = Crystal(env.task.lattice_array, frac, [23, 45, 9, 7, 8])
    assert np.isfinite(score_crystals(env, [crystal])[0])
    assert score_crystals(env, [crystal], respect_min_distance=True)[0] == env.task.dead_end_return


def test_relaxing_tasks_are_refused():
    env = make_env(make_task("a-si-8"))
    crystal = Crystal(env.task.lattice_array, np.random.default_rng(0).random((8, 3)), [14] * 8)
    with pytest.raises(UnsupportedScoringError):
        score_crystals(env, [crystal])
