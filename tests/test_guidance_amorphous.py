"""Amorphous-Si guidance objectives (SW energy target, smooth four-fold fraction) and the amorphous sampling mode."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.model import DiffusionModel
from atomsmith.generators.diffusion.training import init_params
from atomsmith.graphs.batching import batch_graphs
from atomsmith.guidance import FourFoldFraction, FourFoldTarget, SWEnergyTarget, value_and_grad
from atomsmith.metrics.amorphous import coordination_numbers
from atomsmith.physics import load_shipped
from atomsmith.structures.crystal import Crystal

CUTOFF = 3.8  # graph cutoff covering SW's 3.77 Å


@pytest.fixture(scope="module")
def cells() -> list[Crystal]:
    """Two shipped 64-atom melt-quench cells and a randomly perturbed copy (more under/over-coordination)."""
    shipped = load_shipped(64)[:2]
    rng = np.random.default_rng(0)
    noisy = Crystal.from_cartesian(shipped[0].lattice, shipped[0].positions + rng.normal(0, 0.15, (64, 3)),
                                   shipped[0].numbers)
    return [*shipped, noisy]


@jax.jit
def _apply(objective, batch):
    return objective(batch)


def _values(objective, crystals):
    """Objective values of ``crystals`` (jitted: objectives are pytrees, one compilation per padded shape)."""
    batch = batch_graphs(crystals, cutoff=CUTOFF)
    return np.asarray(_apply(objective, batch))[: len(crystals)], batch


def test_sw_energy_target_matches_the_physics_reference(cells):
    # reference: the SW energy per atom that atomsmith.physics stored on the melt-quench cells (float32)
    shipped = cells[:2]
    from atomsmith.physics.asi_set import SHIPPED_POTENTIAL
    from atomsmith.physics.stillinger_weber import parameter_set

    energies = np.array([c.properties["energy_per_atom"] for c in shipped])
    target, scale = -3.0, 0.05
    objective = SWEnergyTarget(target, scale, params=parameter_set(SHIPPED_POTENTIAL))
    values, batch = _values(objective, shipped)
    np.testing.assert_allclose(values, ((energies - target) / scale) ** 2, rtol=2e-3, atol=1e-3)
    # padding structures are exactly 0
    assert np.all(np.asarray(objective(batch))[len(cells):] == 0.0)


def test_soft_core_and_gradient_clip(cells):
    from atomsmith.assembly import SWEnergyPerAtom
    from atomsmith.guidance.amorphous import sw_energy_per_atom

    batch = batch_graphs(cells, cutoff=CUTOFF)
    plain = np.asarray(SWEnergyPerAtom()(batch))
    np.testing.assert_allclose(np.asarray(jax.jit(sw_energy_per_atom)(batch)), plain, rtol=1e-6)  # core 0: same terms
    # the soft core changes nothing in physical cells (all pairs > 2 Å) ...
    np.testing.assert_allclose(np.asarray(SWEnergyTarget(0.0, 1.0)(batch)), plain ** 2, rtol=1e-5)
    # ... and keeps two piled-up atoms finite, where plain SW overflows
    c = cells[0]
    frac = c.frac_coords.copy()
    frac[1] = frac[0] + 1e-7
    piled = batch_graphs([Crystal(c.lattice, frac, c.numbers)], cutoff=CUTOFF)
    soft = jax.jit(value_and_grad)(SWEnergyTarget(-4.0, 0.05), piled)
    assert np.isfinite(float(soft.values[0])) and np.all(np.isfinite(np.asarray(soft.positions)))
    hard = jax.jit(value_and_grad)(SWEnergyTarget(-4.0, 0.05, core=0.0), piled)
    assert not np.all(np.isfinite(np.asarray(hard.positions)))
    # clipping the per-edge gradient bounds every atom's gradient (<= degree * clip), values unchanged
    clipped = jax.jit(value_and_grad)(SWEnergyTarget(-4.0, 0.05, max_edge_grad=0.5), piled)
    np.testing.assert_allclose(float(clipped.values[0]), float(soft.values[0]), rtol=1e-6)
    assert np.max(np.linalg.norm(np.asarray(clipped.positions), axis=1)) <= 0.5 * 64
    assert np.max(np.abs(np.asarray(clipped.positions))) < np.max(np.abs(np.asarray(soft.positions)))


def test_fourfold_fraction_approaches_the_hard_count(cells):
    hard = np.array([np.mean(coordination_numbers(c) == 4) for c in cells])
    sharp, _ = _values(FourFoldFraction(bond_width=0.002, count_width=0.02), cells)
    np.testing.assert_allclose(sharp, hard, atol=1.0 / 64)
    smooth, _ = _values(FourFoldFraction(), cells)  # default widths: close, not equal
    np.testing.assert_allclose(smooth, hard, atol=0.1)
    values, _ = _values(FourFoldTarget(0.8, 0.1), cells)
    np.testing.assert_allclose(values, ((smooth - 0.8) / 0.1) ** 2, rtol=1e-5)
    # a perfect diamond cell: every atom four-fold
    diamond = Crystal(np.eye(3) * 5.431, np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0], [.25, .25, .25],
                                                   [.25, .75, .75], [.75, .25, .75], [.75, .75, .25]]), [14] * 8)
    np.testing.assert_allclose(_values(FourFoldFraction(), [diamond])[0], 1.0, atol=1e-3)


@pytest.mark.parametrize("objective", [SWEnergyTarget(-4.2, 0.05), FourFoldTarget(0.9, 0.05)],
                         ids=["sw-energy", "fourfold"])
def test_objectives_are_invariant_and_have_finite_gradients(cells, objective):
    crystal = cells[2]
    rng = np.random.default_rng(1)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]  # includes improper rotations half the time
    moved = [crystal.rotated(rotation),
             Crystal(crystal.lattice, crystal.frac_coords + rng.random(3), crystal.numbers),
             crystal.permuted(rng.permutation(crystal.n_atoms))]
    reference, _ = _values(objective, [crystal])
    for other in moved:
        np.testing.assert_allclose(_values(objective, [other])[0], reference, rtol=2e-4, atol=1e-4)
    grads = jax.jit(value_and_grad)(objective, batch_graphs(cells, cutoff=CUTOFF))
    for g in (grads.frac_coords, grads.lattices, grads.positions):
        assert np.all(np.isfinite(np.asarray(g)))
    assert np.max(np.abs(np.asarray(grads.positions))) > 0
    # the gradient is the derivative: a small step against it lowers the objective
    nodes = np.cumsum([0] + [c.n_atoms for c in cells])
    step = -np.asarray(grads.positions)[nodes[2]:nodes[3]]
    lower = Crystal.from_cartesian(crystal.lattice, crystal.positions + 1e-3 * step / np.abs(step).max(),
                                   crystal.numbers)
    assert _values(objective, [lower])[0][0] < reference[0]


def test_fourfold_gradient_matches_finite_differences(cells):
    crystal = cells[2]
    objective = FourFoldFraction(bond_width=0.1, count_width=0.3)
    with jax.enable_x64(True):
        batch = batch_graphs([crystal], cutoff=CUTOFF, dtype=np.float64)
        grads = value_and_grad(objective, batch)
        direction = np.random.default_rng(2).normal(size=(crystal.n_atoms, 3))
        h = 1e-5
        plus = batch.replace(frac_coords=batch.frac_coords.at[: crystal.n_atoms].add(h * direction))
        minus = batch.replace(frac_coords=batch.frac_coords.at[: crystal.n_atoms].add(-h * direction))
        fd = (float(objective(plus)[0]) - float(objective(minus)[0])) / (2 * h)
        analytic = float(np.sum(np.asarray(grads.frac_coords)[: crystal.n_atoms] * direction))
    assert abs(fd - analytic) < 1e-5 + 1e-4 * abs(fd), (fd, analytic)


def test_amorphous_mode_sampling_holds_cell_and_composition():
    config = DiffusionConfig.tiny(elements=(14,))
    model = DiffusionModel(config, init_params(config, jax.random.PRNGKey(0)))
    lattice = np.eye(3) * 5.431
    n = 8
    conditions = {"lattice": lattice, "composition": [14] * n}
    guided = model.sample(jax.random.PRNGKey(1), 2, steps=3, conditions=conditions,
                          guidance=FourFoldTarget(0.9, 0.1), guidance_scale=0.01, guidance_cutoff=CUTOFF)
    assert len(guided) == 2
    for c in guided:
        np.testing.assert_allclose(c.lattice, lattice, atol=1e-6)
        assert c.n_atoms == n and np.all(c.numbers == 14)
        assert np.all(np.isfinite(c.frac_coords))
        assert np.isfinite(c.properties["guidance_objective"])
