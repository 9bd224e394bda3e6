"""The diffusion model object: config + parameters, ``sample`` (the :class:`Generator` protocol), save/load."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith import parallel
from atomsmith.generators.diffusion.conditioning import Guide, Infill, PropertyCondition, guidance_spec, replace_held
from atomsmith.generators.diffusion.config import DiffusionConfig
from atomsmith.generators.diffusion.samplers import SamplerState, make_chunk_runner, prior, time_grid
from atomsmith.generators.diffusion.species import species_process
from atomsmith.generators.diffusion.options import DEFAULT_BATCH, DEFAULT_STEPS, DiffusionOptions  # noqa: F401
from atomsmith.generators.protocol import Capabilities, FixedAtoms, GeneratorBase, InvalidRequestError
from atomsmith.guidance.base import WeightedSum, objective_cutoff
from atomsmith.graphs.batching import bucket_size
from atomsmith.structures.crystal import Crystal
from atomsmith.training import checkpoint as ckpt

CHECKPOINT_KIND = "diffusion"
#: sub-steps (network evaluations) per ``lax.scan`` chunk between progress-bar updates.
CHUNK = 20
#: Langevin corrector step size when the model records none (DiffCSP's default; its recommended values are
#: dataset- and task-specific, e.g. perov_5: 1e-6 for generation, 5e-7 for structure prediction).
STEP_LR = 1e-5


class DiffusionModel(GeneratorBase):
    """A trained crystal diffusion model. Implements :class:`atomsmith.generators.Generator`: ``sample(key, n, *,
    conditions=None, guidance=None, fixed=None, options=None, **settings)``, see :meth:`_sample` for the requests
    and :class:`~atomsmith.generators.diffusion.options.DiffusionOptions` for the settings."""

    #: checkpoint kind (training states of the shared loop are ``"train-state:diffusion"``).
    kind: ClassVar[str] = CHECKPOINT_KIND
    capabilities: ClassVar[Capabilities] = Capabilities(
        composition=True, lattice=True, properties=True, guidance=True, fixed_atoms=True,
        about="generates periodic crystals")
    options_type: ClassVar[type] = DiffusionOptions

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
    def _sample(self, key: jax.Array, n: int, conditions: Mapping[str, Any] | None, guidance: Any,
                fixed: FixedAtoms | Sequence[FixedAtoms] | None, options: DiffusionOptions) -> list[Crystal]:
        """Draw ``n`` crystals (:meth:`sample`, the :class:`~atomsmith.generators.protocol.Generator` verb; sampler
        settings in :class:`~atomsmith.generators.diffusion.options.DiffusionOptions`, or as keywords naming its
        fields).

        Args:
          key: PRNG key; results are reproducible for the same key, ``n``, ``steps``, ``method`` and batch size.
          conditions: ``{"composition": Z}`` for structure prediction: ``Z`` is one sequence of atomic numbers
            (used for all ``n``) or a list of ``n`` of them. ``{"n_atoms": k}`` fixes the number of atoms.
            Otherwise the number of atoms is drawn from the training distribution. ``{"lattice": L}`` holds the
            cell (``[3, 3]`` rows in Å for all, or ``[n, 3, 3]``; amorphous mode: fixed cell and composition).
            Property-conditioned models (``config.properties``) also take ``{"heat_ref": 0.5}`` (a value for all, or
            one per structure; NaN = not given): classifier-free guidance with factor ``cfg_scale`` (1 = the
            conditional model alone; larger sharpens; scalar or one per structure).
          guidance: a shared guidance objective (or a sequence of them, summed), e.g.
            ``PropertyTarget(predictor, 0.5, scale=0.1)``; gradient guidance on the denoised estimate
            (:mod:`~atomsmith.generators.diffusion.conditioning`) with strength ``guidance_scale`` (scalar, or one
            value per structure) and per-part ``guidance_weights`` (coordinates, lattice, species). The objective's
            graph uses ``guidance_cutoff`` (default: the largest predictor cutoff found in the objective, else the
            model's cutoff). Each crystal's ``properties["guidance_objective"]`` is the objective at its last
            denoised estimate.
          fixed: infilling: one :class:`~atomsmith.generators.protocol.FixedAtoms` for all ``n`` structures or a
            list of ``n``; held atoms come first in each output (site property ``fixed`` = 1). Not combinable with
            ``conditions`` (other than property values).
          options: the sampler settings.
        """
        steps, method, step_lr, batch_size = options.steps, options.method, options.step_lr, options.batch_size
        guidance_scale, guidance_weights = options.guidance_scale, options.guidance_weights
        guidance_cutoff, resample, cfg_scale = options.guidance_cutoff, options.resample, options.cfg_scale
        progress, stats, devices = options.progress, options.stats, options.devices
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        conditions = dict(conditions or {})
        if step_lr is None:
            step_lr = self.default_step_lr(csp="composition" in conditions)
        unknown = set(conditions) - {"composition", "n_atoms", "lattice"} - set(self.config.properties)
        if unknown:
            props = ", ".join(map(repr, self.config.properties)) or "none (it was not trained with property inputs; " \
                "steer it with guidance= and a predictor instead)"
            raise ValueError(f"unknown conditions {sorted(unknown)}; this model accepts 'composition', 'n_atoms', "
                             f"'lattice' and the properties: {props}")
        prop_values = self._property_values(conditions, n)  # pops the property keys
        if fixed is not None and conditions:
            raise InvalidRequestError("infilling (fixed=) sets the atoms itself; do not also pass conditions")
        held_lattices = self._held_lattices(conditions.pop("lattice", None), n)
        guide = self._guide(guidance, guidance_scale, guidance_weights, guidance_cutoff, n)
        cfg_factor = _per_structure(cfg_scale, n, "cfg_scale")
        key_n, key_s = jax.random.split(key)
        fixed_list = self._fixed_list(fixed, n)
        if fixed_list is not None:
            compositions = [tuple(int(z) for z in f.crystal.numbers) + (f.free_species or (0,) * f.n_free)
                            for f in fixed_list]
            for f in fixed_list:
                for z in f.crystal.numbers:
                    self._index(z)
                for z in f.free_species or ():
                    self._index(z)
        else:
            compositions = self._compositions(conditions, n, key_n)
        # group cells by (atom count, species given); each group is sampled in fixed-shape batches
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, comp in enumerate(compositions):
            given = "composition" in conditions or (fixed_list is not None and fixed_list[i].free_species is not None)
            groups.setdefault((len(comp), given), []).append(i)
        out: list[Crystal | None] = [None] * n
        overflow = 0
        t0 = time.perf_counter()
        bar = _SampleProgress(n, steps * (resample + 1), enabled=progress)
        per = 2 if method == "pc" else 1
        grid = time_grid(steps, min(CHUNK, per * steps * (resample + 1)), method, resample)
        done = 0
        mesh = parallel.data_mesh(devices, local=True)
        params = self.params if mesh is None else parallel.replicate(self.params, mesh)
        for (n_atoms, csp), members in sorted(groups.items()):
            capacity = self._capacity(n_atoms)
            run = self._runner(method, step_lr, capacity)
            guide_spec = None if guide is None else guidance_spec(guide.spec.cutoff, self.config.encoder.cutoff,
                                                                   capacity, self.config.n_images)
            for start in range(0, len(members), batch_size):
                idx = members[start:start + batch_size]
                b = parallel.round_up(min(batch_size, bucket_size(len(idx), minimum=4)), mesh)
                key_s, k_prior, k_steps = jax.random.split(key_s, 3)
                atom_mask = jnp.ones((b, n_atoms), bool)
                species = None
                if csp:
                    onehot = np.zeros((b, n_atoms, self.config.n_species), np.float32)
                    for row, i in enumerate(idx):
                        onehot[row, np.arange(n_atoms), [self._index(z) for z in compositions[i]]] = 1.0
                    species = jnp.asarray(onehot)
                infill = self._infill(fixed_list, idx, b, n_atoms, held_lattices)
                state = prior(k_prior, self.config, b, n_atoms, species)
                if fixed_list is not None or held_lattices is not None:  # held parts start from their t = 1 draw
                    key_s, k_held = jax.random.split(key_s)
                    sched = self.config.schedules
                    frac, z, sp = replace_held(infill, state.frac, state.z, state.species, 1.0, sched,
                                               species_process(self.config), k_held)
                    state = state._replace(frac=frac, z=z, species=sp if not csp else state.species)
                guide_b = None if guide is None else guide.replace(scale=_rows(guide.scale, idx, b), spec=guide_spec)
                cond_b = None
                if prop_values is not None:
                    cond_b = PropertyCondition(*(_rows(jnp.asarray(x), idx, b) for x in prop_values),
                                               _rows(cfg_factor, idx, b))
                keys = jax.random.split(k_steps, grid.t.size).reshape(*grid.t.shape, -1)
                if mesh is not None:  # cells split over the devices; everything else replicated
                    state, atom_mask, infill = parallel.shard_leading((state, atom_mask, infill), mesh, "sampling")
                for c in range(grid.t.shape[0]):
                    state, values = run(params, state, grid.chunk(c), keys[c], atom_mask, jnp.asarray(csp),
                                        guide_b, infill, cond_b)
                    jax.block_until_ready(state.frac)
                    bar.update(done, len(idx), int(jnp.sum(grid.active[:c + 1])) / per)
                done += len(idx)
                crystals, n_over = self._to_crystals(state, len(idx), compositions, idx, csp, infill, fixed_list,
                                                     values if guide is not None else None, held_lattices)
                overflow += n_over
                for i, crystal in zip(idx, crystals):
                    out[i] = crystal
        bar.close()
        seconds = time.perf_counter() - t0
        if stats is not None:
            stats.update(seconds=seconds, structures_per_s=n / max(seconds, 1e-9), overflow=overflow)
        return [c for c in out if c is not None]

    def default_step_lr(self, csp: bool = False) -> float:
        """The corrector step size this model samples with: ``metadata["sampler"]["step_lr"]`` (and
        ``"step_lr_csp"`` for structure prediction) when its training recorded one (a sampler study), else
        :data:`STEP_LR`."""
        sampler = self.metadata.get("sampler", {})
        value = sampler.get("step_lr_csp") if csp else None
        return float(value if value is not None else sampler.get("step_lr", STEP_LR))

    def _guide(self, guidance: Any, scale: Any, weights: Sequence[float], cutoff: float | None, n: int
               ) -> Guide | None:
        if guidance is None or (isinstance(guidance, Sequence) and not guidance):
            return None
        terms = list(guidance) if isinstance(guidance, Sequence) else [guidance]
        for term in terms:
            if not callable(term):
                raise InvalidRequestError(f"guidance must be shared objectives (callables), got {type(term).__name__}")
        objective = terms[0] if len(terms) == 1 else WeightedSum.of(*((1.0, t) for t in terms))
        scale = _per_structure(scale, n, "guidance_scale")
        if len(tuple(weights)) != 3:
            raise InvalidRequestError("guidance_weights needs three numbers (coordinates, lattice, species)")
        rc = float(cutoff) if cutoff is not None else objective_cutoff(objective, self.config.encoder.cutoff)
        spec = guidance_spec(rc, self.config.encoder.cutoff, self.config.max_edges_per_cell, self.config.n_images)
        return Guide(objective=objective, scale=scale, weights=jnp.asarray(weights, jnp.float32),
                     elements=jnp.asarray(self.config.elements, jnp.int32), spec=spec)

    def _fixed_list(self, fixed: Any, n: int) -> list[FixedAtoms] | None:
        if fixed is None:
            return None
        items = [fixed] * n if isinstance(fixed, FixedAtoms) else list(fixed)
        if len(items) != n:
            raise InvalidRequestError(f"got {len(items)} FixedAtoms for n={n} structures")
        for f in items:
            if not isinstance(f, FixedAtoms):
                raise InvalidRequestError(f"fixed= takes FixedAtoms, got {type(f).__name__}")
        return items

    def _property_values(self, conditions: dict, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(standardised values [n,P], given mask [n,P])`` for classifier-free guidance, or None; pops the keys."""
        names = self.config.properties
        if not any(name in conditions for name in names):
            return None
        values = np.full((n, len(names)), np.nan, np.float64)
        for j, name in enumerate(names):
            if name in conditions:
                v = np.asarray(conditions.pop(name), np.float64)
                if v.ndim == 0:
                    v = np.full(n, float(v))
                if v.shape != (n,):
                    raise InvalidRequestError(f"condition {name!r} needs one value or {n} values, got {v.shape}")
                values[:, j] = v
        mask = np.isfinite(values)
        std = (values - np.asarray(self.config.property_mean)) / np.asarray(self.config.property_std)
        return np.where(mask, std, 0.0).astype(np.float32), mask.astype(np.float32)

    def _held_lattices(self, lattice: Any, n: int) -> np.ndarray | None:
        if lattice is None:
            return None
        lat = np.asarray(lattice, np.float64)
        if lat.shape == (3, 3):
            lat = np.broadcast_to(lat, (n, 3, 3))
        if lat.shape != (n, 3, 3):
            raise InvalidRequestError(f"the lattice condition must be [3, 3] or [{n}, 3, 3] (Å), got {lat.shape}")
        det = np.linalg.det(lat)
        if not np.all(np.isfinite(lat)) or np.any(det <= 1e-6):
            raise InvalidRequestError("the lattice condition needs right-handed, non-degenerate cells (det > 0)")
        return lat

    def _infill(self, fixed_list: list[FixedAtoms] | None, idx: Sequence[int], b: int, n_atoms: int,
                held_lattices: np.ndarray | None = None) -> Infill:
        k = self.config.n_species
        if held_lattices is not None:
            lattices = np.tile(held_lattices[idx[0]], (b, 1, 1)).astype(np.float32)
            lattices[:len(idx)] = held_lattices[list(idx)]
            z = self.config.lattice.encode(jnp.asarray(lattices))
            none = Infill.none(b, n_atoms, k)
            return none.replace(z=z, hold_lattice=jnp.ones((b,), bool))
        if fixed_list is None:
            return Infill.none(b, n_atoms, k)
        frac = np.zeros((b, n_atoms, 3), np.float32)
        species = np.zeros((b, n_atoms, k), np.float32)
        mask = np.zeros((b, n_atoms), bool)
        lattices = np.tile(np.eye(3, dtype=np.float32) * 4.0, (b, 1, 1))
        hold = np.zeros((b,), bool)
        for row, i in enumerate(idx):
            f = fixed_list[i]
            m = f.crystal.n_atoms
            frac[row, :m] = f.crystal.frac_coords % 1.0
            species[row, np.arange(m), [self._index(z) for z in f.crystal.numbers]] = 1.0
            mask[row, :m] = True
            lattices[row] = f.crystal.lattice
            hold[row] = f.hold_lattice
        z = self.config.lattice.encode(jnp.asarray(lattices))
        return Infill(jnp.asarray(frac), jnp.asarray(species), jnp.asarray(mask), z, jnp.asarray(hold))

    def _runner(self, method: str, step_lr: float, capacity: int | None = None) -> Callable:
        capacity = capacity or self.config.max_edges_per_cell
        key = (method, float(step_lr), int(capacity))
        if key not in self._runners:
            config = dataclasses.replace(self.config, max_edges_per_cell=int(capacity))
            self._runners[key] = make_chunk_runner(config, method, step_lr)
        return self._runners[key]

    def _capacity(self, n_atoms: int) -> int:
        """Neighbour-list capacity per cell: the trained one, scaled with the atom count for cells larger than any
        training cell (the capacity was measured on training cells; edges grow linearly with atoms at fixed
        density)."""
        largest = max(a for a, _ in self.config.n_atoms_counts)
        base = self.config.max_edges_per_cell
        return base if n_atoms <= largest else int(8 * np.ceil(base * n_atoms / largest / 8))

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

    def _to_crystals(self, state: SamplerState, n_real: int, compositions, idx, csp: bool, infill: Infill,
                     fixed_list: list[FixedAtoms] | None, values: jax.Array | None,
                     held_lattices: np.ndarray | None = None) -> tuple[list[Crystal], int]:
        lattices = np.asarray(self.config.lattice.decode(state.z), np.float64)
        held = np.asarray(infill.mask)
        frac = np.where(held[..., None], np.asarray(infill.frac, np.float64), np.asarray(state.frac, np.float64))
        frac = frac % 1.0
        elements = np.asarray(self.config.elements)
        species = elements[np.asarray(species_process(self.config).indices(state.species))]
        overflow = np.asarray(state.overflow)
        out = []
        for row in range(n_real):
            i = idx[row]
            if csp:
                numbers = np.asarray(compositions[i])
            elif fixed_list is not None:
                m = fixed_list[i].crystal.n_atoms
                numbers = np.concatenate([np.asarray(compositions[i][:m]), species[row, m:]])
            else:
                numbers = species[row]
            lattice = lattices[row]  # held cells are returned exactly as given (same parameters, the caller's frame)
            if held_lattices is not None:
                lattice = held_lattices[i]
            elif fixed_list is not None and fixed_list[i].hold_lattice:
                lattice = fixed_list[i].crystal.lattice
            props = {} if values is None else {"guidance_objective": float(values[row])}
            sites = {} if fixed_list is None else {"fixed": held[row].astype(int)}
            out.append(Crystal(lattice, frac[row], numbers, properties=props, site_properties=sites))
        return out, int(overflow[:n_real].sum())


def _per_structure(value: Any, n: int, name: str) -> jax.Array:
    """A scalar or ``[n]`` per-structure setting (guidance scale, CFG factor) as a float32 array."""
    value = np.asarray(value, np.float32)
    if value.ndim not in (0, 1) or (value.ndim == 1 and len(value) != n):
        raise InvalidRequestError(f"{name} must be a number or one value per structure ({n})")
    return jnp.asarray(value)


def _rows(scale: jax.Array, idx: Sequence[int], b: int) -> jax.Array:
    """Rows ``idx`` of a per-structure array for one batch (padding rows repeat the first); scalars pass through."""
    if scale.ndim == 0:
        return scale
    rows = np.asarray(list(idx) + [idx[0]] * (b - len(idx)))
    return scale[rows]


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
