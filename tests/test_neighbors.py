"""Periodic neighbour lists: host (ase-backed) vs brute force vs the jit path, on small and skewed cells."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from atomsmith.graphs.batching import batch_graphs, bucket_size, fixed_sizes, iterate_batches
from atomsmith.graphs.environments import EnvironmentError_, local_environments
from atomsmith.graphs.neighbors import brute_force_neighbor_list, image_counts, neighbor_list
from atomsmith.graphs.neighbors_jax import NeighborSpec, neighbor_list_jax
from atomsmith.structures.crystal import Crystal
from tests.helpers.symmetry import random_crystal


def edge_set(graph, crystal, decimals=6):
    vec = graph.vectors(crystal)
    return sorted((int(r), int(s), *np.round(v, decimals)) for r, s, v in zip(graph.receivers, graph.senders, vec))


@pytest.mark.parametrize("seed", range(4))
def test_host_matches_brute_force_on_small_skewed_cells(seed):
    rng = np.random.default_rng(seed)
    # cells much smaller than the cutoff: each atom sees many images of each neighbour and of itself
    crystal = random_crystal(rng, 3, size=2.2, skew=0.6, min_distance=0.8)
    cutoff = 5.0
    fast, ref = neighbor_list(crystal, cutoff), brute_force_neighbor_list(crystal, cutoff)
    assert fast.n_edges == ref.n_edges > 3 * 27
    assert edge_set(fast, crystal) == edge_set(ref, crystal)
    self_images = np.sum((fast.senders == fast.receivers))
    assert self_images > 0  # an atom sees its own periodic images
    assert np.all(fast.distances(crystal) < cutoff) and np.all(fast.distances(crystal) > 0)


def test_single_atom_cell_sees_its_images():
    crystal = Crystal(np.eye(3) * 2.0, [[0, 0, 0]], [14])
    g = neighbor_list(crystal, 2.1)
    assert g.n_edges == 6 and np.all(g.senders == 0)
    g = neighbor_list(crystal, 2.9)  # + 12 face diagonals at 2.83 Å
    assert g.n_edges == 18


@pytest.mark.parametrize("seed", range(3))
def test_jax_path_matches_host(seed):
    rng = np.random.default_rng(10 + seed)
    crystal = random_crystal(rng, 5, size=3.0, skew=0.5)
    cutoff = 4.5
    host = neighbor_list(crystal, cutoff)
    spec = NeighborSpec.for_lattice(crystal.lattice, cutoff, max_edges=host.n_edges + 17)
    # unwrapped coordinates: the jit path must still give the right image shifts
    frac = crystal.frac_coords + rng.integers(-3, 4, size=(5, 3))
    nb = jax.jit(neighbor_list_jax, static_argnums=2)(jnp.asarray(frac), jnp.asarray(crystal.lattice), spec)
    assert not bool(nb.overflow) and int(nb.count) == host.n_edges
    m = np.asarray(nb.mask)
    pos = frac @ crystal.lattice
    vec = pos[np.asarray(nb.senders)[m]] - pos[np.asarray(nb.receivers)[m]] + np.asarray(nb.shifts)[m] @ crystal.lattice
    got = sorted((int(r), int(s), *np.round(v, 4)) for r, s, v in
                 zip(np.asarray(nb.receivers)[m], np.asarray(nb.senders)[m], vec))
    assert got == edge_set(host, crystal, 4)
    assert np.all(np.diff(np.asarray(nb.receivers)[m]) >= 0)  # sorted by receiver


def test_jax_overflow_flag_and_masking():
    rng = np.random.default_rng(3)
    crystal = random_crystal(rng, 4, size=3.0)
    spec = NeighborSpec.for_lattice(crystal.lattice, 4.0, max_edges=10)
    nb = neighbor_list_jax(jnp.asarray(crystal.frac_coords), jnp.asarray(crystal.lattice), spec)
    assert bool(nb.overflow) and int(nb.count) > 10 and bool(np.all(nb.mask))
    mask = jnp.array([True, True, False, False])
    spec = NeighborSpec.for_lattice(crystal.lattice, 4.0, max_edges=400)
    nb = neighbor_list_jax(jnp.asarray(crystal.frac_coords), jnp.asarray(crystal.lattice), spec, mask)
    m = np.asarray(nb.mask)
    assert set(np.asarray(nb.senders)[m]) <= {0, 1} and set(np.asarray(nb.receivers)[m]) <= {0, 1}


def test_image_counts_cover_cutoff():
    lattice = np.array([[3.0, 0, 0], [2.9, 0.5, 0], [0, 0, 10.0]])  # very skewed: planes 0.5 Å apart
    counts = image_counts(lattice, 5.0)
    assert counts[0] >= 10 and counts[2] == 1


def test_batching_buckets_and_offsets():
    rng = np.random.default_rng(0)
    crystals = [random_crystal(rng, n) for n in (2, 5, 3)]
    batch = batch_graphs(crystals, cutoff=3.0)
    assert batch.n_nodes == bucket_size(11) and batch.n_graphs == 4
    assert np.asarray(batch.node_mask).sum() == 10
    assert list(np.asarray(batch.n_atoms)) == [2, 5, 3, 0]
    vec = np.asarray(batch.edge_vectors())[np.asarray(batch.edge_mask)]
    expect = np.concatenate([neighbor_list(c, 3.0).vectors(c) for c in crystals])
    np.testing.assert_allclose(vec, expect, atol=1e-5)
    many = crystals * 10
    shapes = {(b.n_nodes, b.edge_mask.shape[0]) for b in iterate_batches(many, 4, 3.0, np.random.default_rng(0))}
    assert 1 < len(shapes) <= 8  # bucketed: a few distinct shapes out of 8 batches of varying size
    graphs = [neighbor_list(c, 3.0) for c in many]
    sizes = fixed_sizes(many, graphs, 4)
    shapes = {(b.n_nodes, b.edge_mask.shape[0]) for b in iterate_batches(many, 4, 3.0, np.random.default_rng(0),
                                                                          graphs=graphs, sizes=sizes)}
    assert len(shapes) == 1
    assert [bucket_size(n) for n in (1, 9, 13, 17, 25, 33, 100)] == [8, 12, 16, 24, 32, 48, 128]


def test_local_environments():
    # diamond silicon: 4 neighbours at 2.35 Å, 12 at 3.84 Å
    from ase.build import bulk

    crystal = Crystal.from_ase(bulk("Si", "diamond", a=5.431))
    env = local_environments(crystal, 4, 3.0)
    assert env.vectors.shape == (2, 4, 3)
    np.testing.assert_allclose(np.linalg.norm(env.vectors, axis=-1), 5.431 * np.sqrt(3) / 4, atol=1e-6)
    env8 = local_environments(crystal, 8, 4.0)
    d = np.linalg.norm(env8.vectors, axis=-1)
    assert np.all(np.diff(d, axis=1) >= -1e-12)
    with pytest.raises(EnvironmentError_, match="only 4 neighbours"):
        local_environments(crystal, 8, 3.0)
    assert local_environments(crystal, 8, 3.0, strict=False).vectors.shape[0] == 0


# --- the jit path in detail: exact edge order, image windows, packed words, large cells, gradients ---------------

_jit_list = jax.jit(neighbor_list_jax, static_argnums=2)


def reference_edges(frac, lattice, n_images, cutoff, mask=None):
    """The documented semantics in float64 NumPy: edges (i, j, S') for S' in the lexicographic grid, in that order,
    with ``|(w_j - w_i + S') L| < cutoff`` (w wrapped) and ``S = S' - floor(f_j) + floor(f_i)``."""
    floor = np.floor(frac)
    wrapped = frac - floor
    grid = np.stack(np.meshgrid(*[np.arange(-c, c + 1) for c in n_images], indexing="ij"), -1).reshape(-1, 3)
    d = (wrapped[None, :, None, :] - wrapped[:, None, None, :] + grid[None, None]) @ lattice
    within = np.linalg.norm(d, axis=-1) < cutoff
    within &= ~(np.eye(len(frac), dtype=bool)[:, :, None] & np.all(grid == 0, axis=1))
    if mask is not None:
        within &= mask[:, None, None] & mask[None, :, None]
    i, j, s = np.nonzero(within)  # C order: receiver, then sender, then image
    return i, j, grid[s] - floor[j] + floor[i]


def assert_matches_reference(nb, frac, lattice, spec, mask=None):
    i, j, shifts = reference_edges(np.asarray(frac, np.float64), np.asarray(lattice, np.float64), spec.n_images,
                                   spec.cutoff, mask)
    assert int(nb.count) == len(i)
    k = min(len(i), spec.max_edges)
    m = np.asarray(nb.mask)
    assert m.sum() == k and np.all(m[:k])
    np.testing.assert_array_equal(np.asarray(nb.receivers)[:k], i[:k])
    np.testing.assert_array_equal(np.asarray(nb.senders)[:k], j[:k])
    np.testing.assert_array_equal(np.asarray(nb.shifts)[:k], shifts[:k])
    assert not np.any(np.asarray(nb.shifts)[k:]) and not np.any(np.asarray(nb.senders)[k:])
    assert bool(nb.overflow) == (len(i) > spec.max_edges)


def jit_edge_set(nb, frac, lattice, decimals=4):
    """Sorted (receiver, sender, vector) of the masked edges, vectors in float64 from ``frac`` and ``lattice``."""
    m = np.asarray(nb.mask)
    r, s, shifts = np.asarray(nb.receivers)[m], np.asarray(nb.senders)[m], np.asarray(nb.shifts, np.float64)[m]
    pos = np.asarray(frac, np.float64) @ lattice
    vec = pos[s] - pos[r] + shifts @ lattice
    return sorted((int(a), int(b), *np.round(v, decimals)) for a, b, v in zip(r, s, vec))


@pytest.mark.parametrize("seed", range(6))
def test_jax_exact_order_small_skewed_cells_grid_and_window(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 7))
    crystal = random_crystal(rng, n, size=float(rng.uniform(2.0, 7.0)), skew=0.6, min_distance=0.6)
    cutoff = float(rng.uniform(2.5, 6.0))
    frac = crystal.frac_coords + rng.integers(-2, 3, size=(n, 3))  # unwrapped
    auto = NeighborSpec.for_lattice(crystal.lattice, cutoff, max_edges=4000)
    for spec in (auto, NeighborSpec(cutoff, 4000, auto.n_images)):  # with the window (if any) and the full grid
        nb = _jit_list(jnp.asarray(frac, jnp.float32), jnp.asarray(crystal.lattice, jnp.float32), spec)
        assert_matches_reference(nb, frac, crystal.lattice, spec)
    assert int(nb.count) == neighbor_list(crystal, cutoff).n_edges  # and the host (ase) list agrees on the count


def test_jax_many_images_use_several_words():
    # planes 0.5 Å apart: images +-10 along a and b; the grid has 21 * 21 * 3 = 1323 candidates per pair (42 words
    # of 32 bits), the window 19 * 19 * 1 = 361 (12 words)
    lattice = np.array([[3.0, 0, 0], [2.9, 0.5, 0], [0, 0, 10.0]])
    frac = np.array([[0.1, 0.2, 0.3], [0.6, 0.7, 0.2], [0.35, 0.05, 0.8]])
    crystal = Crystal(lattice, frac, [14, 14, 14])
    cutoff = 4.6
    auto = NeighborSpec.for_lattice(lattice, cutoff, max_edges=2000)
    assert auto.n_images == (10, 10, 1) and auto.window == (9, 9, 0)
    for spec in (auto, NeighborSpec(cutoff, 2000, auto.n_images)):
        nb = _jit_list(jnp.asarray(frac, jnp.float32), jnp.asarray(lattice, jnp.float32), spec)
        assert_matches_reference(nb, frac, lattice, spec)
    assert jit_edge_set(nb, frac, lattice) == edge_set(neighbor_list(crystal, cutoff), crystal, 4)


def test_jax_single_atom_and_empty():
    lattice = np.eye(3) * 2.0
    spec = NeighborSpec.for_lattice(lattice, 2.9, max_edges=32)  # 6 faces + 12 face diagonals
    nb = _jit_list(jnp.zeros((1, 3)), jnp.asarray(lattice, jnp.float32), spec)
    assert int(nb.count) == 18 and np.all(np.asarray(nb.senders) == 0)
    assert_matches_reference(nb, np.zeros((1, 3)), lattice, spec)
    nb = neighbor_list_jax(jnp.zeros((0, 3)), jnp.asarray(lattice, jnp.float32), spec)
    assert int(nb.count) == 0 and nb.senders.shape == (32,) and not np.any(np.asarray(nb.mask))


def test_jax_window_boundary_and_too_thin_cell():
    rng = np.random.default_rng(7)
    frac = rng.random((12, 3))
    cutoff = 5.0
    # cubic cells at 2 x cutoff: the nearest image alone suffices just above it, not at it
    assert NeighborSpec.for_lattice(np.eye(3) * 10.01, cutoff, 10).window == (0, 0, 0)
    assert NeighborSpec.for_lattice(np.eye(3) * 10.0, cutoff, 10).window is None  # would be (1,1,1) = the grid
    assert NeighborSpec.for_lattice(np.eye(3) * 10.0, cutoff, 10, margin=0.01).window is None
    for a in (10.01, 10.0, 9.99):
        lattice = np.eye(3) * a + rng.normal(size=(3, 3)) * 0.01
        spec = NeighborSpec.for_lattice(lattice, cutoff, 1000)
        nb = _jit_list(jnp.asarray(frac, jnp.float32), jnp.asarray(lattice, jnp.float32), spec)
        assert_matches_reference(nb, frac, lattice, spec)
    # a minimum-image spec applied to a cell that has become too thin: flagged, not silently wrong
    spec = NeighborSpec.for_lattice(np.eye(3) * 12.0, cutoff, 1000)
    assert spec.window == (0, 0, 0)
    thin = np.eye(3) * 9.0
    nb = _jit_list(jnp.asarray(frac, jnp.float32), jnp.asarray(thin, jnp.float32), spec)
    assert bool(nb.overflow) and int(nb.count) < 1000
    grid = NeighborSpec(cutoff, 1000, spec.n_images)  # the grid (+-1) is still exact there
    nb = _jit_list(jnp.asarray(frac, jnp.float32), jnp.asarray(thin, jnp.float32), grid)
    assert not bool(nb.overflow)
    assert_matches_reference(nb, frac, thin, grid)
    with pytest.raises(ValueError, match="window"):
        NeighborSpec(cutoff, 10, (1, 1, 1), (0, -1, 0))
    with pytest.raises(ValueError, match="cutoff"):
        NeighborSpec(0.0, 10, (1, 1, 1))


def test_jax_overflow_keeps_the_first_edges_and_padding_atoms():
    rng = np.random.default_rng(11)
    crystal = random_crystal(rng, 6, size=3.5, skew=0.4)
    mask = np.array([True, False, True, True, False, True])
    full = NeighborSpec.for_lattice(crystal.lattice, 4.0, max_edges=3000)
    for spec in (full, NeighborSpec(4.0, 3000, full.n_images)):
        for capacity in (3000, 37):
            capped = NeighborSpec(spec.cutoff, capacity, spec.n_images, spec.window)
            nb = _jit_list(jnp.asarray(crystal.frac_coords, jnp.float32), jnp.asarray(crystal.lattice, jnp.float32),
                           capped, jnp.asarray(mask))
            assert_matches_reference(nb, crystal.frac_coords, crystal.lattice, capped, mask)
    assert bool(nb.overflow)


def test_jax_large_amorphous_cells_vmapped():
    from atomsmith.physics import load_shipped

    cells = load_shipped(216)[:2]
    lattice = np.stack([c.lattice for c in cells]).astype(np.float32)
    rng = np.random.default_rng(0)
    frac = np.stack([c.frac_coords + rng.integers(-1, 2, size=(c.n_atoms, 3)) for c in cells]).astype(np.float32)
    auto = NeighborSpec.for_lattice(cells[0].lattice, 5.0, 40 * 216)
    assert auto.window == (0, 0, 0)
    for spec in (auto, NeighborSpec(5.0, 40 * 216, auto.n_images)):
        nbs = jax.jit(jax.vmap(lambda f, l: neighbor_list_jax(f, l, spec)))(frac, lattice)  # noqa: B023
        for b, cell in enumerate(cells):
            nb = jax.tree_util.tree_map(lambda x: x[b], nbs)  # noqa: B023
            assert_matches_reference(nb, frac[b], lattice[b], spec)
            host = neighbor_list(cell, 5.0)
            assert int(nb.count) == host.n_edges
            m = np.asarray(nb.mask)  # one image per pair here, so the host's (receiver, sender) order is ours
            np.testing.assert_array_equal(np.asarray(nb.receivers)[m], host.receivers)
            np.testing.assert_array_equal(np.asarray(nb.senders)[m], host.senders)


def test_jax_gradients_through_edge_vectors():
    """Energy of the edges the jit list finds == the same energy over the host graph's fixed edges, with the same
    gradients w.r.t. fractional coordinates and lattice (the list itself carries no gradient)."""
    rng = np.random.default_rng(5)
    crystal = random_crystal(rng, 5, size=3.2, skew=0.4)
    cutoff = 4.0
    spec = NeighborSpec.for_lattice(crystal.lattice, cutoff, 1500)
    host = neighbor_list(crystal, cutoff)

    def pair_energy(frac, lattice, senders, receivers, shifts, mask):
        pos = frac @ lattice
        vec = pos[senders] - pos[receivers] + shifts @ lattice
        u = 1.0 - jnp.sum(vec ** 2, axis=-1) / cutoff ** 2
        return jnp.sum(jnp.where(mask, u ** 2, 0.0))

    def with_jit_list(frac, lattice):
        nb = neighbor_list_jax(frac, lattice, spec)
        return pair_energy(frac, lattice, nb.senders, nb.receivers, nb.shifts, nb.mask)

    def with_host_list(frac, lattice):
        return pair_energy(frac, lattice, host.senders, host.receivers, jnp.asarray(host.shifts, frac.dtype),
                           jnp.ones(host.n_edges, bool))

    args = (jnp.asarray(crystal.frac_coords, jnp.float32), jnp.asarray(crystal.lattice, jnp.float32))
    e1, g1 = jax.jit(jax.value_and_grad(with_jit_list, argnums=(0, 1)))(*args)
    e2, g2 = jax.value_and_grad(with_host_list, argnums=(0, 1))(*args)
    np.testing.assert_allclose(e1, e2, rtol=1e-5)
    assert float(jnp.max(jnp.abs(g2[0]))) > 1e-3 and float(jnp.max(jnp.abs(g2[1]))) > 1e-3
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))
