"""Policy and value networks on the shared :class:`atomsmith.nn.encoder.Encoder` (no private message passing).

Node inputs: one-hot over the task's species, a focus flag and a fixed-atom flag (``n_species = S + 2`` scalar
inputs to the encoder's embedding). Per-structure conditioning: the fraction of each species still to place.

Heads (on the encoder's per-atom irreps features ``h``):

* species logits ``[S]``, radius logits ``[R]`` and STOP logit: MLPs of the focus's scalars and the mean-pooled
  scalars;
* direction logits ``[D]``: the focus's vector features projected to ``1x1o + 1x2e`` and dotted with the spherical
  harmonics of the D placement directions (in Cartesian space), plus a learned bias per direction bin. Since the
  local frame rotates with the structure, all logits are invariant under rotations of the structure (SO(3));
* ``logit(s, d, r) = species[s] + direction[d] + radius[r]``; illegal actions are set to ``MASKED_LOGIT``;
* value: MLP of the mean-pooled scalars and the conditioning (invariant under O(3) and atom permutations).
"""

from __future__ import annotations

import dataclasses

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp

from atomsmith.assembly import actions as act
from atomsmith.assembly.graph import neighbor_spec, state_graph
from atomsmith.assembly.state import AssemblyState
from atomsmith.assembly.tasks import AssemblyTask
from atomsmith.nn.encoder import Encoder, EncoderConfig

#: Logit given to illegal actions inside the tree (finite, so softmaxes never produce NaN).
MASKED_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Policy/value network settings. ``encoder.n_species`` and ``conditioning_dim`` are set from the task."""

    encoder: EncoderConfig = EncoderConfig(irreps_hidden="16x0e+8x1o+4x2e", n_layers=2, sh_lmax=2, cutoff=4.0,
                                           n_basis=6, radial_hidden=(16,), avg_num_neighbors=12.0)
    width: int = 32
    max_neighbors: int = 48

    @classmethod
    def tiny(cls) -> NetworkConfig:
        return cls(encoder=EncoderConfig.tiny(cutoff=3.5), width=16)

    def encoder_for(self, task: AssemblyTask) -> EncoderConfig:
        return dataclasses.replace(self.encoder, n_species=task.n_species + 2, conditioning_dim=task.n_species)


class PolicyValueNet(nn.Module):
    """``(state, lattice) -> (logits [A], value [])`` for one state (vmap for batches)."""

    task: AssemblyTask
    config: NetworkConfig

    @nn.compact
    def __call__(self, state: AssemblyState, lattice: jax.Array) -> tuple[jax.Array, jax.Array]:
        task, cfg = self.task, self.config
        enc_cfg = cfg.encoder_for(task)
        n = task.n_atoms
        occ = state.occupied
        spec = neighbor_spec(task.lattice_array, n, enc_cfg.cutoff, cfg.max_neighbors)
        numbers = jnp.where(occ, state.species + 1, 0)  # only the mask of numbers is used
        batch, _ = state_graph(state.positions, occ, numbers, lattice, spec)
        focus = jnp.maximum(state.focus, 0)
        is_focus = (jnp.arange(n) == focus) & (state.focus >= 0) & occ
        feats = jnp.concatenate([jax.nn.one_hot(state.species, task.n_species),
                                 is_focus[:, None].astype(jnp.float32), state.fixed[:, None].astype(jnp.float32)],
                                axis=-1) * occ[:, None]
        feats = jnp.concatenate([feats, jnp.zeros((1, feats.shape[1]), feats.dtype)])  # padding node
        cond = (state.remaining / jnp.asarray(task.counts, jnp.float32))[None, :]
        cond = jnp.concatenate([cond, jnp.zeros_like(cond)])
        h = Encoder(enc_cfg, name="encoder")(batch, feats, cond)  # [N+1, irreps]
        scalars = h.filter(keep="0e").array  # [N+1, C]
        count = jnp.maximum(jnp.sum(occ), 1)
        pooled = jnp.sum(scalars[:n] * occ[:, None], axis=0) / count
        focus_s = scalars[focus] * (state.focus >= 0)
        ctx = jnp.concatenate([focus_s, pooled, cond[0]])
        hidden = nn.silu(nn.Dense(cfg.width, name="policy_hidden")(ctx))
        n_dir, n_rad = len(act.direction_set(task.directions)), len(task.radii)
        species_logits = nn.Dense(task.n_species, name="species")(hidden)
        radius_logits = nn.Dense(n_rad, name="radius")(hidden)
        dir_bias = nn.Dense(n_dir, name="direction_bias")(hidden)
        stop_logit = nn.Dense(1, name="stop")(hidden)[0]
        vec = e3nn.flax.Linear("1x1o+1x2e", name="direction_proj")(h[focus])  # [1o + 2e]
        dirs = jnp.asarray(act.direction_set(task.directions)) @ state.frame  # [D, 3] Cartesian
        sh = e3nn.spherical_harmonics("1o+2e", dirs, normalize=True).array  # [D, 8]
        dir_logits = sh @ vec.array * (state.focus >= 0) + dir_bias
        place = (species_logits[:, None, None] + dir_logits[None, :, None] + radius_logits[None, None, :])
        logits = jnp.concatenate([place.reshape(-1), stop_logit[None]])
        value_in = jnp.concatenate([pooled, cond[0], (state.n / n)[None]])
        value = nn.Dense(1, name="value_out")(nn.silu(nn.Dense(cfg.width, name="value_hidden")(value_in)))[0]
        logits = jnp.where(state.legal, logits, MASKED_LOGIT)
        return logits, value


def init_network(task: AssemblyTask, config: NetworkConfig, key: jax.Array, state: AssemblyState):
    """Parameters of :class:`PolicyValueNet` for ``task`` (``state``: any state of the task, e.g. ``env.reset()``)."""
    net = PolicyValueNet(task, config)
    lattice = jnp.asarray(task.lattice_array, jnp.float32)
    return jax.jit(net.init)(key, state, lattice)["params"]


def apply_batch(task: AssemblyTask, config: NetworkConfig, params, states: AssemblyState, lattice: jax.Array):
    """``states`` with leading axis B -> ``(logits [B, A], values [B])``."""
    net = PolicyValueNet(task, config)
    return jax.vmap(lambda s: net.apply({"params": params}, s, lattice))(states)
