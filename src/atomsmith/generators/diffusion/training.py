"""Fitting a diffusion model with the shared training loop (:func:`atomsmith.training.loop.fit`)."""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion.config import CONDITIONING_DIM, DiffusionConfig
from atomsmith.generators.diffusion.data import batch_iterator, dense_arrays
from atomsmith.generators.diffusion.lattice import LatticeNormalizer
from atomsmith.generators.diffusion.losses import make_loss_fn
from atomsmith.generators.diffusion.model import DiffusionModel
from atomsmith.generators.diffusion.schedules import Schedules
from atomsmith.graphs.neighbors import image_counts
from atomsmith.nn.encoder import EncoderConfig
from atomsmith.structures.crystal import Crystal
from atomsmith.training.loop import TrainConfig, fit


def make_config(train: Sequence[Crystal], *, irreps_hidden: str = "16x0e+8x1o+4x2e", n_layers: int = 2,
                cutoff: float = 5.0, n_basis: int = 8, radial_hidden: tuple[int, ...] = (32,),
                schedules: Schedules = Schedules(), seed: int = 0, elements: Sequence[int] | None = None,
                **overrides: Any) -> DiffusionConfig:
    """A config fitted to the training cells: vocabulary, lattice statistics, atom-count distribution, image range
    and neighbour capacity (measured on noised training cells, with 25 % headroom).

    ``elements``: the species vocabulary (atomic numbers); default: those of the training cells (pass the union
    with the validation cells when they may hold elements the training cells lack).
    """
    elements = tuple(sorted({int(z) for z in elements} if elements is not None else
                            {int(z) for c in train for z in c.numbers}))
    lattices = np.stack([c.lattice for c in train])
    normalizer = LatticeNormalizer.fit(lattices)
    counts = collections.Counter(c.n_atoms for c in train)
    # the smallest cell the network can see: lengths 3.5 sd below the mean, angles 3.5 sd away from the mean
    p = np.asarray(normalizer.mean) - 3.5 * np.asarray(normalizer.std) * np.array([1, 1, 1, 0, 0, 0])
    p[3:] = np.clip(np.asarray(normalizer.mean[3:]) + 3.5 * np.asarray(normalizer.std[3:]), 30, 150)
    from atomsmith.generators.diffusion.lattice import matrix_from_parameters

    small = np.asarray(matrix_from_parameters(jnp.asarray(p, jnp.float32)), np.float64)
    data_images = np.max([image_counts(l, cutoff) for l in lattices[:2000]], 0)
    # the extreme cell is capped at one image beyond the data's: for spread-out, skewed cells (carbon_24_unique)
    # it is nearly degenerate and would ask for ~100 images (an all-pairs list of ~10^14 entries)
    n_images = tuple(int(min(max(x, 1), d + 1)) for x, d in zip(image_counts(small, cutoff), data_images))
    n_images = tuple(max(a, int(b)) for a, b in zip(n_images, data_images))
    species_process = overrides.get("species_process", "gaussian")
    if species_process == "absorbing":
        overrides.setdefault("species_weight", 1.0)  # cross-entropy (nats) is O(1), like the coordinate loss
    encoder = EncoderConfig(irreps_hidden=irreps_hidden, n_layers=n_layers, sh_lmax=2, cutoff=cutoff,
                            n_basis=n_basis, radial_hidden=tuple(radial_hidden),
                            n_species=len(elements) + (1 if species_process == "absorbing" else 0),
                            conditioning_dim=CONDITIONING_DIM)
    config = DiffusionConfig(elements=elements, encoder=encoder, lattice=normalizer, schedules=schedules,
                             n_images=n_images, n_atoms_counts=tuple(sorted(counts.items())), **overrides)
    max_edges, mean_edges = measure_edges(config, train, seed=seed)
    encoder = dataclasses.replace(encoder, avg_num_neighbors=float(max(mean_edges / np.mean([c.n_atoms for c in train]), 1.0)))
    return dataclasses.replace(config, encoder=encoder, max_edges_per_cell=int(8 * math.ceil(1.25 * max_edges / 8)))


def measure_edges(config: DiffusionConfig, cells: Sequence[Crystal], n: int = 2000, seed: int = 0
                  ) -> tuple[int, float]:
    """Max and mean number of edges per cell within the cutoff over ``n`` noised training cells at random times."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(cells), size=min(n, len(cells)), replace=False)
    arrays = dense_arrays([cells[i] for i in idx], config.elements)
    sched = config.schedules
    t = rng.uniform(sched.t_min, 1.0, size=len(idx)).astype(np.float32)
    sigma = np.asarray(sched.sigma(t))[:, None, None]
    frac = (arrays["frac"] + sigma * rng.normal(size=arrays["frac"].shape)) % 1.0
    ab = np.asarray(sched.alpha_bar(jnp.asarray(t)))[:, None]
    z0 = np.asarray(config.lattice.encode(jnp.asarray(arrays["lattice"])))
    z = np.sqrt(ab) * z0 + np.sqrt(1 - ab) * rng.normal(size=z0.shape)
    lattice = config.lattice.decode(jnp.asarray(z, jnp.float32))
    grid = np.stack(np.meshgrid(*[np.arange(-c, c + 1) for c in config.n_images], indexing="ij"), -1).reshape(-1, 3)

    @jax.jit
    def count(f, l, m):
        d = f[None, :, None, :] - f[:, None, None, :] + grid[None, None].astype(f.dtype)
        d2 = jnp.sum((d @ l) ** 2, -1)
        ok = (d2 < config.encoder.cutoff ** 2) & (d2 > 1e-10) & m[:, None, None] & m[None, :, None]
        return jnp.sum(ok)

    counts = np.asarray(jax.vmap(count)(jnp.asarray(frac, jnp.float32), lattice, jnp.asarray(arrays["atom_mask"])))
    return int(counts.max()), float(counts.mean())


def train_diffusion(config: DiffusionConfig, train: Sequence[Crystal], val: Sequence[Crystal], train_config: TrainConfig,
                    *, batch_size: int = 64, checkpoint_path: str | os.PathLike | None = None,
                    metadata: Mapping[str, Any] | None = None, progress: bool = True, n_val: int = 512,
                    stop_after: int | None = None, init_from: Any = None) -> tuple[DiffusionModel, Any]:
    """Train with the shared loop; returns the model with the best (EMA) parameters and the :class:`FitResult`.

    ``init_from``: parameters of a smaller model to start from (fine-tuning; see :func:`grow_params`), e.g. an
    unconditional model that gains property inputs for classifier-free guidance.

    Validation loss is evaluated on up to ``n_val`` validation cells with a fixed key (so it is comparable across
    evaluations), and drives the choice of the best parameters.
    """
    loss_fn, net = make_loss_fn(config)
    arrays = dense_arrays(train, config.elements, properties=config.properties)
    a = arrays["frac"].shape[1]
    val_arrays = dense_arrays(list(val)[:n_val], config.elements, max_atoms=max(a, max(c.n_atoms for c in val)),
                              properties=config.properties)
    params = init_params(config, jax.random.PRNGKey(train_config.seed), n_atoms=a)
    if init_from is not None:
        params = grow_params(init_from, params)
    val_jnp = {k: jnp.asarray(v) for k, v in val_arrays.items()}

    @jax.jit
    def val_loss(p, key):
        return loss_fn(p, val_jnp, key)

    def eval_fn(p):
        losses = [val_loss(p, jax.random.PRNGKey(1000 + i)) for i in range(2)]
        out = {"loss": np.mean([float(l) for l, _ in losses])}
        for name in ("coord", "lattice", "species"):
            out[name] = np.mean([float(m[name]) for _, m in losses])
        return out

    meta = {"model_config": config.to_json(), **dict(metadata or {})}
    result = fit(loss_fn, params, batch_iterator(arrays, batch_size, train_config.seed), train_config,
                 eval_fn=eval_fn, checkpoint_path=checkpoint_path, kind="diffusion", metadata=meta,
                 progress=progress, stop_after=stop_after)
    return DiffusionModel(config, result.best_params), result


def grow_params(old: Any, new: Any) -> Any:
    """Copy ``old`` parameters into the freshly initialised ``new`` ones of a model with wider inputs.

    Leaves are matched by path, ignoring irreps multiplicities in e3nn weight names (``w[0,0] 31x0e,8x0e`` becomes
    ``w[0,0] 33x0e,8x0e`` when two conditioning scalars join the 0e inputs). Leaves of equal shape are copied; a
    leaf that grew (same rank, every axis at least as long) gets the old values in its leading block and zeros
    elsewhere, so new input channels (appended at the end, as the property conditioning scalars are) start with no
    effect. Any other mismatch raises ``ValueError``.
    """
    import re

    def name(path) -> str:
        return re.sub(r"\d+x(\d+[eo])", r"x\1", jax.tree_util.keystr(path))

    old_flat = {name(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(old)}
    missing = []

    def take(path, leaf):
        if name(path) not in old_flat:
            missing.append(jax.tree_util.keystr(path))
            return leaf
        o = jnp.asarray(old_flat[name(path)])
        if o.shape == leaf.shape:
            return o.astype(leaf.dtype)
        if o.ndim != leaf.ndim or any(a > b for a, b in zip(o.shape, leaf.shape)):
            raise ValueError(f"cannot grow {jax.tree_util.keystr(path)} from {o.shape} to {leaf.shape}")
        return jnp.zeros_like(leaf).at[tuple(slice(0, n) for n in o.shape)].set(o.astype(leaf.dtype))

    grown = jax.tree_util.tree_map_with_path(take, new)
    if missing:
        raise ValueError(f"parameters missing from the old model: {missing[:5]}")
    return grown


def init_params(config: DiffusionConfig, key: jax.Array, n_atoms: int = 5):
    """Parameters of :class:`ScoreNetwork` for ``config`` (shapes do not depend on the batch)."""
    _, net = make_loss_fn(config)
    b = 2
    lattice = jnp.tile(jnp.eye(3) * 4.0, (b, 1, 1))
    return jax.jit(net.init)(key, jnp.zeros((b, n_atoms, 3)) + 0.1 * jnp.arange(n_atoms)[None, :, None], lattice,
                    jnp.zeros((b, n_atoms, config.species_channels)), jnp.ones((b, n_atoms), bool), jnp.full((b,), 0.5),
                    jnp.zeros((b,)))
