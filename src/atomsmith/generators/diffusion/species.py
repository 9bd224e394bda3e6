"""The species field of crystal diffusion: one interface, two processes (``DiffusionConfig.species_process``).

* ``"absorbing"`` (masked / absorbing-state D3PM, as MatterGen; Austin et al. 2021, Sahoo et al. 2024): each atom's
  species is either its clean class or a MASK token. The forward process masks every atom independently with
  probability ``1 - alpha(t)``, ``alpha(t) = 1 - t`` (all masked at t = 1). The network sees the one-hot over
  ``K + 1`` channels (the last is MASK) and predicts logits ``[B, A, K]`` of the clean species; the loss is the
  cross-entropy on the masked atoms. The reverse step ``t -> s`` keeps revealed atoms and reveals each masked one
  with probability ``(alpha(s) - alpha(t)) / (1 - alpha(t))``, drawing its species from the predicted
  distribution; the sequential reveal lets later atoms' species depend on the earlier ones (the relaxed one-hot
  draws all atoms' species at once, which mixes too many elements into one cell).
* ``"gaussian"`` (relaxed one-hot DDPM, DiffCSP's choice; every model shipped before issue 16): the one-hot
  ``[B, A, K]`` diffuses like the lattice parameters, ``x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps``; the network
  predicts ``eps``; the species is the argmax at the end.

Both give the sampler, the guidance and the infilling hooks the same operations; arrays are ``[B, A, C]`` with
``C = channels`` (the network's species input), clean one-hots are ``[B, A, K]``, and ``t`` is a scalar or ``[B]``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from atomsmith.generators.diffusion.schedules import (Schedules, vp_clean_estimate, vp_forward, vp_renoise,
                                                      vp_reverse_step)

PROCESSES = ("gaussian", "absorbing")


def _bcast(t, x):
    """``t`` (scalar or ``[B]``) shaped to broadcast against ``x [B, ...]``."""
    t = jnp.asarray(t, x.dtype)
    return t if t.ndim == 0 else t.reshape((-1,) + (1,) * (x.ndim - 1))


@dataclasses.dataclass(frozen=True)
class GaussianSpecies:
    """Relaxed one-hot DDPM on the species (cosine alpha-bar of :class:`Schedules`)."""

    n_classes: int
    schedules: Schedules

    @property
    def channels(self) -> int:
        return self.n_classes

    def noise(self, key, onehot, t):
        """Forward draw at ``t``: ``(x_t [B,A,K], target)`` with the target the noise ``eps``."""
        ab = _bcast(self.schedules.alpha_bar(t), onehot)
        eps = jax.random.normal(key, onehot.shape, onehot.dtype)
        return vp_forward(onehot, ab, eps), eps

    def atom_loss(self, out, target, x_t):
        """``[B, A]`` loss per atom (mean squared epsilon error) and the ``[B, A]`` weight of each atom (all 1)."""
        return jnp.mean((out - target) ** 2, -1), jnp.ones(out.shape[:-1], out.dtype)

    def clean_input(self, onehot):
        """Clean species as the network's input (structure prediction, held atoms)."""
        return onehot

    def prior(self, key, n_cells: int, n_atoms: int):
        return jax.random.normal(key, (n_cells, n_atoms, self.n_classes))

    def step(self, x, out, t, s, key, stochastic: bool):
        """Reverse step ``t -> s`` (ancestral DDPM, or DDIM when not ``stochastic``)."""
        ab_t, ab_s = self.schedules.alpha_bar(t), self.schedules.alpha_bar(s)
        return vp_reverse_step(x, out, ab_t, ab_s, jax.random.normal(key, x.shape, x.dtype), stochastic)

    def held(self, onehot, t, key):
        """Held atoms' species at time ``t`` (RePaint: a fresh forward draw)."""
        return self.noise(key, onehot, t)[0]

    def renoise(self, x, s, t, key):
        """Forward kernel from ``s`` back to ``t > s``."""
        return vp_renoise(x, self.schedules.alpha_bar(t), self.schedules.alpha_bar(s),
                          jax.random.normal(key, x.shape, x.dtype))

    def clean_estimate(self, x, out, t, csp):
        """``[B, A, K]`` clean estimate for guidance (relaxed one-hot; species weights are its softmax / T)."""
        return jnp.where(csp, x, vp_clean_estimate(x, out, self.schedules.alpha_bar(t)))

    def guide(self, out, grad, weight, t):
        """Network output moved by guidance: ``eps + w sqrt(ab (1 - ab)) dL/dx0``."""
        ab = self.schedules.alpha_bar(t)
        return out + weight * jnp.sqrt(ab * (1.0 - ab)) * grad

    def indices(self, x):
        """``[B, A]`` species indices of the final state."""
        return jnp.argmax(x, axis=-1)


@dataclasses.dataclass(frozen=True)
class AbsorbingSpecies:
    """Masked (absorbing-state) discrete diffusion on the species; channel ``K`` is MASK."""

    n_classes: int

    @property
    def channels(self) -> int:
        return self.n_classes + 1

    @staticmethod
    def alpha(t):
        """Probability that an atom is still unmasked at ``t``."""
        return jnp.clip(1.0 - jnp.asarray(t), 0.0, 1.0)

    def _mask_token(self, shape, dtype):
        return jnp.zeros(shape[:-1] + (self.channels,), dtype).at[..., self.n_classes].set(1.0)

    def clean_input(self, onehot):
        return jnp.concatenate([onehot, jnp.zeros(onehot.shape[:-1] + (1,), onehot.dtype)], axis=-1)

    def is_masked(self, x):
        """``[B, A]`` bool: the atom still carries MASK."""
        return x[..., self.n_classes] > 0.5

    def noise(self, key, onehot, t):
        """Forward draw at ``t``: ``(x_t [B,A,K+1], target)`` with the target the clean one-hot."""
        masked = jax.random.uniform(key, onehot.shape[:-1]) >= _bcast(self.alpha(t), onehot[..., 0])
        x = jnp.where(masked[..., None], self._mask_token(onehot.shape, onehot.dtype), self.clean_input(onehot))
        return x, onehot

    def atom_loss(self, out, target, x_t):
        """``[B, A]`` cross-entropy of the predicted clean species, weighted to the masked atoms only."""
        ce = -jnp.sum(target * jax.nn.log_softmax(out, axis=-1), axis=-1)
        return ce, self.is_masked(x_t).astype(out.dtype)

    def prior(self, key, n_cells: int, n_atoms: int):
        return self._mask_token((n_cells, n_atoms, self.n_classes), jnp.float32)

    def step(self, x, out, t, s, key, stochastic: bool):
        """Reveal each masked atom with probability ``(alpha(s) - alpha(t)) / (1 - alpha(t))``, its species drawn
        from ``softmax(out)``; revealed atoms stay. (Sampled in both samplers: the species field has no
        probability-flow ODE.)"""
        del stochastic
        a_t, a_s = self.alpha(t), self.alpha(s)
        p_reveal = jnp.clip((a_s - a_t) / jnp.maximum(1.0 - a_t, 1e-12), 0.0, 1.0)
        k_reveal, k_class = jax.random.split(key)
        reveal = self.is_masked(x) & (jax.random.uniform(k_reveal, x.shape[:-1]) < _bcast(p_reveal, x[..., 0]))
        draw = jax.random.categorical(k_class, out, axis=-1)
        new = self.clean_input(jax.nn.one_hot(draw, self.n_classes, dtype=x.dtype))
        return jnp.where(reveal[..., None], new, x)

    def held(self, onehot, t, key):
        """Held atoms' species are shown clean at every time (MatterGen's inpainting; any revealed subset is a
        state the network was trained on)."""
        del t, key
        return self.clean_input(onehot)

    def renoise(self, x, s, t, key):
        """Forward kernel ``s -> t``: each revealed atom is masked again with probability ``1 - alpha(t)/alpha(s)``."""
        keep = self.alpha(t) / jnp.maximum(self.alpha(s), 1e-12)
        remask = ~self.is_masked(x) & (jax.random.uniform(key, x.shape[:-1]) >= _bcast(keep, x[..., 0]))
        return jnp.where(remask[..., None], self._mask_token(x.shape[:-1] + (self.n_classes,), x.dtype), x)

    def clean_estimate(self, x, out, t, csp):
        """``[B, A, K]`` log-probabilities of the clean species: the prediction for masked atoms, the revealed
        species (log of its one-hot, floored) otherwise."""
        del t, csp
        revealed = jnp.log(jnp.maximum(x[..., :self.n_classes], 1e-6))
        return jnp.where(self.is_masked(x)[..., None], jax.nn.log_softmax(out, axis=-1), revealed)

    def guide(self, out, grad, weight, t):
        """Guidance tilts the predicted logits: ``logits - w dL/dlog p`` (first order in the objective)."""
        del t
        return out - weight * grad

    def indices(self, x):
        return jnp.argmax(x[..., :self.n_classes], axis=-1)


def species_process(config) -> GaussianSpecies | AbsorbingSpecies:
    """The species process of a :class:`DiffusionConfig`."""
    if config.species_process == "absorbing":
        return AbsorbingSpecies(config.n_species)
    if config.species_process == "gaussian":
        return GaussianSpecies(config.n_species, config.schedules)
    raise ValueError(f"unknown species process {config.species_process!r}; choose one of {PROCESSES}")
