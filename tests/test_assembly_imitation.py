"""Teacher construction sequences (behaviour cloning) rebuild known structures in the assembly action space."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from atomsmith.assembly import NetworkConfig, init_network, make_env, make_task
from atomsmith.assembly.imitation import TeacherTargetError, behaviour_cloning, teacher_episodes
from atomsmith.assembly.selfplay import make_loss, random_episodes
from atomsmith.nn.encoder import EncoderConfig
from atomsmith.structures.crystal import Crystal

TASK = make_task("a-si-8", counts=(5,), relax_steps=0, shaping=False)
ENV = make_env(TASK)


@pytest.fixture(scope="module")
def built():
    """Structures the environment itself built (random legal actions), with their returns."""
    fin = random_episodes(ENV, jax.random.PRNGKey(0), 6)
    keep = [i for i in range(6) if bool(fin.complete[i])]
    assert keep, "no random episode completed"
    crystals = [ENV.to_crystal(jax.tree_util.tree_map(lambda x, i=i: x[i], fin)) for i in keep]
    return crystals, np.asarray(fin.final_return)[keep]


def test_teacher_rebuilds_environment_structures(built):
    crystals, returns = built
    res = teacher_episodes(ENV, crystals)
    assert bool(np.all(np.asarray(res.final.complete)))
    np.testing.assert_allclose(res.snap[:, :2], 0.0, atol=1e-4)  # origin, then a bond along the lattice frame
    exact = np.all(res.snap < 1e-3, axis=1)
    assert np.any(exact)  # at least one target is rebuilt exactly ...
    np.testing.assert_allclose(res.returns[exact], returns[exact], atol=1e-4)  # ... and scores the same
    states, weights, values, mask = res.samples
    w, legal, live = np.asarray(weights), np.asarray(states.legal), np.asarray(mask)
    np.testing.assert_allclose(w[live].sum(axis=1), 1.0, atol=1e-5)
    assert np.all(w[live][~legal[live]] == 0.0)  # policy targets only on legal actions
    # no shaping: every value target of a live step is the episode's terminal return
    b = len(crystals)
    np.testing.assert_allclose(np.asarray(values).reshape(-1, b)[0], res.returns, atol=1e-5)


def test_behaviour_cloning_fits_teacher_actions(built):
    crystals, _ = built
    res = teacher_episodes(ENV, crystals, smoothing=0.0)
    net = NetworkConfig(encoder=EncoderConfig.tiny(n_layers=1, cutoff=3.5), width=8)
    params = init_network(TASK, net, jax.random.PRNGKey(0), ENV.reset())
    states, weights, values, mask = res.samples
    keep = np.flatnonzero(np.asarray(mask))
    data = jax.tree_util.tree_map(lambda x: x[keep], (states, weights, values))
    loss = make_loss(ENV, net)
    before = float(loss(params, data, None)[1]["policy_loss"])
    fitted, _ = behaviour_cloning(ENV, net, params, [res.samples], steps=100, batch_size=16, learning_rate=3e-2)
    after = float(loss(fitted, data, None)[1]["policy_loss"])
    assert after < 0.85 * before, (before, after)  # 3.6 -> 2.8 when measured


def test_bad_targets_raise():
    with pytest.raises(TeacherTargetError):
        teacher_episodes(ENV, [Crystal(TASK.lattice_array, np.random.default_rng(0).random((4, 3)), [14] * 4)])
    with pytest.raises(TeacherTargetError):
        teacher_episodes(ENV, [Crystal(TASK.lattice_array, np.random.default_rng(0).random((5, 3)), [6] * 5)])
    with pytest.raises(TeacherTargetError):
        teacher_episodes(ENV, [])
