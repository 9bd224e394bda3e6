"""Building a periodic cell by repeated environment infilling (tiny untrained-quality model, small cell)."""

import jax
import numpy as np
import pytest

from atomsmith.generators.gram_vae import GramVAE, GramNormalizer, InfillConfig, tiny_config
from atomsmith.generators.gram_vae.build_cell import BuildConfig, box_length, build_cell


def _model():
    rng = np.random.default_rng(0)
    tet = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    envs = np.concatenate([2.35 * tet, -3.8 * tet], axis=0)[None] + rng.normal(scale=0.1, size=(32, 8, 3))
    return GramVAE.initialize(tiny_config(), GramNormalizer.fit(envs), jax.random.PRNGKey(0))


def test_box_length_matches_density():
    box = box_length(64, 2.29)
    mass = 64 * 28.0855 / 6.02214076e23  # g
    assert mass / (box * 1e-8) ** 3 == pytest.approx(2.29, rel=1e-3)


def test_build_cell_places_all_atoms_without_clashes():
    model = _model()
    config = BuildConfig(n_atoms=30, candidates=2, infill=InfillConfig(restarts=2, rounds=1, steps=10),
                         relax_steps=0, seed=1)
    raw, relaxed, summary = build_cell(model, config)
    assert raw.n_atoms == 30 and relaxed.allclose(raw)  # no relaxation asked for
    assert summary["placed_by_infill"] + summary["n_seed"] + summary["n_fallback"] == 30
    assert summary["placed_by_infill"] > 0
    if summary["n_fallback"] == 0:  # infilled atoms respect the minimum distance (periodic images included)
        assert not raw.close_pairs(config.min_distance - 1e-6)
    np.testing.assert_allclose(raw.lattice, np.eye(3) * box_length(30, 2.29))


def test_build_cell_rejects_too_small_cells():
    with pytest.raises(ValueError, match="2 r_cut"):
        build_cell(_model(), BuildConfig(n_atoms=16, relax_steps=0))
