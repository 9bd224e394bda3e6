"""The radial MLP of the convolution, as a static spec plus a pure-JAX evaluation that matches
``e3nn.flax.MultiLayerPerceptron(list_neurons, jax.nn.silu)`` (no bias, activation after every layer including the
last, e3nn's normalised SiLU, e3nn's gradient normalisation). The native kernel evaluates the same spec per edge.

    h_0 = radial                              [E, n_basis]
    h_l = act(scale_l * h_{l-1} @ K_l)        scale_l = fan_in_l ** (-gradient_normalization / 2)
    act(z) = silu(z) / c                      c: e3nn's second-moment normalisation constant of SiLU
"""

from __future__ import annotations

import dataclasses

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class MlpSpec:
    """Layer widths ``(n_basis, *hidden, n_weights)``, per-layer input scales and the activation's 1/c."""

    dims: tuple[int, ...]
    scales: tuple[float, ...]
    act_scale: float

    @property
    def n_layers(self) -> int:
        return len(self.dims) - 1


def make_mlp_spec(n_basis: int, hidden: tuple[int, ...], n_weights: int) -> MlpSpec:
    """Spec of ``e3nn.flax.MultiLayerPerceptron([*hidden, n_weights], jax.nn.silu)`` on ``n_basis`` inputs, under
    the current ``e3nn.config("gradient_normalization")``."""
    normalization = e3nn.config("gradient_normalization")
    if isinstance(normalization, str):
        normalization = {"element": 0.0, "path": 1.0}[normalization]
    dims = (int(n_basis), *(int(h) for h in hidden), int(n_weights))
    scales = tuple(float((1.0 / d) ** (0.5 * normalization)) for d in dims[:-1])
    act = e3nn.normalize_function(jax.nn.silu)
    with jax.ensure_compile_time_eval():
        one = jnp.asarray(1.0, jnp.float32)
        act_scale = float(act(one) / jax.nn.silu(one))
    return MlpSpec(dims=dims, scales=scales, act_scale=act_scale)


def mlp_kernels(params: dict, spec: MlpSpec) -> tuple[jax.Array, ...]:
    """The ``[d_in, d_out]`` kernels from the params of an ``e3nn.flax.MultiLayerPerceptron``."""
    kernels = tuple(params[f"Dense_{i}"]["kernel"] for i in range(spec.n_layers))
    for kernel, d_in, d_out in zip(kernels, spec.dims[:-1], spec.dims[1:]):
        assert kernel.shape == (d_in, d_out), (kernel.shape, d_in, d_out)
    return kernels


def mlp_apply(spec: MlpSpec, radial: jax.Array, kernels: tuple[jax.Array, ...]) -> jax.Array:
    """``[E, n_basis] -> [E, n_weights]`` (pure JAX, differentiable)."""
    h = radial
    for kernel, scale in zip(kernels, spec.scales):
        h = jax.nn.silu(scale * (h @ kernel)) * spec.act_scale
    return h
