"""Latent interpolation between two environments, shared by the environment VAEs (Gram-matrix and equivariant).

A model only needs ``encode(vectors [m, n, 3]) -> (mean [m, d], std [m, d])``, ``decode(z [m, d], ordered=False)
-> [m, n, 3]`` (decoder slot order), ``check_environments`` and ``n_neighbors``; the equivariant VAE also decodes
the first frame in the first environment's own frame (``encode_with_frames``) and sets ``mirror_aware = True``.

Paths: straight, ``z(t) = (1 - t) z_a + t z_b``, or spherical (slerp of the directions with linearly
interpolated norms, which keeps intermediate points at typical radii of the latent distribution).

Frames are aligned to each other so that the trajectory is smooth: the first onto ``a`` (O(3) and relabelling;
only relabelling for a mirror-aware model, whose first frame is decoded in ``a``'s own frame),
each next one onto the previous one (relabelling plus O(3) for a Gram VAE, which cannot tell mirror images apart,
or SO(3) for a mirror-aware model, so the handedness never flips along the path).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from atomsmith.generators.environments import ops


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Decoded environments along a latent path.

    Attributes:
      frames: ``[T, n, 3]`` Å, aligned frame to frame (the first onto the first environment).
      latents: ``[T, d]`` the latent path.
      t: ``[T]`` path parameter in ``[0, 1]``.
      numbers: ``[T, n + 1]`` atomic numbers (centre first), rows relabelled like the frames.
      mirrored_end: True when the last frame is the *mirror image* of the second environment's reconstruction
        (mirror-aware model, the two environments' frames of opposite handedness: the latent is O(3)-invariant,
        handedness lives in the frame, and a continuous path of frames cannot change it; see :func:`interpolate`).
        Always False for a Gram VAE, which does not know handedness at all.
    """

    frames: np.ndarray
    latents: np.ndarray
    t: np.ndarray
    numbers: np.ndarray
    mirrored_end: bool = False

    def __len__(self) -> int:
        return len(self.frames)


def latent_path(z_a: np.ndarray, z_b: np.ndarray, steps: int, spherical: bool = False) -> np.ndarray:
    """``[steps, d]`` latents from ``z_a`` to ``z_b`` (both included): linear, or spherical (slerp on the
    directions with linearly interpolated norms)."""
    z_a, z_b = np.asarray(z_a, np.float64), np.asarray(z_b, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if not spherical:
        return (1.0 - t) * z_a + t * z_b
    na, nb = np.linalg.norm(z_a), np.linalg.norm(z_b)
    if na < 1e-9 or nb < 1e-9:
        return (1.0 - t) * z_a + t * z_b
    ua, ub = z_a / na, z_b / nb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if omega < 1e-6:
        direction = (1.0 - t) * ua + t * ub
    else:
        direction = (np.sin((1.0 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    return direction * ((1.0 - t) * na + t * nb)


def _relabel_only(frame: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``[n]``: the partner in ``target`` of each row of ``frame`` (Hungarian on squared distances, no rotation)."""
    from scipy.optimize import linear_sum_assignment

    cost = np.sum((frame[:, None] - target[None]) ** 2, axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


def align_trajectory(frames: np.ndarray, start: np.ndarray, numbers: np.ndarray | None = None,
                     allow_reflection: bool = True, rotate_first: bool = True
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Rotate and relabel each frame ``[T, n, 3]`` onto the previous one, the first onto ``start`` ``[n, 3]``
    (relabel only, no rotation, with ``rotate_first=False``: for a first frame already in ``start``'s frame).
    Rotations range over O(3) or, without ``allow_reflection``, SO(3). ``numbers`` ``[T, n + 1]`` (centre first)
    are relabelled with the frames. Returns ``(frames, numbers)``."""
    out, out_numbers = [], []
    prev = np.asarray(start, np.float64)
    for i, frame in enumerate(np.asarray(frames, np.float64)):
        if i == 0 and not rotate_first:
            rotation, assignment = np.eye(3), _relabel_only(frame, prev)
        else:
            al = ops.align(frame, prev, allow_reflection=allow_reflection)
            rotation, assignment = al.rotation, al.assignment
        moved = np.empty_like(frame)
        moved[assignment] = frame @ rotation
        out.append(moved)
        if numbers is not None:
            z = np.array(numbers[i], copy=True)
            z[1:][assignment] = numbers[i][1:]
            out_numbers.append(z)
        prev = moved
    return np.stack(out), (np.stack(out_numbers) if numbers is not None else None)


def interpolate(model: Any, a: Any, b: Any, steps: int = 9, spherical: bool = False,
                numbers_a: Any = None, numbers_b: Any = None) -> Trajectory:
    """Decoded environments along the latent path between the posterior means of ``a`` and ``b`` (``[n, 3]``
    each, Å), aligned frame to frame (module docstring). ``numbers_a`` / ``numbers_b`` (``[n + 1]``, centre first)
    are needed only by a multi-element equivariant VAE.

    A mirror-aware model decodes every frame in ``a``'s own frame, so the first frame *is* the reconstruction of
    ``a`` and the path keeps ``a``'s handedness; the last frame is the reconstruction of ``b`` up to a proper
    rotation, or of its mirror image when the two frames have opposite handedness (``mirrored_end``).

    Raises:
      InvalidRequestError (a ``ValueError``): ``steps < 2`` or environments the model cannot take.
    """
    from atomsmith.generators.protocol import InvalidRequestError

    if steps < 2:
        raise InvalidRequestError(f"steps must be >= 2 (both end points are included), got {steps}")
    mirror_aware = bool(getattr(model, "mirror_aware", False))
    if mirror_aware:
        env_a, z_a = model.check_environments(a, numbers_a, "first environment")
        env_b, z_b = model.check_environments(b, numbers_b, "second environment")
        mean, _, frames = model.encode_with_frames(np.concatenate([env_a, env_b]), np.concatenate([z_a, z_b]))
        path = latent_path(mean[0], mean[1], steps, spherical)
        decoded = model.decode_full(path, frames=frames[0], ordered=False)  # all in a's own frame
        raw, numbers = decoded.vectors, decoded.numbers
        mirrored_end = bool(np.linalg.det(frames[0]) * np.linalg.det(frames[1]) < 0)
    else:
        mirrored_end = False
        env_a = model.check_environments(a, "first environment")
        env_b = model.check_environments(b, "second environment")
        mean, _ = model.encode(np.concatenate([env_a, env_b]))
        path = latent_path(mean[0], mean[1], steps, spherical)
        raw = model.decode(path, ordered=False)
        numbers = np.full((steps, model.n_neighbors + 1), 14, np.int32)
    frames, numbers = align_trajectory(raw, ops.sort_by_distance(env_a[0]), numbers,
                                       allow_reflection=not mirror_aware, rotate_first=not mirror_aware)
    return Trajectory(frames, path, np.linspace(0.0, 1.0, steps), numbers, mirrored_end)


def trajectory_crystals(trajectory: Trajectory, source: str = "latent interpolation") -> list:
    """The frames as clusters (:func:`atomsmith.generators.environments.ops.environment_to_crystal`: centre first,
    one common cubic box), with ``step`` and ``t`` properties."""
    radius = float(np.max(np.linalg.norm(trajectory.frames, axis=-1)))
    box = 4.0 * radius + 4.0
    return [ops.environment_to_crystal(f, centre_number=int(z[0]), neighbor_numbers=z[1:], box=box, step=i,
                                       t=float(trajectory.t[i]), source=source)
            for i, (f, z) in enumerate(zip(trajectory.frames, trajectory.numbers))]


def write_trajectory(path: str | os.PathLike, trajectory: Trajectory, overwrite: bool = False,
                     source: str = "latent interpolation") -> None:
    """Write the trajectory as a multi-frame extxyz file (atomic write)."""
    from atomsmith.structures import io

    io.write(path, trajectory_crystals(trajectory, source), format="extxyz", overwrite=overwrite)
