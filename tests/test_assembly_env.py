"""Assembly environment: legality masks (property-style, independent NumPy distances), terminal reward = guidance
objective on the finished structure, SW objective against the physics reference."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atomsmith.assembly import SWEnergyPerAtom, make_env, make_task
from atomsmith.assembly import actions as act
from atomsmith.graphs.batching import batch_graphs
from atomsmith.physics.stillinger_weber import evaluate
from atomsmith.structures.crystal import Crystal

TASK = make_task("a-si-8", counts=(6,), relax_steps=20)
ENV = make_env(TASK)


def _min_image_distances(point: np.ndarray, others: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Distances from ``point`` to every periodic image (-2..2 cells) of ``others`` (independent of the env code)."""
    shifts = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3) @ lattice
    d = others[:, None, :] + shifts[None] - point[None, None, :]
    return np.linalg.norm(d, axis=-1)  # [M, 125]


@functools.lru_cache(maxsize=1)
def _transition():
    return jax.jit(lambda env, s, a: env.transition(s, a))


def _random_states(seed: int, n_states: int):
    rng = np.random.default_rng(seed)
    state = ENV.reset()
    out = [state]
    for _ in range(n_states):
        legal = np.flatnonzero(np.asarray(state.legal))
        if state.done or not len(legal):
            break
        state, _ = _transition()(ENV, state, jnp.asarray(rng.choice(legal)))
        out.append(state)
    return out


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000))
def test_legal_actions_never_overlap(seed):
    lattice = TASK.lattice_array
    for state in _random_states(seed, 6):
        occ = np.asarray(state.species) >= 0
        pos = np.asarray(state.positions, np.float64)[occ]
        # placed atoms never overlap (any image), and never exceed the maximum coordination
        for i in range(len(pos)):
            d = _min_image_distances(pos[i], pos, lattice)
            d = d[d > 1e-6]
            assert np.all(d >= TASK.min_distance - 1e-4), d.min()
            assert np.sum(d < TASK.bond_cutoff) <= TASK.max_coordination
        if state.done or int(state.n) == 0:
            continue
        pts = np.asarray(act.candidates(TASK, state.positions, state.focus, state.frame), np.float64)
        legal = np.asarray(state.legal)[:-1].reshape(TASK.n_species, -1)[0]
        for k in np.flatnonzero(legal):
            d = _min_image_distances(pts[k], pos, lattice)
            assert d.min() >= TASK.min_distance - 1e-4, (k, d.min())
        # and the illegal ones are illegal for a reason (clash or coordination)
        for k in np.flatnonzero(~legal)[:20]:
            d = _min_image_distances(pts[k], pos, lattice)
            coord_new = np.sum(d < TASK.bond_cutoff)
            assert d.min() < TASK.min_distance + 1e-4 or coord_new > 0, k


def test_terminal_reward_equals_guidance_objective():
    step = jax.jit(lambda env, s, a: env.step(s, a))
    rng = np.random.default_rng(3)
    for attempt in range(20):
        s0 = ENV.reset()
        states = jax.tree_util.tree_map(lambda x: x[None], s0)
        total = 0.0
        while not bool(states.done[0]):
            legal = np.flatnonzero(np.asarray(states.legal[0]))
            states, r, d = step(ENV, states, jnp.asarray([rng.choice(legal)]))
            total += float(r[0])
        if bool(states.complete[0]):
            break
    else:
        pytest.fail("no random episode completed the composition")
    final = jax.tree_util.tree_map(lambda x: x[0], states)
    assert int(final.relax_steps) > 0
    crystal = ENV.to_crystal(final)  # relaxed structure, host-side
    batch = batch_graphs([crystal], cutoff=4.2)  # host neighbour list: an independent graph path
    value = float(SWEnergyPerAtom()(batch)[0])
    ref = evaluate(crystal)["energy"] / crystal.n_atoms  # physics reference
    assert value == pytest.approx(ref, abs=1e-4)
    expected = TASK.normalise(value)
    assert float(final.final_return) == pytest.approx(expected, abs=2e-4)
    # return of the episode = terminal R - Phi(s0) (potential-based shaping)
    assert total + float(s0.potential) == pytest.approx(expected, abs=2e-3)


def test_sw_objective_matches_physics_on_random_crystals():
    rng = np.random.default_rng(0)
    crystals = []
    for _ in range(2):
        lattice = np.eye(3) * 5.6 + rng.normal(size=(3, 3)) * 0.2
        frac = rng.random((10, 3))
        c = Crystal(lattice, frac, np.full(10, 14))
        if not c.close_pairs(1.8):
            crystals.append(c)
    crystals.append(Crystal(np.eye(3) * 5.431, np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                    [.25, .25, .25], [.25, .75, .75], [.75, .25, .75], [.75, .75, .25]]), np.full(8, 14)))
    values = np.asarray(SWEnergyPerAtom()(batch_graphs(crystals, cutoff=4.0)))[: len(crystals)]
    for c, v in zip(crystals, values):
        assert v == pytest.approx(evaluate(c)["energy"] / c.n_atoms, abs=1e-4)
    assert values[-1] == pytest.approx(-4.3366, abs=2e-3)  # diamond Si, SW literature value


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        make_task("no-such-task")
    with pytest.raises(ValueError):
        make_task("a-si-8", counts=(0,))
    wrong = Crystal(np.eye(3) * 3.0, np.zeros((1, 3)), [14])
    with pytest.raises(ValueError):
        ENV.reset(fixed=wrong)


def test_infilling_keeps_fixed_atoms():
    fixed = Crystal(TASK.lattice_array, np.array([[0.1, 0.1, 0.1]]), [14])
    s = ENV.reset(fixed=fixed)
    assert int(s.n) == 1 and bool(s.fixed[0]) and int(s.remaining[0]) == TASK.counts[0] - 1
    assert int(s.focus) == 0 and bool(jnp.any(s.legal))
