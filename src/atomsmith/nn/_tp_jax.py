"""Pure-JAX fused gather -> channel-wise tensor product -> radial weighting -> scatter-sum, with a custom VJP.

``conv_core(plan, x, b, w, senders, receivers)`` returns, in the channel-minor layout of :mod:`._tp_plan`,

    out[n, (o, k, c)] = sum_{e : receivers[e] = n} w[e, c_p] * sum_i B_p[e, i, k] x[senders[e], (a, i, u)]

Why a custom VJP: left to autodiff, XLA's transposes of the many small per-path products become slow reduce and
dot fusions and a strided gather (see ``shared/docs/performance-notes.md``). The hand-written backward gathers the
*materialised* node gradient once and evaluates every gradient as broadcast multiply-adds over the channel axis,
with one grouped reduction per input chunk for ``dL/dB``.

Shapes: ``x [N, dim_in]``, ``b [E, n_b]``, ``w [E, n_weights]``, ``senders/receivers [E]`` int,
``out [N, dim_msg]``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from atomsmith.nn._tp_plan import Path, TensorProductPlan


def _x_rows(x_e: jax.Array, path: Path) -> list[jax.Array]:
    return [x_e[:, path.in_offset + i * path.mul: path.in_offset + (i + 1) * path.mul] for i in range(path.d_in)]


def _path_products(x_rows: list[jax.Array], b: jax.Array, path: Path) -> list[jax.Array]:
    """``T_p[:, k, :] = sum_i B_p[:, i, k] x_i`` for each output component k (list of ``[E, mul]``)."""
    rows: list[jax.Array | None] = [None] * path.d_out
    for i, k, col in path.entries:
        term = b[:, col:col + 1] * x_rows[i]
        rows[k] = term if rows[k] is None else rows[k] + term
    return [jnp.zeros_like(x_rows[0]) if r is None else r for r in rows]


def _assemble(plan: TensorProductPlan, pieces: dict[tuple[int, int], jax.Array], n_rows: int) -> jax.Array:
    """Concatenate per-(path, k) blocks ``[E, mul]`` into the channel-minor message layout ``[E, dim_msg]``."""
    by_group: dict[int, list[tuple[int, int, Path]]] = {}
    for p, path in enumerate(plan.paths):
        by_group.setdefault(path.out_offset, []).append((p, path.channel_offset, path))
    columns = []
    for out_offset in sorted(by_group):
        members = sorted(by_group[out_offset], key=lambda m: m[1])
        d_out = members[0][2].d_out
        for k in range(d_out):
            columns.extend(pieces[(p, k)] for p, _, _ in members)
    return jnp.concatenate(columns, axis=-1)


def _forward_messages(plan: TensorProductPlan, x_e: jax.Array, b: jax.Array, w: jax.Array) -> jax.Array:
    pieces = {}
    for p, path in enumerate(plan.paths):
        w_p = w[:, path.weight_offset:path.weight_offset + path.mul]
        for k, t in enumerate(_path_products(_x_rows(x_e, path), b, path)):
            pieces[(p, k)] = w_p * t
    return _assemble(plan, pieces, x_e.shape[0])


def _message_block(g_e: jax.Array, path: Path, k: int) -> jax.Array:
    start = path.out_offset + k * path.group_mul + path.channel_offset
    return g_e[:, start:start + path.mul]


def forward(plan: TensorProductPlan, x: jax.Array, b: jax.Array, w: jax.Array, senders: jax.Array,
            receivers: jax.Array, n_nodes: int) -> jax.Array:
    """The core's value (plain JAX, differentiable by autodiff too)."""
    messages = _forward_messages(plan, x[senders], b, w)
    return jax.ops.segment_sum(messages, receivers, num_segments=n_nodes)


def backward(plan: TensorProductPlan, n_nodes: int, g: jax.Array, x: jax.Array, b: jax.Array, w: jax.Array,
             senders: jax.Array, receivers: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(dL/dx, dL/db, dL/dw)`` given the output cotangent ``g [N, dim_msg]`` (plain JAX, differentiable)."""
    del n_nodes
    # Materialise the node gradient before gathering it (otherwise XLA fuses the gather with the producer's
    # transposes and every gathered element becomes a strided read).
    g = jax.lax.optimization_barrier(g)
    g_e = g[receivers]
    x_e = x[senders]
    n_edges = x_e.shape[0]
    dx_rows: dict[tuple[int, int], jax.Array] = {}  # (in_offset, i) -> [E, mul]
    dw_cols: list[tuple[int, jax.Array]] = []
    db_terms: dict[int, list[tuple[int, jax.Array]]] = {}  # in_offset -> [(column, dT_k * x_i)]
    for path in plan.paths:
        x_rows = _x_rows(x_e, path)
        t_rows = _path_products(x_rows, b, path)
        g_rows = [_message_block(g_e, path, k) for k in range(path.d_out)]
        w_p = w[:, path.weight_offset:path.weight_offset + path.mul]
        dw = g_rows[0] * t_rows[0]
        for k in range(1, path.d_out):
            dw = dw + g_rows[k] * t_rows[k]
        dw_cols.append((path.weight_offset, dw))
        dt_rows = [gk * w_p for gk in g_rows]
        for i, k, col in path.entries:
            key = (path.in_offset, i)
            term = b[:, col:col + 1] * dt_rows[k]
            dx_rows[key] = term if key not in dx_rows else dx_rows[key] + term
            db_terms.setdefault(path.in_offset, []).append((col, dt_rows[k] * x_rows[i]))
    dw = jnp.concatenate([c for _, c in sorted(dw_cols, key=lambda t: t[0])], axis=-1)
    # dL/dB: one grouped reduction over the channel axis per input chunk.
    db_cols: dict[int, jax.Array] = {}
    for terms in db_terms.values():
        summed = jnp.sum(jnp.stack([t for _, t in terms], axis=1), axis=-1)  # [E, n_terms]
        for j, (col, _) in enumerate(terms):
            db_cols[col] = db_cols[col] + summed[:, j] if col in db_cols else summed[:, j]
    db = jnp.stack([db_cols[c] for c in range(plan.n_b)], axis=-1)
    # dL/dx at the edges in the channel-minor input layout, then back to the senders.
    blocks, start = [], 0
    for mul, ir in plan.irreps_in:
        for i in range(ir.dim):
            blocks.append(dx_rows.get((start, i), jnp.zeros((n_edges, mul), x.dtype)))
        start += mul * ir.dim
    dx_e = jnp.concatenate(blocks, axis=-1)
    dx = jax.ops.segment_sum(dx_e, senders, num_segments=x.shape[0])
    return dx, db.astype(b.dtype), dw


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 6))
def conv_core(plan: TensorProductPlan, x: jax.Array, b: jax.Array, w: jax.Array, senders: jax.Array,
              receivers: jax.Array, n_nodes: int) -> jax.Array:
    """See module docstring."""
    return forward(plan, x, b, w, senders, receivers, n_nodes)


def _conv_core_fwd(plan, x, b, w, senders, receivers, n_nodes):
    return forward(plan, x, b, w, senders, receivers, n_nodes), (x, b, w, senders, receivers)


def _conv_core_bwd(plan, n_nodes, residuals, g):
    x, b, w, senders, receivers = residuals
    return (*backward(plan, n_nodes, g, x, b, w, senders, receivers), None, None)


conv_core.defvjp(_conv_core_fwd, _conv_core_bwd)
