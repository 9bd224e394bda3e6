"""The BaTiO3 response-tensor set (camml-lab/e3response), read straight from its tarball.

The tarball ``BTO_Pm-3m_5atoms_400K_3x3x3_ensemble.tar.gz`` holds, for structures ``NNNNN`` = 00000..00049:

* ``structures/qe/strcutre_NNNNN.scf`` (sic): Quantum ESPRESSO cell and Cartesian positions in Å, full precision;
* ``structures/cif/structure_NNNNN.cif``: the same structure with 5-decimal fractional coordinates;
* ``born_charges/NNNNN.npy`` ``[135, 3, 3]``, ``raman_tensors/NNNNN.npy`` ``[135, 3, 3, 3]`` (per atom),
  ``dielectric/NNNNN.npy`` ``[3, 3]``, ``nlo_susceptibilities/NNNNN.npy`` ``[3, 3, 3]`` (per structure).

The geometry comes from the QE input, the one the tensors were computed for: its cell is used as given, so
the Cartesian frame of the tensors and of the lattice agree. Each structure is checked against its CIF (same
species in the same order, positions within :data:`CIF_TOLERANCE` Å). Without a ``qe`` folder the CIF is used.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np

from atomsmith.datasets.packed import PackedCrystals
from atomsmith.structures import errors
from atomsmith.structures.crystal import Crystal, symbols_to_numbers

#: Largest allowed distance (Å) between a QE position and the CIF position of the same atom.
CIF_TOLERANCE = 2e-3
_SITE_TENSORS = {"born_charges": (3, 3), "raman_tensors": (3, 3, 3)}
_TENSORS = {"dielectric": ("dielectric", (3, 3)), "nlo_susceptibility": ("nlo_susceptibilities", (3, 3, 3))}
_INDEX = re.compile(r"(\d{5})\.(?:cif|scf|npy)$")


def parse_qe_input(text: str, source: str) -> Crystal:
    """Cell (``CELL_PARAMETERS angstrom``) and positions (``ATOMIC_POSITIONS angstrom``) of a QE input."""
    lines = [line.strip() for line in text.splitlines()]
    try:
        i = next(k for k, line in enumerate(lines) if line.upper().startswith("CELL_PARAMETERS"))
        j = next(k for k, line in enumerate(lines) if line.upper().startswith("ATOMIC_POSITIONS"))
    except StopIteration:
        raise errors.MalformedFileError(f"{source}: no CELL_PARAMETERS or ATOMIC_POSITIONS card") from None
    for card in (lines[i], lines[j]):
        if "angstrom" not in card.lower():
            raise errors.MalformedFileError(f"{source}: only angstrom units are supported, found {card!r}")
    try:
        lattice = np.array([[float(x) for x in lines[i + r].split()[:3]] for r in (1, 2, 3)])
        symbols, positions = [], []
        for line in lines[j + 1:]:
            if not line or line.startswith(("&", "K_POINTS", "CELL_", "ATOMIC_", "OCCUPATIONS")):
                break
            fields = line.split()
            symbols.append(re.sub(r"[^A-Za-z]", "", fields[0]))
            positions.append([float(x) for x in fields[1:4]])
    except (ValueError, IndexError) as exc:
        raise errors.MalformedFileError(f"{source}: unreadable card ({exc})") from exc
    try:
        return Crystal.from_cartesian(lattice, np.array(positions), symbols_to_numbers(symbols))
    except errors.StructureError as exc:
        raise type(exc)(f"{source}: {exc}") from exc


def _check_against_cif(qe: Crystal, cif: Crystal, source: str) -> None:
    if not np.array_equal(qe.numbers, cif.numbers):
        raise errors.MalformedFileError(f"{source}: the QE input and the CIF list different species or orders")
    g_qe, g_cif = qe.lattice @ qe.lattice.T, cif.lattice @ cif.lattice.T
    if not np.allclose(g_qe, g_cif, atol=1e-2):
        raise errors.MalformedFileError(f"{source}: the QE cell and the CIF cell differ")
    d = qe.frac_coords - cif.frac_coords
    d -= np.round(d)
    worst = float(np.max(np.linalg.norm(d @ qe.lattice, axis=1)))
    if worst > CIF_TOLERANCE:
        raise errors.MalformedFileError(
            f"{source}: QE and CIF positions differ by up to {worst:.2e} Å (> {CIF_TOLERANCE} Å)")


def _load_npy(tar: tarfile.TarFile, member: tarfile.TarInfo, shape: tuple[int, ...], source: str) -> np.ndarray:
    handle = tar.extractfile(member)
    if handle is None:
        raise errors.MalformedFileError(f"{source}: {member.name} is not a regular file")
    try:
        value = np.load(io.BytesIO(handle.read()), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise errors.MalformedFileError(f"{source}: {member.name}: unreadable .npy ({exc})") from exc
    if value.shape != shape:
        raise errors.ShapeError(f"{source}: {member.name} has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise errors.NonFiniteError(f"{source}: {member.name} holds non-finite values")
    return np.asarray(value, np.float64)


def read_bto_tarball(path: str | Path, limit: int | None = None) -> PackedCrystals:
    """Structures, Born charges, Raman, dielectric and NLO tensors of every structure in the tarball, by index.

    Each crystal carries ``material_id`` (``structure_NNNNN``), ``dielectric`` ``[3, 3]``,
    ``nlo_susceptibility`` ``[3, 3, 3]``, and site properties ``born_charges`` ``[n, 3, 3]`` and
    ``raman_tensors`` ``[n, 3, 3, 3]``. ``limit`` keeps the first structures by index.
    """
    from atomsmith.structures.io import parse_cif

    path = Path(path)
    source = str(path)
    with tarfile.open(path, "r:gz") as tar:
        members: dict[str, dict[str, tarfile.TarInfo]] = {}
        for member in tar.getmembers():
            match = _INDEX.search(member.name)
            if not member.isfile() or not match:
                continue
            parts = member.name.split("/")
            kind = "qe" if "/qe/" in member.name else "cif" if "/cif/" in member.name else parts[-2]
            members.setdefault(match.group(1), {})[kind] = member
        indices = sorted(k for k, v in members.items() if "cif" in v)
        if not indices:
            raise errors.MalformedFileError(f"{source}: no structures/cif/structure_NNNNN.cif inside")
        if limit is not None:
            indices = indices[:limit]
        crystals = []
        for index in indices:
            entry = members[index]
            where = f"{source}: structure {index}"
            missing = [k for k in (*_SITE_TENSORS, *(d for d, _ in _TENSORS.values())) if k not in entry]
            if missing:
                raise errors.MalformedFileError(f"{where}: missing {missing} in the tarball")
            cif_text = tar.extractfile(entry["cif"]).read().decode()
            crystal = parse_cif(cif_text, f"{source}:{entry['cif'].name}")
            if len(crystal) != 1:
                raise errors.MalformedFileError(f"{where}: the CIF holds {len(crystal)} structures")
            crystal = crystal[0]
            if "qe" in entry:
                qe = parse_qe_input(tar.extractfile(entry["qe"]).read().decode(), f"{source}:{entry['qe'].name}")
                _check_against_cif(qe, crystal, where)
                crystal = qe
            n = len(crystal)
            site = {k: _load_npy(tar, entry[k], (n, *shape), source) for k, shape in _SITE_TENSORS.items()}
            props = {name: _load_npy(tar, entry[folder], shape, source) for name, (folder, shape) in _TENSORS.items()}
            crystal = crystal.replace(properties={**props, "material_id": f"structure_{index}"}, site_properties=site)
            crystal.check_distances()
            crystals.append(crystal)
    return PackedCrystals.from_crystals(crystals)
