"""JAX bindings of the fused native convolution kernel (see :mod:`._tp_codegen` for what it computes).

``fused_conv(plan, spec, name, x, sh, radial, kernels, senders, receivers)`` equals :func:`fused_reference`
(radial MLP -> weights, then :func:`._tp_jax.conv_core`) up to float32 rounding, in one pass over the edges
forward and one backward, without materialising any ``[E, width]`` array.

Differentiation: first derivatives run the native backward kernel. Higher derivatives (e.g. force training,
which differentiates a gradient) go through the pure-JAX reference backward: exact, only slower. Forward-mode
AD (``jax.jvp``, ``jax.jacfwd``) is not available, as for any ``jax.custom_vjp``; use ``implementation="jax"``
on the :class:`~atomsmith.nn.convolution.Convolution` if you need it. ``vmap`` runs the kernel sequentially
over the batch.

Edges with a negative (or out-of-range) sender or receiver are skipped and get zero gradients; the caller maps
masked edges to -1 with :func:`as_index`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from atomsmith.nn import _native_build, _tp_jax
from atomsmith.nn._radial_mlp import MlpSpec, mlp_apply
from atomsmith.nn._tp_codegen import ffi_source
from atomsmith.nn._tp_plan import TensorProductPlan, from_channel_minor, to_channel_minor


def kernel_name(plan: TensorProductPlan, spec: MlpSpec) -> str | None:
    """FFI target prefix of the kernel for ``(plan, spec)``, building it on first use; None if unavailable or
    disabled (``ATOMSMITH_NATIVE_KERNELS=0``, checked on every call)."""
    return None if _native_build.disabled() else _load(plan, spec)


@functools.lru_cache(maxsize=64)
def _load(plan: TensorProductPlan, spec: MlpSpec) -> str | None:
    return _native_build.load(lambda name: ffi_source(plan, spec, name), "atomsmith_conv", ("fwd", "bwd"))


def as_index(indices: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """int32 indices with masked entries set to -1 (skipped by the kernel)."""
    indices = jnp.asarray(indices).astype(jnp.int32)
    return indices if mask is None else jnp.where(mask, indices, -1)


def fused_reference(plan: TensorProductPlan, spec: MlpSpec, x, sh, radial, kernels, senders, receivers):
    """Pure-JAX definition of the fused kernel, same layouts (``n_nodes = x.shape[0]``)."""
    n_nodes = x.shape[0]
    valid = (senders >= 0) & (senders < n_nodes) & (receivers >= 0) & (receivers < n_nodes)
    weights = jnp.where(valid[:, None], mlp_apply(spec, radial, kernels), 0.0)
    s, r = jnp.where(valid, senders, 0), jnp.where(valid, receivers, 0)
    summed = _tp_jax.conv_core(plan, from_channel_minor(x, plan.irreps_in), sh, weights, s, r, n_nodes)
    return to_channel_minor(summed, plan.irreps_msg)


def _ffi_forward(plan, spec, name, x, sh, radial, kernels, senders, receivers):
    out = jax.ShapeDtypeStruct((x.shape[0], plan.dim_msg), jnp.float32)
    return jax.ffi.ffi_call(f"{name}_fwd", out, vmap_method="sequential")(
        x, sh, radial, *kernels, senders, receivers)


def _ffi_backward(plan, spec, name, g, x, sh, radial, kernels, senders, receivers):
    outs = (jax.ShapeDtypeStruct(x.shape, jnp.float32), jax.ShapeDtypeStruct(sh.shape, jnp.float32),
            jax.ShapeDtypeStruct(radial.shape, jnp.float32),
            *(jax.ShapeDtypeStruct(k.shape, jnp.float32) for k in kernels))
    dx, dsh, dradial, *dks = jax.ffi.ffi_call(f"{name}_bwd", outs, vmap_method="sequential")(
        g, x, sh, radial, *kernels, senders, receivers)
    return dx, dsh, dradial, tuple(dks)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _backward(plan, spec, name, g, x, sh, radial, kernels, senders, receivers):
    return _ffi_backward(plan, spec, name, g, x, sh, radial, kernels, senders, receivers)


def _backward_fwd(plan, spec, name, g, x, sh, radial, kernels, senders, receivers):
    # The primal goes through the custom_vjp function itself (not the raw FFI call), so this rule stays
    # differentiable: higher-order derivatives need that.
    value = _backward(plan, spec, name, g, x, sh, radial, kernels, senders, receivers)
    return value, (g, x, sh, radial, kernels, senders, receivers)


def _backward_bwd(plan, spec, name, residuals, cotangents):
    g, x, sh, radial, kernels, senders, receivers = residuals

    def reference_backward(g_, x_, sh_, radial_, kernels_):
        _, vjp = jax.vjp(lambda *a: fused_reference(plan, spec, *a, senders, receivers), x_, sh_, radial_, kernels_)
        return vjp(g_)

    _, vjp = jax.vjp(reference_backward, g, x, sh, radial, kernels)
    return (*vjp(tuple(cotangents)), None, None)


_backward.defvjp(_backward_fwd, _backward_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def fused_conv(plan: TensorProductPlan, spec: MlpSpec, name: str, x, sh, radial, kernels, senders, receivers):
    """Native kernel: ``x [N, dim_in]`` (channel-minor), ``sh [E, (l+1)^2]``, ``radial [E, n_basis]``,
    ``kernels`` the radial MLP's ``[d_in, d_out]`` matrices, int32 ``senders``/``receivers`` ``[E]``
    -> ``[N, dim_msg]`` (channel-minor). float32 only."""
    return _ffi_forward(plan, spec, name, x, sh, radial, kernels, senders, receivers)


def _fused_fwd(plan, spec, name, x, sh, radial, kernels, senders, receivers):
    value = fused_conv(plan, spec, name, x, sh, radial, kernels, senders, receivers)  # see _backward_fwd
    return value, (x, sh, radial, kernels, senders, receivers)


def _fused_bwd(plan, spec, name, residuals, g):
    x, sh, radial, kernels, senders, receivers = residuals
    dx, dsh, dradial, dks = _backward(plan, spec, name, g, x, sh, radial, kernels, senders, receivers)
    return dx, dsh, dradial, dks, None, None


fused_conv.defvjp(_fused_fwd, _fused_bwd)
