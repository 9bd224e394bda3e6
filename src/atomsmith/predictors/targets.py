"""Known prediction targets and how to read them from :class:`~atomsmith.structures.crystal.Crystal` objects.

A target is a per-structure property (``crystal.properties[name]``) or a per-atom one
(``crystal.site_properties[name]``), a scalar or a Cartesian tensor. :func:`default_readout` gives the head that
fits each known target; any other name works if a :class:`~atomsmith.nn.readouts.ReadoutConfig` is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from atomsmith.nn.readouts import ReadoutConfig
from atomsmith.structures.crystal import Crystal

#: Default heads for the targets of the shipped datasets (units in the comments).
KNOWN_TARGETS: dict[str, ReadoutConfig] = {
    # perov_5 (eV; intensive)
    "heat_ref": ReadoutConfig(level="structure", pooling="mean"),
    "heat_all": ReadoutConfig(level="structure", pooling="mean"),
    "dir_gap": ReadoutConfig(level="structure", pooling="mean"),
    "ind_gap": ReadoutConfig(level="structure", pooling="mean"),
    # carbon_24, mp_20 (eV/atom, eV)
    "energy_per_atom": ReadoutConfig(level="structure", pooling="mean"),
    "formation_energy_per_atom": ReadoutConfig(level="structure", pooling="mean"),
    "band_gap": ReadoutConfig(level="structure", pooling="mean"),
    "e_above_hull": ReadoutConfig(level="structure", pooling="mean"),
    # total energy (eV; extensive)
    "energy": ReadoutConfig(level="structure", pooling="sum"),
    # BaTiO3 response tensors
    "born_charges": ReadoutConfig(level="atom", tensor="rank2", acoustic_sum_rule=True),  # e, [n, 3, 3]
    # [n, γ, α, β] = dχ_αβ/du_γ, symmetric in α, β; a rigid translation leaves χ unchanged: Σ_n R_n = 0 too
    "raman_tensors": ReadoutConfig(level="atom", tensor="raman", acoustic_sum_rule=True),
    "dielectric": ReadoutConfig(level="structure", pooling="mean", tensor="rank2_sym"),  # [3, 3]
}


def default_readout(target: str, **overrides) -> ReadoutConfig:
    """The head for a known target, with fields overridden (e.g. ``width=64``)."""
    if target not in KNOWN_TARGETS:
        raise ValueError(f"no default head for target {target!r}; known: {sorted(KNOWN_TARGETS)}. Pass a "
                         "ReadoutConfig (level, pooling, tensor) explicitly")
    return dataclasses.replace(KNOWN_TARGETS[target], **overrides)


class MissingTargetError(KeyError):
    """A structure does not carry the requested target."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def target_values(crystals: Sequence[Crystal], target: str, readout: ReadoutConfig) -> list[np.ndarray]:
    """The target of each crystal as float64 Cartesian values.

    Returns per structure ``[*shape]`` (``level="structure"``) or ``[n_atoms, *shape]`` (``level="atom"``), with
    ``shape = readout.output_shape`` (``()`` for scalars, ``(3, 3)`` for rank 2, ...).
    Raises :class:`MissingTargetError` naming the first structure without it, ``ValueError`` on a wrong shape.
    """
    out = []
    shape = readout.output_shape
    for k, crystal in enumerate(crystals):
        source = crystal.properties if readout.level == "structure" else crystal.site_properties
        if target not in source:
            where = "properties" if readout.level == "structure" else "site_properties"
            raise MissingTargetError(f"structure {k} ({crystal.formula}) has no {where}[{target!r}]; it has "
                                     f"{sorted(source)}")
        value = np.asarray(source[target], np.float64)
        want = shape if readout.level == "structure" else (crystal.n_atoms, *shape)
        if value.shape != want:
            raise ValueError(f"structure {k}: target {target!r} has shape {value.shape}, the "
                             f"{readout.tensor or 'scalar'} head expects {want}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"structure {k}: target {target!r} is not finite")
        out.append(value)
    return out
