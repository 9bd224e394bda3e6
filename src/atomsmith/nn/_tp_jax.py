"""Pure-JAX convolution core: channel-wise tensor product, radial weighting and scatter-sum, written with e3nn.

Used where the native kernel is not (GPU, float64, no C++ compiler, ``implementation="jax"``) and as the
differentiable definition behind the native kernel's higher-order derivatives. Plain autodiff, so it supports
every JAX transformation, forward mode included. The one deliberate difference from the obvious e3nn code: the
per-channel weights multiply the messages with a plain broadcast (weights repeated over each irrep's 2l+1
components); e3nn's ``IrrepsArray * array`` would build an elementwise tensor product with identity
Clebsch-Gordan matrices, which is slow.

Shapes (e3nn layouts): ``x [N, dim_in]``, ``sh [E, (l+1)^2]``, ``weights [E, n_weights]``,
``senders/receivers [E]`` -> ``[N, dim_msg]``.
"""

from __future__ import annotations

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from atomsmith.nn._tp_plan import TensorProductPlan


def conv_core(plan: TensorProductPlan, x: jax.Array, sh: jax.Array, weights: jax.Array, senders: jax.Array,
              receivers: jax.Array, n_nodes: int) -> jax.Array:
    """``out[n] = sum_{e: receivers[e] = n} weights[e] * (x[senders[e]] (x) sh[e])`` (see module docstring)."""
    features = e3nn.IrrepsArray(plan.irreps_in, x)
    harmonics = e3nn.IrrepsArray(e3nn.Irreps.spherical_harmonics(plan.sh_lmax), sh)
    messages = e3nn.tensor_product(features[senders], harmonics, filter_ir_out=plan.irreps_filter)
    assert messages.irreps == plan.irreps_msg, (messages.irreps, plan.irreps_msg)
    repeats = np.repeat([ir.dim for _, ir in plan.irreps_msg], [mul for mul, _ in plan.irreps_msg])
    expanded = jnp.repeat(weights, repeats, axis=-1, total_repeat_length=plan.dim_msg)
    return jax.ops.segment_sum(messages.array * expanded, receivers, num_segments=n_nodes)
