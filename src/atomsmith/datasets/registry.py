"""The registry of datasets: what each one is, where it lives, its published splits and the sha256 of its files.

Three kinds of location:

* ``package``: MIT-licensed CSVs shipped in ``atomsmith/datasets/files/<name>/`` (perov_5, carbon_24,
  carbon_24_unique);
* ``data_dir``: files the user supplies in a data directory (the GPL-3.0 BaTiO3 set, which must stay out of the
  package);
* ``download``: fetched from a public URL on first use and verified (mp_20).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from atomsmith.datasets.errors import SplitUnavailableError, UnknownDatasetError

Location = Literal["package", "data_dir", "download"]
Format = Literal["csv", "bto_tarball"]


@dataclasses.dataclass(frozen=True)
class SplitFile:
    """One file of a dataset split.

    Attributes:
      filename: name inside the dataset's folder (``train.csv.gz``).
      sha256: hex digest of the file as published (and as stored).
      n_structures: number of structures (CSV rows) in it.
      size_bytes: file size, where known (used in messages about manual downloads).
      urls: public URLs it can be downloaded from, tried in order (download datasets only).
    """

    filename: str
    sha256: str
    n_structures: int
    size_bytes: int | None = None
    urls: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Static description of one dataset.

    Attributes:
      name: registry key (``perov_5``).
      title: one-line description.
      location: ``package``, ``data_dir`` or ``download``.
      format: ``csv`` (CDVAE-style CSV with a ``cif`` column) or ``bto_tarball``.
      splits: split name -> :class:`SplitFile`, in canonical order.
      atoms_per_cell: human-readable range, e.g. ``"6-24"``.
      properties: per-structure property name -> description with units.
      site_properties: per-atom property name -> description with shape and units.
      property_columns: CSV column -> property name (CSV datasets).
      license: licence of the data as redistributed.
      source: where the files come from (repository, path, commit).
      citation: papers to cite.
      missing_splits: split name -> why it is not available (said when someone asks for it).
      notes: anything else a user must know.
    """

    name: str
    title: str
    location: Location
    format: Format
    splits: Mapping[str, SplitFile]
    atoms_per_cell: str
    properties: Mapping[str, str]
    license: str
    source: str
    citation: str
    site_properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    property_columns: Mapping[str, str] = dataclasses.field(default_factory=dict)
    missing_splits: Mapping[str, str] = dataclasses.field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        for field in ("splits", "properties", "site_properties", "property_columns", "missing_splits"):
            object.__setattr__(self, field, MappingProxyType(dict(getattr(self, field))))

    def split_file(self, split: str) -> SplitFile:
        """The :class:`SplitFile` of ``split``; raises :class:`SplitUnavailableError` with the reason."""
        if split in self.splits:
            return self.splits[split]
        if split in self.missing_splits:
            raise SplitUnavailableError(
                f"{self.name} has no {split!r} split: {self.missing_splits[split]} "
                f"Available splits: {', '.join(self.splits)}.")
        raise SplitUnavailableError(
            f"{self.name} has no split {split!r}; available splits: {', '.join(self.splits)}")


_DIFFCSP_COMMIT = "7121d159826efa2ba9500bf299250d96da37f146"
_DIFFCSP_RAW = "https://raw.githubusercontent.com/jiaor17/DiffCSP"


def _mp20_urls(split: str) -> tuple[str, ...]:
    # Pinned commit first (the hashes below were published for these bytes), then the default branch.
    return (f"{_DIFFCSP_RAW}/{_DIFFCSP_COMMIT}/data/mp_20/{split}.csv", f"{_DIFFCSP_RAW}/main/data/mp_20/{split}.csv")


BTO_TARBALL = "BTO_Pm-3m_5atoms_400K_3x3x3_ensemble.tar.gz"

_SPECS = (
    DatasetSpec(
        name="perov_5",
        title="Cubic perovskites ABX3 (CDVAE benchmark split)",
        location="package",
        format="csv",
        splits={
            "train": SplitFile("train.csv.gz", "42c3888740e27a4c55729ea6607199746f85c7d0521aa84b62abebeee70fbeba",
                               11356),
            "val": SplitFile("val.csv.gz", "f94f4139bbbaba539fa587b4793c2b8474de21ee58a521d61597921297931deb", 3787),
            "test": SplitFile("test.csv.gz", "97d70ec6a4aed36db3d56ecd6a2ecc0b8a193fdd57b0ffbf18ead750a30c6f25", 3785),
        },
        atoms_per_cell="5",
        properties={
            "heat_ref": "heat of formation, eV (the CDVAE property target; train mean 1.40, std 0.68)",
            "heat_all": "heat of formation (all references), eV",
            "dir_gap": "direct band gap, eV",
            "ind_gap": "indirect band gap, eV",
            "spacegroup_number": "space group number of the primitive cell (DiffCSP column spacegroup.number)",
            "material_id": "CMR id (string)",
        },
        property_columns={"heat_ref": "heat_ref", "heat_all": "heat_all", "dir_gap": "dir_gap",
                          "ind_gap": "ind_gap", "spacegroup.number": "spacegroup_number"},
        license="MIT (CDVAE, DiffCSP); data from CMR",
        source="DiffCSP repository (jiaor17/DiffCSP) data/perov_5/*.csv: same rows and order as CDVAE's split",
        citation="Castelli et al., Energy Environ. Sci. 5, 9034 (2012); Xie et al., CDVAE, ICLR 2022; "
                 "Jiao et al., DiffCSP, NeurIPS 2023",
    ),
    DatasetSpec(
        name="carbon_24",
        title="Carbon polymorphs from AIRSS at 10 GPa (CDVAE split; validation and test only)",
        location="package",
        format="csv",
        splits={
            "val": SplitFile("val.csv.gz", "bf1d3e91bbd70e0c84b3be67c19ddcc796331b797a08a9e275691a3b7a564dec", 2032),
            "test": SplitFile("test.csv.gz", "f51a69674f1d15fb06fa8be60f09abbda60283f77fd1a21d44d6ec2c9a039f65", 2030),
        },
        atoms_per_cell="6-24",
        properties={"energy_per_atom": "DFT total energy per atom, eV/atom",
                    "material_id": "AIRSS structure id (string)"},
        property_columns={"energy_per_atom": "energy_per_atom"},
        license="MIT (CDVAE); data from Pickard, Materials Cloud 2020.0026",
        source="CDVAE repository (txie-93/cdvae) data/carbon_24/{val,test}.csv",
        citation="Pickard, Materials Cloud Archive 2020.0026; Xie et al., CDVAE, ICLR 2022",
        missing_splits={"train": "CDVAE's carbon_24 train.csv could not be obtained, so atomsmith ships only the "
                                 "val and test splits. To train on carbon, use 'carbon_24_unique' (duplicates "
                                 "removed, with its own train/val/test split)."},
    ),
    DatasetSpec(
        name="carbon_24_unique",
        title="Carbon-24 with duplicate structures removed (Martirossyan et al. 2025)",
        location="package",
        format="csv",
        splits={
            "train": SplitFile("train.csv.gz", "5ccdc5d1b8175cdb4b24091ed8d90b21500b758fba6e8d9be178093161cfb5a3",
                               2550),
            "val": SplitFile("val.csv.gz", "20071f9c0d78e8c3373148a974e9780b0d00a5acf8121fafc81e25257fac3664", 850),
            "test": SplitFile("test.csv.gz", "f94db000024a47bff7510629748e29e9b5d944ef1937aeacb5184e66db3e1246", 850),
        },
        atoms_per_cell="6-24",
        properties={"material_id": "c24u-NNNN (string; NNNN is the index in the deduplicated set)"},
        license="MIT (OMatG); paper data release CC-BY-4.0",
        source="OMatG repository (FERMat-ML/OMatG) omg/data/carbon_24_new_Nsplit, rebuilt into the paper's split: "
               "train = indices 0-2549, val 2550-3399, test 3400-4249",
        citation="Martirossyan et al., 'All that structure matches does not glitter', arXiv:2509.12178 (2025)",
    ),
    DatasetSpec(
        name="bto_400K",
        title="BaTiO3 3x3x3 supercells at 400 K with DFT response tensors (Born charges, Raman, dielectric, NLO)",
        location="data_dir",
        format="bto_tarball",
        splits={"all": SplitFile(BTO_TARBALL, "e20a79d193bf17ead83db6c96e09946b7d907fce9769778a57af0d3e53f5e5f9", 50,
                                 size_bytes=1716604)},
        atoms_per_cell="135",
        properties={
            "dielectric": "[3, 3] high-frequency dielectric tensor (dimensionless, as in the source)",
            "nlo_susceptibility": "[3, 3, 3] second-order non-linear optical susceptibility (units as in the source)",
            "material_id": "structure_NNNNN (string)",
        },
        site_properties={
            "born_charges": "[135, 3, 3] Born effective charges, units of e",
            "raman_tensors": "[135, 3, 3, 3] Raman tensors (derivative of the dielectric tensor with respect to "
                             "atomic displacement; units as in the source)",
        },
        license="GPL-3.0 (kept out of atomsmith; read from a data directory)",
        source="camml-lab/e3response @ 3a49fc03c27c9ef7392b6b789bc412d3ecfb8808, data/bto/" + BTO_TARBALL,
        citation="camml-lab/e3response (BaTiO3 ensemble by L. Bastonero, Quantum ESPRESSO)",
        missing_splits={s: "the BaTiO3 set has no published split: load split='all' and make a deterministic subset "
                           "with atomsmith.datasets.random_split(crystals, test_fraction, seed)."
                        for s in ("train", "val", "test")},
        notes="Positions are the Quantum ESPRESSO input geometry (structures/qe, full precision), checked against "
              "the CIF (5 decimals) atom by atom.",
    ),
    DatasetSpec(
        name="mp_20",
        title="Materials Project structures with at most 20 atoms (CDVAE split, DiffCSP CSV format)",
        location="download",
        format="csv",
        splits={
            "train": SplitFile("train.csv", "9c5a34b3684ff4b86d87a86c1c42298d1d28322ea0f03059d9e80ab6a2b729a7", 27136,
                               size_bytes=80920549, urls=_mp20_urls("train")),
            "val": SplitFile("val.csv", "68e101e777c168429d84feb5bf1c5432f1a1b625884f72499c54c4d68e7ee73a", 9047,
                             size_bytes=26864684, urls=_mp20_urls("val")),
            "test": SplitFile("test.csv", "6d63e5d7a607866d94014b3e8ae34f0b9f4d6a2b2332bbc50fd3ec976f487231", 9046,
                              size_bytes=26846148, urls=_mp20_urls("test")),
        },
        atoms_per_cell="1-20",
        properties={
            "formation_energy_per_atom": "formation energy, eV/atom",
            "band_gap": "band gap, eV",
            "e_above_hull": "energy above the convex hull, eV/atom",
            "spacegroup_number": "space group number",
            "material_id": "Materials Project id (string)",
        },
        property_columns={"formation_energy_per_atom": "formation_energy_per_atom", "band_gap": "band_gap",
                          "e_above_hull": "e_above_hull", "spacegroup.number": "spacegroup_number"},
        license="MIT (CDVAE, DiffCSP); data CC-BY-4.0 (Materials Project)",
        source="DiffCSP repository (jiaor17/DiffCSP @ 7121d159) data/mp_20/*.csv; sha256 from the FlowMM LFS "
               "pointers (facebookresearch/flowmm @ 6a96aec3)",
        citation="Jain et al., APL Materials 1, 011002 (2013); Xie et al., CDVAE, ICLR 2022; Jiao et al., DiffCSP, "
                 "NeurIPS 2023",
    ),
)

REGISTRY: Mapping[str, DatasetSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``; raises :class:`UnknownDatasetError` listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownDatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(REGISTRY)}") from None
