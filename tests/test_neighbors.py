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
