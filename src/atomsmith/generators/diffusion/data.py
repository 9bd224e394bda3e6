"""Dense, padded arrays of training cells and the deterministic batch iterator for the training loop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from atomsmith.structures.crystal import Crystal


def load_split(name: str, split: str, limit: int | None = None) -> list[Crystal]:
    """Crystals of a dataset split via :func:`atomsmith.datasets.load`, or, until that lands, from the CSVs
    shipped in ``atomsmith/datasets/files/<name>/<split>.csv.gz`` (column ``cif``)."""
    try:
        from atomsmith.datasets import load  # type: ignore[attr-defined]
    except ImportError:
        load = None
    if load is not None:
        return list(load(name, split, limit=limit))
    import csv
    import gzip
    import io
    from pathlib import Path

    from atomsmith.structures.io import parse_cif

    path = Path(__file__).resolve().parents[2] / "datasets" / "files" / name / f"{split}.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"no dataset file {path}")
    out = []
    with gzip.open(path, "rb") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, "utf-8")):
            props = {k: float(row[k]) for k in ("heat_ref", "energy_per_atom") if row.get(k) not in (None, "")}
            crystal = parse_cif(row["cif"], source=f"{name}:{split}")[0]
            out.append(Crystal(crystal.lattice, crystal.frac_coords, crystal.numbers, properties=props))
            if limit is not None and len(out) >= limit:
                break
    return out


def load_split_cached(name: str, split: str, cache_dir: str | None = None) -> list[Crystal]:
    """:func:`load_split` with an ``.npz`` cache of lattices, coordinates and numbers (parsing CIFs is slow)."""
    import os
    from pathlib import Path

    cache = Path(cache_dir or os.environ.get("ATOMSMITH_CACHE", Path.home() / ".cache" / "atomsmith"))
    path = cache / "diffusion" / f"{name}-{split}.npz"
    if path.exists():
        data = np.load(path)
        offsets = np.concatenate([[0], np.cumsum(data["n_atoms"])])
        return [Crystal(data["lattice"][i], data["frac"][offsets[i]:offsets[i + 1]],
                        data["numbers"][offsets[i]:offsets[i + 1]]) for i in range(len(data["n_atoms"]))]
    crystals = load_split(name, split)
    from atomsmith.core.files import atomic_write

    with atomic_write(path, mode="wb", overwrite=True) as handle:  # unique temporary: concurrent writers are safe
        np.savez(handle, lattice=np.stack([c.lattice for c in crystals]),
                 frac=np.concatenate([c.frac_coords for c in crystals]),
                 numbers=np.concatenate([c.numbers for c in crystals]),
                 n_atoms=np.array([c.n_atoms for c in crystals]))
    return crystals


def dense_arrays(crystals: Sequence[Crystal], elements: Sequence[int], max_atoms: int | None = None,
                 properties: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """``frac [B,A,3]``, ``lattice [B,3,3]``, ``species [B,A,K]`` one-hot, ``atom_mask [B,A]``, ``cell_mask [B]``,
    and with ``properties`` also ``props [B,P]`` (raw values from ``crystal.properties``; NaN where missing).

    Raises ``ValueError`` for an element outside the vocabulary ``elements``.
    """
    index = {int(z): i for i, z in enumerate(elements)}
    a = max_atoms or max(c.n_atoms for c in crystals)
    b, k = len(crystals), len(elements)
    frac = np.zeros((b, a, 3), np.float32)
    lattice = np.zeros((b, 3, 3), np.float32)
    species = np.zeros((b, a, k), np.float32)
    mask = np.zeros((b, a), bool)
    for i, c in enumerate(crystals):
        n = c.n_atoms
        if n > a:
            raise ValueError(f"crystal {i} has {n} atoms, more than the {a} slots")
        frac[i, :n] = c.frac_coords % 1.0
        lattice[i] = c.lattice
        try:
            species[i, np.arange(n), [index[int(z)] for z in c.numbers]] = 1.0
        except KeyError as exc:
            raise ValueError(f"crystal {i} has element Z={exc.args[0]}, not in the model's vocabulary") from None
        mask[i, :n] = True
    out = {"frac": frac, "lattice": lattice, "species": species, "atom_mask": mask, "cell_mask": np.ones((b,), bool)}
    if properties:
        out["props"] = np.array([[float(c.properties.get(name, np.nan)) for name in properties] for c in crystals],
                                np.float32).reshape(b, len(properties))
    return out


def batch_iterator(arrays: dict[str, np.ndarray], batch_size: int, seed: int):
    """``epoch -> iterator of batches`` (shuffled deterministically by ``(seed, epoch)``; the last partial batch
    is dropped so every batch has one shape)."""
    n = len(arrays["frac"])
    if n < batch_size:
        raise ValueError(f"{n} training cells are fewer than one batch of {batch_size}")

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            yield {k: v[idx] for k, v in arrays.items()}

    return batches
