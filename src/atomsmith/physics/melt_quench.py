"""Amorphous silicon by melt-quench with Stillinger-Weber: start, melt, quench, anneal, relax.

Protocol (all at a fixed cubic cell of the chosen density, NVT with the Langevin thermostat of
:mod:`atomsmith.physics.md`):

1. start: random positions with no pair closer than ``min_start_distance`` (random sequential addition), or
   diamond-cubic silicon (when ``n_atoms = 8 k^3``) with small random displacements;
2. melt: ``melt_ps`` at ``t_melt`` K (velocities drawn at ``t_melt``);
3. quench in three parts: linear cooling from ``t_melt`` to ``t_hold`` at ``hot_quench_rate`` K/s (the liquid
   equilibrates within picoseconds up there, so this rate hardly matters), a hold of ``hold_ps`` at ``t_hold``, and
   linear cooling from ``t_hold`` to ``t_final`` at ``quench_rate`` K/s. The hold sits near SW silicon's
   liquid-liquid transition (~1060 K at zero pressure, Sastry & Angell, Nat. Mater. 2, 739 (2003)), where a fast
   quench freezes the dense, over-coordinated liquid. In the 64-atom comparison of ``experiments/a_si_data`` the
   default (10 ps hold, mean rate 2.1e14 K/s) gave about the coordination and energy of a linear 1e14 K/s quench
   with fewer MD steps, but not clearly better than a linear quench at its own mean rate; slower is what helps.
   ``hold_ps = 0`` with equal rates is a plain linear quench;
   Optional plateaus (``anneals``: ``(T, ps)`` pairs, ``t_hold >= T >= t_final``, descending) interrupt the last
   ramp: cooling stops at each ``T`` for its duration and then goes on at ``quench_rate``; e.g. an anneal of the
   amorphous solid at 0.6-0.8 of the melting temperature during a slow (1e11-1e12 K/s) quench;
4. anneal: ``anneal_ps`` at ``t_final`` K;
5. relax: FIRE on the positions down to ``fmax``, at fixed cell (the ``density`` target) or, with ``relax_cell``,
   with the cell too, to the external pressure ``pressure_gpa`` (zero-pressure density of the potential).

The potential is ``params``: the original SW set or the a-Si refit of Vink et al. (2001)
(:data:`~atomsmith.physics.stillinger_weber.PARAMETER_SETS`).

Everything random comes from ``seed`` and the cell index, so a cell is reproducible on its own. Long (slow-quench)
runs can write a checkpoint of the MD state every few minutes and resume from it after an interruption; the resumed
cell is the same as an uninterrupted one (the whole state, Verlet list and PRNG key included, is restored).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.core.files import atomic_write
from atomsmith.physics import md, relax
from atomsmith.physics.stillinger_weber import PARAMETER_SETS, SILICON, VINK, SWModel, SWParams, sw_energy_forces_stress
from atomsmith.physics.verlet import build as build_list
from atomsmith.structures.crystal import Crystal

AVOGADRO = 6.02214076e23
EV_PER_A3_IN_GPA = 160.21766208
_CHUNK = 500  # MD steps per compiled call (one compilation per cell size and stage length)


@dataclasses.dataclass(frozen=True)
class MeltQuenchConfig:
    """One melt-quench protocol. Temperatures in K, times in ps, rate in K/s, density in g/cm^3, lengths in Å.

    Attributes:
      n_atoms: atoms per cell (cubic cell).
      density: mass density, fixed throughout (2.29 g/cm^3: experimental a-Si, ~1.8% below c-Si).
      start: ``"random"`` or ``"diamond"``.
      min_start_distance: closest pair allowed in a random start.
      t_melt, melt_ps: melt temperature and duration.
      hot_quench_rate: cooling rate from ``t_melt`` to ``t_hold``, K/s.
      t_hold, hold_ps: hold temperature and duration (``hold_ps = 0``: no hold).
      quench_rate: cooling rate from ``t_hold`` to ``t_final``, K/s.
      t_final: temperature at the end of the quench and during the anneal.
      anneal_ps: anneal duration at ``t_final``.
      dt: MD time step, fs.  friction: Langevin friction, 1/fs.
      fmax: FIRE force threshold, eV/Å.  relax_steps: FIRE step limit.
      max_degree: three-body table width (neighbours within rc per atom).  max_neighbors: list capacity per atom.
      params: SW parameters.
      anneals: plateaus ``((T K, duration ps), ...)`` inside the ramp from ``t_hold`` to ``t_final`` (descending
        T, each in ``[t_final, t_hold]``); ``()``: a plain ramp.
      relax_cell: the final FIRE relaxation also relaxes the cell (symmetric strain) to ``pressure_gpa``.
      pressure_gpa: external pressure for ``relax_cell``, GPa.
    """

    n_atoms: int = 512
    density: float = 2.29
    start: str = "random"
    min_start_distance: float = 2.0
    t_melt: float = 3500.0
    melt_ps: float = 3.0
    hot_quench_rate: float = 1e15
    t_hold: float = 1100.0
    hold_ps: float = 10.0
    quench_rate: float = 3e14
    t_final: float = 300.0
    anneal_ps: float = 1.0
    dt: float = 2.0
    friction: float = 0.01
    fmax: float = 1e-3
    relax_steps: int = 5000
    max_degree: int = 24
    max_neighbors: int = 40
    params: SWParams = SILICON
    anneals: tuple[tuple[float, float], ...] = ()
    relax_cell: bool = False
    pressure_gpa: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "anneals", tuple((float(t), float(ps)) for t, ps in self.anneals))
        problems = []
        if self.n_atoms < 2:
            problems.append(f"n_atoms must be >= 2, got {self.n_atoms}")
        if self.start not in ("random", "diamond"):
            problems.append(f"start must be 'random' or 'diamond', got {self.start!r}")
        if self.start == "diamond" and round((self.n_atoms / 8) ** (1 / 3)) ** 3 * 8 != self.n_atoms:
            problems.append(f"a diamond start needs n_atoms = 8 k^3, got {self.n_atoms}")
        if not 0.5 < self.density < 5.0:
            problems.append(f"density {self.density} g/cm^3 is not plausible for silicon")
        if not self.t_melt >= self.t_hold >= self.t_final > 0:
            problems.append(f"need t_melt >= t_hold >= t_final > 0, got {self.t_melt}, {self.t_hold}, {self.t_final}")
        if min(self.quench_rate, self.hot_quench_rate, self.dt) <= 0 or min(self.melt_ps, self.hold_ps,
                                                                              self.anneal_ps) < 0:
            problems.append("quench rates and dt must be > 0, melt_ps, hold_ps and anneal_ps >= 0")
        temps = [t for t, _ in self.anneals]
        if any(not self.t_hold >= t >= self.t_final for t in temps) or temps != sorted(temps, reverse=True) \
                or any(ps < 0 for _, ps in self.anneals):
            problems.append(f"anneals must be (T, ps) with t_hold >= T >= t_final ({self.t_hold} >= T >= "
                            f"{self.t_final}), T descending and ps >= 0; got {list(self.anneals)}")
        if self.pressure_gpa != 0.0 and not self.relax_cell:
            problems.append("pressure_gpa needs relax_cell")
        if problems:
            raise ValueError("invalid melt-quench config: " + "; ".join(problems))

    @property
    def quench_ps(self) -> float:
        """Time from the end of the melt to ``t_final`` (both ramps, the hold and the plateaus), ps."""
        return ((self.t_melt - self.t_hold) / self.hot_quench_rate + (self.t_hold - self.t_final) / self.quench_rate
                ) * 1e12 + self.hold_ps + sum(ps for _, ps in self.anneals)

    @property
    def total_ps(self) -> float:
        """Simulated time of the whole MD schedule, ps."""
        return self.melt_ps + self.quench_ps + self.anneal_ps

    @property
    def potential(self) -> str:
        """Name of ``params`` in :data:`PARAMETER_SETS`, or ``"custom"``."""
        return next((name for name, p in PARAMETER_SETS.items() if p == self.params), "custom")

    @property
    def mean_quench_rate(self) -> float:
        """``(t_melt - t_final) / quench time``, K/s."""
        return (self.t_melt - self.t_final) / (self.quench_ps * 1e-12)

    @property
    def box_length(self) -> float:
        """Edge of the cubic cell, Å."""
        mass_g = self.n_atoms * md.MASS_SI / AVOGADRO
        return (mass_g / self.density * 1e24) ** (1.0 / 3.0)

    def stage_ps(self) -> dict[str, float]:
        """Duration of each stage, ps (``quench`` is the whole last ramp; ``anneal_mid``, the plateaus together, is
        present only with ``anneals``)."""
        out = {"melt": self.melt_ps, "quench_hot": (self.t_melt - self.t_hold) / self.hot_quench_rate * 1e12,
               "hold": self.hold_ps, "quench": (self.t_hold - self.t_final) / self.quench_rate * 1e12}
        if self.anneals:
            out["anneal_mid"] = sum(ps for _, ps in self.anneals)
        out["anneal"] = self.anneal_ps
        return out

    def steps(self) -> dict[str, int]:
        """MD steps per stage (the keys of :meth:`stage_ps`)."""
        counts: dict[str, int] = {}
        for name, _, _, n in self.segments():
            stage = _stage_of(name)
            counts[stage] = counts.get(stage, 0) + n
        return {name: counts.get(name, 0) for name in self.stage_ps()}

    @property
    def n_steps(self) -> int:
        """MD steps of the whole schedule."""
        return sum(n for *_, n in self.segments())

    def segments(self) -> list[tuple[str, float, float, int]]:
        """The schedule in time order: ``(name, T at start K, T at end K, MD steps)``; ramps are linear. Names:
        ``melt``, ``quench_hot``, ``hold``, ``quench_1``, ``anneal_1``, ``quench_2``, ... (one ``quench_k`` per
        piece of the last ramp, one ``anneal_k`` per plateau), ``anneal``."""
        def n(ps: float) -> int:
            return int(round(ps * 1000.0 / self.dt))

        def ramp_ps(t_from: float, t_to: float) -> float:
            return (t_from - t_to) / self.quench_rate * 1e12

        segs = [("melt", self.t_melt, self.t_melt, n(self.melt_ps)),
                ("quench_hot", self.t_melt, self.t_hold, n((self.t_melt - self.t_hold) / self.hot_quench_rate * 1e12)),
                ("hold", self.t_hold, self.t_hold, n(self.hold_ps))]
        if not self.anneals:  # one piece, rounded as a whole (the step counts of earlier protocols)
            segs.append(("quench_1", self.t_hold, self.t_final, n(ramp_ps(self.t_hold, self.t_final))))
        else:
            t = self.t_hold
            for k, (temp, ps) in enumerate(self.anneals, 1):
                segs += [(f"quench_{k}", t, temp, n(ramp_ps(t, temp))), (f"anneal_{k}", temp, temp, n(ps))]
                t = temp
            segs.append((f"quench_{len(self.anneals) + 1}", t, self.t_final, n(ramp_ps(t, self.t_final))))
        segs.append(("anneal", self.t_final, self.t_final, n(self.anneal_ps)))
        return segs

    def describe(self) -> str:
        ps = self.stage_ps()
        pot = self.potential if self.potential != "custom" else f"custom: {self.params}"
        plateaus = "".join(f", {p:g} ps at {t:g} K" for t, p in self.anneals)
        relax_text = (f"FIRE to fmax {self.fmax} eV/A with the cell relaxed to {self.pressure_gpa} GPa"
                      if self.relax_cell else f"FIRE to fmax {self.fmax} eV/A (fixed cell)")
        return (f"SW Si ({pot} parameters), {self.n_atoms} atoms, {self.density} g/cm^3 fixed cubic cell, "
                f"{self.start} start; "
                f"Langevin NVT dt={self.dt} fs friction={self.friction}/fs; melt {self.melt_ps} ps at {self.t_melt} K; "
                f"cool to {self.t_hold} K at {self.hot_quench_rate:.3g} K/s ({ps['quench_hot']:.3g} ps); "
                f"hold {self.hold_ps} ps at {self.t_hold} K; cool to {self.t_final} K at {self.quench_rate:.3g} K/s "
                f"({ps['quench']:.3g} ps{plateaus}; mean rate {self.t_melt:.0f}->{self.t_final:.0f} K "
                f"{self.mean_quench_rate:.3g} K/s); anneal {self.anneal_ps} ps at {self.t_final} K; "
                f"{relax_text}")


#: Named protocols (``atomsmith data make-asi --preset NAME``); :func:`preset` sets ``n_atoms`` and any other field.
#: ``sw-fast``: the :class:`MeltQuenchConfig` defaults (original SW at 2.29 g/cm^3, mean rate 2e14 K/s; the first
#: shipped set, over-coordinated and liquid-like, kept to reproduce it). ``vink-1e12``: the a-Si of issue 15 and the
#: shipped set since (``experiments/a_si_data/README.md``): Vink et al.'s a-Si refit, 2.25 g/cm^3 (the lower end of
#: experiment, next to this potential's zero-pressure density), melt 5 ps at 3000 K, 1e14 K/s to 2000 K (where the
#: Vink liquid still diffuses), 1e12 K/s to 300 K with a 100 ps plateau at 1500 K (just below its arrest), 10 ps at
#: 300 K (912 500 MD steps per cell).
PRESETS: dict[str, MeltQuenchConfig] = {
    "sw-fast": MeltQuenchConfig(),
    "vink-1e12": MeltQuenchConfig(density=2.25, t_melt=3000.0, melt_ps=5.0, hot_quench_rate=1e14, t_hold=2000.0,
                                  hold_ps=0.0, quench_rate=1e12, anneals=((1500.0, 100.0),), anneal_ps=10.0,
                                  params=VINK),
}


def preset(name: str, **changes) -> MeltQuenchConfig:
    """The protocol :data:`PRESETS` ``[name]`` with ``changes`` (e.g. ``n_atoms=216``) applied; ``ValueError`` for an
    unknown name or an invalid result."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown melt-quench preset {name!r}; known: {', '.join(PRESETS)}") from None
    return dataclasses.replace(base, **changes)


def random_start(rng: np.random.Generator, n_atoms: int, box: float, min_distance: float,
                 max_tries: int = 10000) -> np.ndarray:
    """``[n, 3]`` Cartesian positions in a cubic box of edge ``box`` Å, no periodic pair closer than
    ``min_distance`` Å (random sequential addition). Raises ``RuntimeError`` if the box is too full."""
    positions = np.zeros((0, 3))
    for i in range(n_atoms):
        for _ in range(max_tries):
            trial = rng.uniform(0.0, box, 3)
            d = positions - trial
            d -= box * np.round(d / box)
            if not len(d) or np.min(np.sum(d * d, axis=1)) >= min_distance ** 2:
                positions = np.vstack([positions, trial])
                break
        else:
            raise RuntimeError(f"could not place atom {i} of {n_atoms} at {min_distance} Å spacing in a "
                               f"{box:.2f} Å box; lower min_start_distance or the density")
    return positions


def diamond_start(rng: np.random.Generator, n_atoms: int, box: float, jitter: float = 0.05) -> np.ndarray:
    """Diamond-cubic positions ``[n, 3]`` filling a cubic box of edge ``box`` Å, with Gaussian jitter (Å)."""
    k = round((n_atoms / 8) ** (1 / 3))
    basis = np.array([[0, 0, 0], [0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1], [1, 3, 3], [3, 1, 3], [3, 3, 1]]) / 4
    cells = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3)
    frac = (cells[:, None, :] + basis[None]).reshape(-1, 3) / k
    return frac * box + rng.normal(0.0, jitter, frac.shape)


def _stage_of(segment: str) -> str:
    """The :meth:`MeltQuenchConfig.steps` stage of a segment: ``quench_k`` -> ``quench``, ``anneal_k`` ->
    ``anneal_mid``, others unchanged."""
    head, _, tail = segment.rpartition("_")
    if tail.isdigit():
        return {"quench": "quench", "anneal": "anneal_mid"}[head]
    return segment


def _schedule(config: MeltQuenchConfig) -> np.ndarray:
    """Target temperature (K) of every MD step, ``[total steps]`` float32 (ramps end exactly on their target)."""
    return np.concatenate([np.linspace(t_from, t_to, n + 1)[1:] if t_from != t_to else np.full(n, t_from)
                           for _, t_from, t_to, n in config.segments()]).astype(np.float32)


def _run_identity(config: MeltQuenchConfig, seed: int, index: int) -> str:
    text = json.dumps([dataclasses.asdict(config), int(seed), int(index)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _save_checkpoint(path: Path, identity: str, state: md.MDState, chunks_done: int, temps: list[np.ndarray],
                     seconds: float) -> None:
    """The MD state after ``chunks_done`` chunks, written atomically (:func:`atomsmith.core.files.atomic_write`)."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]
    with atomic_write(path, mode="wb", overwrite=True) as handle:
        np.savez(handle, *leaves, identity=np.asarray(identity), chunks_done=np.asarray(chunks_done),
                 temps=np.concatenate(temps) if temps else np.zeros(0, np.float32), seconds=np.asarray(seconds))


def _load_checkpoint(path: Path, identity: str, template: md.MDState):
    """``(state, chunks_done, temps, seconds)`` from ``path`` if it belongs to this run (and is readable), else
    None."""
    import zipfile

    leaves, treedef = jax.tree_util.tree_flatten(template)
    try:
        with np.load(path) as data:
            if str(data["identity"]) != identity:
                return None
            saved = [data[f"arr_{i}"] for i in range(len(leaves))]
            extra = int(data["chunks_done"]), [np.asarray(data["temps"])], float(data["seconds"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if any(a.shape != np.shape(b) or a.dtype != np.asarray(b).dtype for a, b in zip(saved, leaves)):
        return None
    return (jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in saved]), *extra)


def melt_quench(config: MeltQuenchConfig, seed: int, index: int = 0,
                progress: Callable[[str], None] | None = None, checkpoint: str | Path | None = None,
                checkpoint_every_s: float = 300.0) -> Crystal:
    """Make one amorphous cell. Returns a :class:`Crystal` (wrapped into the cell) whose ``properties`` hold the
    SW ``energy`` (eV), ``energy_per_atom``, ``stress`` (eV/Å^3), ``pressure_gpa``, ``max_force`` (eV/Å), the
    protocol text, seed and index, the mean kinetic temperature of each stage (``t_anneal_mid_mean`` over the
    plateaus, with ``anneals``), ``md_steps`` and ``md_seconds`` (wall time of the MD, compilation included) and
    ``seconds`` (everything). With ``relax_cell`` the returned cell is the relaxed one.

    With ``checkpoint`` (a file path), the MD state is saved there every ``checkpoint_every_s`` seconds of wall time
    (at the end of a 500-step chunk); a later call with the same arguments resumes from it (a checkpoint of another
    protocol, seed or index is ignored and overwritten). The file is removed when the cell is finished.

    Raises ``RuntimeError`` if a neighbour capacity overflowed (increase ``max_degree``/``max_neighbors``).
    """
    t0 = time.time()
    rng = np.random.default_rng([seed, index, config.n_atoms])
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), index), config.n_atoms)
    box = config.box_length
    lattice = np.eye(3) * box
    start = random_start(rng, config.n_atoms, box, config.min_start_distance) if config.start == "random" \
        else diamond_start(rng, config.n_atoms, box)
    model = SWModel(config.params, config.max_degree)
    md_config = md.MDConfig(dt=config.dt, friction=config.friction, model=model)
    spec = md.md_spec(lattice, config.n_atoms, md_config, config.max_neighbors)
    lat = jnp.asarray(lattice, jnp.float32)
    state = md.init_state(jnp.asarray(start, jnp.float32), lat, key, jnp.float32(config.t_melt), spec, md_config)
    schedule = _schedule(config)
    n_chunks = math.ceil(len(schedule) / _CHUNK)
    temps, first_chunk, earlier_s = [], 0, 0.0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    identity = _run_identity(config, seed, index)
    if checkpoint is not None and checkpoint.exists():
        restored = _load_checkpoint(checkpoint, identity, state)
        if restored is not None:
            state, first_chunk, temps, earlier_s = restored
            if progress is not None:
                progress(f"cell {index}: resumed from {checkpoint} at step {min(first_chunk * _CHUNK, len(schedule))}")
        elif progress is not None:
            progress(f"cell {index}: ignoring {checkpoint} (another run's checkpoint)")
    t0 -= earlier_s
    last_save = time.time()
    report_every = max(10, n_chunks // 50)
    for c in range(first_chunk, n_chunks):  # full chunks share one compilation; the last, shorter one gets its own
        chunk = schedule[c * _CHUNK:(c + 1) * _CHUNK]
        state, log = md.run(state, jnp.asarray(chunk), lat, spec, md_config)
        temps.append(np.asarray(log.temperature))
        if checkpoint is not None and c < n_chunks - 1 and time.time() - last_save >= checkpoint_every_s:
            _save_checkpoint(checkpoint, identity, state, c + 1, temps, time.time() - t0)
            last_save = time.time()
            if progress is not None:
                progress(f"cell {index}: checkpoint at step {(c + 1) * _CHUNK} -> {checkpoint}")
        if progress is not None and (c % report_every == report_every - 1 or c == n_chunks - 1):
            progress(f"cell {index}: {c * _CHUNK + len(chunk)}/{len(schedule)} steps, "
                     f"T={float(np.mean(temps[-1])):.0f} K, E={float(state.energy) / config.n_atoms:.4f} eV/atom, "
                     f"{time.time() - t0:.0f} s")
    if bool(state.overflow):
        raise RuntimeError(f"neighbour capacity overflowed in MD of cell {index}; increase max_degree "
                           f"({config.max_degree}) or max_neighbors ({config.max_neighbors})")
    temps = np.concatenate(temps)
    md_seconds = time.time() - t0
    fire_config = relax.FireConfig(fmax=config.fmax, max_steps=config.relax_steps, model=model,
                                   relax_cell=config.relax_cell, pressure=config.pressure_gpa / EV_PER_A3_IN_GPA)
    result = relax.fire_relax(state.positions, lat, relax.relax_spec(lattice, config.n_atoms, fire_config,
                                                                      config.max_neighbors), fire_config)
    if bool(result.overflow):
        raise RuntimeError(f"neighbour capacity overflowed in the relaxation of cell {index}")
    final_lattice = np.asarray(result.lattice, np.float64) if config.relax_cell else lattice
    crystal = Crystal.from_cartesian(final_lattice, np.asarray(result.positions, np.float64),
                                     np.full(config.n_atoms, 14)).wrapped()
    final = _final_energy(crystal, model)
    stage_t = _stage_temperatures(config, temps)
    props = {
        "energy": final["energy"], "energy_per_atom": final["energy"] / config.n_atoms, "stress": final["stress"],
        "pressure_gpa": -float(np.trace(final["stress"])) / 3.0 * EV_PER_A3_IN_GPA,
        "max_force": float(np.max(np.linalg.norm(final["forces"], axis=1))),
        "relax_steps": int(result.n_steps), "relax_converged": bool(result.converged),
        "md_list_builds": int(state.vlist.n_builds),
        "t_melt_mean": stage_t["melt"], "t_hold_mean": stage_t["hold"], "t_anneal_mean": stage_t["anneal"],
        "seed": int(seed), "index": int(index), "protocol": config.describe(), "md_steps": int(len(schedule)),
        "md_seconds": md_seconds, "seconds": time.time() - t0,
    }
    if config.anneals:
        props["t_anneal_mid_mean"] = stage_t["anneal_mid"]
    if checkpoint is not None and checkpoint.exists():
        checkpoint.unlink()
    return crystal.with_properties(**props)


def _stage_temperatures(config: MeltQuenchConfig, temps: np.ndarray) -> dict[str, float]:
    """Mean kinetic temperature (K) of each stage of :meth:`MeltQuenchConfig.steps` from the per-step log (NaN for
    an empty stage)."""
    sums: dict[str, list[float]] = {}
    start = 0
    for name, _, _, n in config.segments():
        stage = _stage_of(name)
        acc = sums.setdefault(stage, [0.0, 0])
        acc[0] += float(np.sum(temps[start:start + n]))
        acc[1] += n
        start += n
    return {name: total / count if count else float("nan") for name, (total, count) in sums.items()}


_sw_jit = jax.jit(sw_energy_forces_stress, static_argnums=(3, 4))


def _final_energy(crystal: Crystal, model: SWModel) -> dict:
    """Final evaluation (float32, same model): energy (eV), forces (eV/Å), stress (eV/Å^3)."""
    pos = jnp.asarray(crystal.positions, jnp.float32)
    lat = jnp.asarray(crystal.lattice, jnp.float32)
    cfg = md.MDConfig(model=model)
    vlist = build_list(pos, lat, md.md_spec(crystal.lattice, crystal.n_atoms, cfg))
    out = _sw_jit(pos, lat, vlist.neighbors, model.params, model.max_degree)
    return {"energy": float(out.energy), "forces": np.asarray(out.forces, np.float64),
            "stress": np.asarray(out.stress, np.float64)}
