"""Interpolation between two environments through the Gram VAE's latent space."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from atomsmith.generators import environment_ops as ops

if TYPE_CHECKING:
    from atomsmith.generators.gram_vae.model import GramVAE


def latent_path(z_a: np.ndarray, z_b: np.ndarray, steps: int, spherical: bool = False) -> np.ndarray:
    """``[steps, d]`` latents from ``z_a`` to ``z_b`` (both included): linear, or spherical (slerp on the
    directions with linearly interpolated norms, which keeps intermediate points at typical prior radii)."""
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


def align_trajectory(frames: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Rotate (O(3)) and relabel each frame ``[T, n, 3]`` onto the previous one, the first onto ``start``."""
    out = []
    prev = np.asarray(start, np.float64)
    for frame in frames:
        al = ops.align(frame, prev)
        moved = np.empty_like(frame)
        moved[al.assignment] = frame @ al.rotation
        out.append(moved)
        prev = moved
    return np.stack(out)


def interpolate(model: GramVAE, a: Any, b: Any, steps: int = 9, spherical: bool = False) -> np.ndarray:
    """``[steps, n, 3]`` Å: decoded environments along the latent path between the posterior means of ``a`` and
    ``b`` (each ``[n, 3]``), aligned frame to frame (the first to ``a``). Raises ``InvalidRequestError``."""
    from atomsmith.generators.gram_vae.model import InvalidRequestError

    if steps < 2:
        raise InvalidRequestError(f"steps must be >= 2 (both end points are included), got {steps}")
    envs = np.concatenate([model.check_environments(a, "first environment"),
                           model.check_environments(b, "second environment")])
    mean, _ = model.encode(envs)
    frames = model.decode(latent_path(mean[0], mean[1], steps, spherical))
    return align_trajectory(frames, ops.sort_by_distance(envs[0]))
