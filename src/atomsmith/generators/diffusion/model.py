"""The diffusion model object: config + parameters, ``sample`` (the :class:`Generator` protocol), save/load."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.samplers import SamplerState, make_chunk_runner, prior, time_grid
from atomsmith.graphs.batching import bucket_size
from atomsmith.structures.crystal import Crystal
from atomsmith.training import checkpoint as ckpt

CHECKPOINT_KIND = "diffusion"
#: default number of reverse steps (predictor-corrector: two network evaluations per step).
DEFAULT_STEPS = 200
#: cells sampled together (one compiled shape; smaller requests use a smaller bucketed batch).
DEFAULT_BATCH = 256
#: sub-steps (network evaluations) per ``lax.scan`` chunk between progress-bar updates.
CHUNK = 20


class DiffusionModel:
    """A trained crystal diffusion model. Implements :class:`atomsmith.generators.Generator`."""

    def __init__(self, config: DiffusionConfig, params: Any, metadata: Mapping[str, Any] | None = None) -> None:
        self.config = config
        self.params = params
        self.metadata = dict(metadata or {})
        self._runners: dict[tuple[str, float], Callable] = {}

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None, overwrite: bool = False):
        meta = {**self.metadata, **dict(metadata or {}), "model_config": self.config.to_json()}
        return ckpt.save(path, {"params": self.params}, kind=CHECKPOINT_KIND, metadata=meta, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DiffusionModel:
        """Load a model checkpoint (``kind="diffusion"``) or a training checkpoint of the shared loop
        (``kind="train-state:diffusion"``, whose best EMA parameters are used)."""
        header = ckpt.read_header(path)
        kind = header["kind"]
        if kind == CHECKPOINT_KIND:
            state, meta = ckpt.load(path, kind=CHECKPOINT_KIND)
            params = state["params"]
        elif kind == f"train-state:{CHECKPOINT_KIND}":
            state, meta = ckpt.load(path, kind=kind)
            params = state["best_params"]
        else:
            raise ckpt.CheckpointMismatchError(f"{path} holds a {kind!r} checkpoint, not a diffusion model")
        config = DiffusionConfig.from_json(meta["model_config"])
        params = jax.tree_util.tree_map(jnp.asarray, params)
        return cls(config, params, meta)

    # ------------------------------------------------------------------ sampling
    def sample(self, key: jax.Array, n: int, *, conditions: Mapping[str, Any] | None = None,
               guidance: Sequence[Any] | None = None, fixed: Any = None, steps: int = DEFAULT_STEPS,
               method: str = "pc", step_lr: float = 1e-5, batch_size: int = DEFAULT_BATCH,
               progress: bool = False, stats: dict | None = None) -> list[Crystal]:
        """Draw ``n`` crystals.

        Args:
          key: PRNG key; results are reproducible for the same key, ``n``, ``steps``, ``method`` and batch size.
          conditions: ``{"composition": Z}`` for structure prediction: ``Z`` is one sequence of atomic numbers
            (used for all ``n``) or a list of ``n`` of them. ``{"n_atoms": k}`` fixes the number of atoms.
            Otherwise the number of atoms is drawn from the training distribution.
          steps: reverse steps (default :data:`DEFAULT_STEPS`).
          method: ``"pc"`` (predictor-corrector) or ``"ode"`` (probability flow).
          stats: if a dict is given it receives ``seconds``, ``structures_per_s`` and ``overflow`` (cells whose
            neighbour list overflowed at some step).
        """
        if guidance:
            raise NotImplementedError("guidance is not supported by the diffusion model yet")
        if fixed is not None:
            raise NotImplementedError("infilling (fixed=) is not supported by the diffusion model yet")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        conditions = dict(conditions or {})
        unknown = set(conditions) - {"composition", "n_atoms"}
        if unknown:
            raise ValueError(f"unknown conditions {sorted(unknown)}; this model accepts 'composition', 'n_atoms'")
        key_n, key_s = jax.random.split(key)
        compositions = self._compositions(conditions, n, key_n)
        # group cells by atom count; each group is sampled in fixed-shape batches
        groups: dict[int, list[int]] = {}
        for i, comp in enumerate(compositions):
            groups.setdefault(len(comp), []).append(i)
        out: list[Crystal | None] = [None] * n
        overflow = 0
        t0 = time.perf_counter()
        bar = _SampleProgress(n, steps, enabled=progress)
        csp = "composition" in conditions
        per = 2 if method == "pc" else 1
        t_grid, s_grid, corr, active = time_grid(steps, min(CHUNK, per * steps), method)
        run = self._runner(method, step_lr)
        done = 0
        for n_atoms, members in sorted(groups.items()):
            for start in range(0, len(members), batch_size):
                idx = members[start:start + batch_size]
                b = min(batch_size, bucket_size(len(idx), minimum=4))
                key_s, k_prior, k_steps = jax.random.split(key_s, 3)
                atom_mask = jnp.ones((b, n_atoms), bool)
                species = None
                if csp:
                    onehot = np.zeros((b, n_atoms, self.config.n_species), np.float32)
                    for row, i in enumerate(idx):
                        onehot[row, np.arange(n_atoms), [self._index(z) for z in compositions[i]]] = 1.0
                    species = jnp.asarray(onehot)
                state = prior(k_prior, self.config, b, n_atoms, species)
                keys = jax.random.split(k_steps, t_grid.size).reshape(*t_grid.shape, -1)
                for c in range(t_grid.shape[0]):
                    state = run(self.params, state, t_grid[c], s_grid[c], corr[c], active[c], keys[c], atom_mask,
                                jnp.asarray(csp))
                    jax.block_until_ready(state.frac)
                    bar.update(done, len(idx), int(jnp.sum(active[:c + 1])) / per)
                done += len(idx)
                crystals, n_over = self._to_crystals(state, len(idx), compositions, idx, csp)
                overflow += n_over
                for i, crystal in zip(idx, crystals):
                    out[i] = crystal
        bar.close()
        seconds = time.perf_counter() - t0
        if stats is not None:
            stats.update(seconds=seconds, structures_per_s=n / max(seconds, 1e-9), overflow=overflow)
        return [c for c in out if c is not None]

    def _runner(self, method: str, step_lr: float) -> Callable:
        key = (method, float(step_lr))
        if key not in self._runners:
            self._runners[key] = make_chunk_runner(self.config, method, step_lr)
        return self._runners[key]

    def _index(self, z: int) -> int:
        try:
            return self.config.elements.index(int(z))
        except ValueError:
            raise ValueError(f"element Z={z} is not in this model's vocabulary "
                             f"(it was trained on Z in {list(self.config.elements)})") from None

    def _compositions(self, conditions: Mapping[str, Any], n: int, key: jax.Array) -> list[tuple[int, ...]]:
        """Per-structure atomic numbers (structure prediction) or placeholder tuples of the right length."""
        if "composition" in conditions:
            comp = conditions["composition"]
            comps = [comp] * n if len(comp) and np.ndim(comp[0]) == 0 else list(comp)
            if len(comps) != n:
                raise ValueError(f"got {len(comps)} compositions for n={n} structures")
            out = []
            for c in comps:
                numbers = tuple(int(z) for z in c)
                if not numbers:
                    raise ValueError("a composition must contain at least one atom")
                for z in numbers:
                    self._index(z)
                out.append(numbers)
            return out
        if "n_atoms" in conditions:
            k = int(conditions["n_atoms"])
            if k < 1:
                raise ValueError(f"n_atoms must be >= 1, got {k}")
            return [(0,) * k] * n
        sizes = np.array([a for a, _ in self.config.n_atoms_counts])
        weights = np.array([c for _, c in self.config.n_atoms_counts], np.float64)
        seed = int(jax.random.randint(key, (), 0, 2 ** 31 - 1))
        draws = np.random.default_rng(seed).choice(sizes, size=n, p=weights / weights.sum())
        return [(0,) * int(k) for k in draws]

    def _to_crystals(self, state: SamplerState, n_real: int, compositions, idx, csp: bool
                     ) -> tuple[list[Crystal], int]:
        lattices = np.asarray(self.config.lattice.decode(state.z), np.float64)
        frac = np.asarray(state.frac, np.float64) % 1.0
        elements = np.asarray(self.config.elements)
        species = elements[np.asarray(jnp.argmax(state.species, axis=-1))]
        overflow = np.asarray(state.overflow)
        out = []
        for row in range(n_real):
            numbers = np.asarray(compositions[idx[row]]) if csp else species[row]
            out.append(Crystal(lattices[row], frac[row], numbers))
        return out, int(overflow[:n_real].sum())


class _SampleProgress:
    """Rich progress bar over structures, showing structures/s."""

    def __init__(self, n: int, steps: int, enabled: bool) -> None:
        self.enabled = enabled and n > 0
        self.steps = steps
        self.t0 = time.perf_counter()
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]sample"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[rate]}"), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("sample", total=n, rate="")

    def update(self, done_before: int, batch: int, steps_done: int) -> None:
        if not self.enabled:
            return
        completed = done_before + batch * steps_done / self.steps
        rate = completed / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, completed=completed, rate=f"{rate:.2f} structures/s")

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
            self.enabled = False
