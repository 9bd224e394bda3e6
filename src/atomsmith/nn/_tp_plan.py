"""Static bookkeeping for the channel-wise tensor product of node features with edge spherical harmonics.

The convolution computes, for every edge e (sender s, receiver r) and every *path*
``p = (input chunk a, harmonic degree l, output irrep o)`` kept by the filter,

    T_p[e, k, u] = sqrt(dim o) * sum_{i,j} CG^{l_a, l, l_o}[i, j, k] x_a[s, u, i] Y_l[e, j]
                 = sum_i B_p[e, i, k] x_a[s, u, i],     B_p[e, i, k] = sqrt(dim o) * sum_j CG[i, j, k] Y_l[e, j]

exactly like ``e3nn.tensor_product(features[senders], sh, filter_ir_out=irreps_out)`` (component normalisation),
with the output sorted and regrouped the way e3nn does it. The per-edge matrices ``B`` are tiny (at most 5x5) and
structurally sparse; :class:`TensorProductPlan` lists their non-zero entries once, so the native kernel
(:mod:`._tp_codegen`) evaluates ``T`` as a handful of scalar-times-vector multiply-adds over the channel axis ``u``.

Internal *channel-minor* layout (used by the native kernel; converted at node level, where it is cheap):
an irreps block ``mul x ir`` is stored as ``[dim ir, mul]`` (component-major) instead of e3nn's ``[mul, dim ir]``.
Output irreps of the same type are regrouped into one block ``[dim o, mul_group]`` whose channels are the
concatenation of the contributing paths, in e3nn's order.
"""

from __future__ import annotations

import dataclasses
import functools

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np

_CG_EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class Path:
    """One tensor-product path (all offsets are in the channel-minor layouts described in the module docstring).

    Attributes:
      in_offset: start of the input chunk block ``[d_in, mul]``.
      d_in, d_out, mul: component counts and channel count.
      l_sh: degree of the spherical harmonic used.
      out_offset: start of the output group block ``[d_out, group_mul]``.
      group_mul: channels of the whole output group (row stride of its block).
      channel_offset: first channel of this path inside its output group.
      weight_offset: first radial weight of this path (weights are per output channel, e3nn order).
      entries: non-zero entries of ``B_p`` as ``(i, k, column)`` with ``column`` indexing the flat ``B`` array.
    """

    in_offset: int
    d_in: int
    d_out: int
    mul: int
    l_sh: int
    out_offset: int
    group_mul: int
    channel_offset: int
    weight_offset: int
    entries: tuple[tuple[int, int, int], ...]


@dataclasses.dataclass(frozen=True)
class TensorProductPlan:
    """Everything static about ``features (x) Y_{0..sh_lmax}`` filtered to the irreps of ``irreps_out``.

    Attributes:
      irreps_in: regrouped input irreps.
      irreps_filter: the ``irreps_out`` whose irrep types filter the paths.
      irreps_msg: message irreps, exactly ``e3nn.tensor_product(...).irreps`` (sorted and regrouped).
      sh_lmax: largest harmonic degree.
      paths: the kept paths, in the order e3nn lays out their channels.
      n_b: number of non-zero ``B`` entries (columns of the flat ``B`` array).
      sh_to_b: ``[(sh_lmax + 1)^2, n_b]`` float32 matrix with ``B = Y @ sh_to_b``.
    """

    irreps_in: e3nn.Irreps
    irreps_filter: e3nn.Irreps
    irreps_msg: e3nn.Irreps
    sh_lmax: int
    paths: tuple[Path, ...]
    n_b: int
    sh_to_b_bytes: bytes

    @property
    def dim_in(self) -> int:
        return self.irreps_in.dim

    @property
    def dim_msg(self) -> int:
        return self.irreps_msg.dim

    @property
    def n_weights(self) -> int:
        return self.irreps_msg.num_irreps

    @property
    def sh_dim(self) -> int:
        return (self.sh_lmax + 1) ** 2

    @property
    def sh_to_b(self) -> np.ndarray:
        return np.frombuffer(self.sh_to_b_bytes, np.float32).reshape(self.sh_dim, self.n_b)


@functools.lru_cache(maxsize=64)
def make_plan(irreps_in: str, irreps_out: str, sh_lmax: int) -> TensorProductPlan:
    """Build the plan for ``e3nn.tensor_product(x, Y, filter_ir_out=Irreps(irreps_out))`` (cached)."""
    irreps_in_ = e3nn.Irreps(irreps_in).regroup()
    keep = {ir for _, ir in e3nn.Irreps(irreps_out)}
    sh_irreps = e3nn.Irreps.spherical_harmonics(sh_lmax)  # 1x0e+1x1o+1x2e+..., one chunk per l

    raw = []  # (mul, ir_out, in_chunk, l_sh) in e3nn's unsorted order
    for a, (mul, ir_in) in enumerate(irreps_in_):
        for _, ir_sh in sh_irreps:
            for ir_out in ir_in * ir_sh:
                if ir_out in keep:
                    raw.append((mul, ir_out, a, ir_sh.l))
    if not raw:
        raise ValueError(f"no tensor-product path from {irreps_in_} x Y(l<={sh_lmax}) reaches {irreps_out}")
    order = e3nn.Irreps([(m, ir) for m, ir, _, _ in raw]).sort().inv  # stable sort by irrep, as e3nn
    irreps_msg = e3nn.Irreps([(raw[i][0], raw[i][1]) for i in order]).regroup()

    in_offsets = np.cumsum([0] + [mul * ir.dim for mul, ir in irreps_in_])
    group_offset, group_mul = {}, {}
    offset = 0
    for mul, ir in irreps_msg:
        group_offset[ir], group_mul[ir] = offset, mul
        offset += mul * ir.dim
    channel_fill = {ir: 0 for _, ir in irreps_msg}
    weight_offset = 0
    columns: list[np.ndarray] = []
    paths = []
    for idx in order:
        mul, ir_out, a, l_sh = raw[idx]
        ir_in = irreps_in_[a].ir
        cg = np.asarray(e3nn.clebsch_gordan(ir_in.l, l_sh, ir_out.l), np.float64) * np.sqrt(ir_out.dim)
        entries = []
        for i in range(ir_in.dim):
            for k in range(ir_out.dim):
                if np.max(np.abs(cg[i, :, k])) > _CG_EPS:
                    col = np.zeros((sh_lmax + 1) ** 2)
                    col[l_sh ** 2:(l_sh + 1) ** 2] = cg[i, :, k]
                    entries.append((i, k, len(columns)))
                    columns.append(col)
        paths.append(Path(in_offset=int(in_offsets[a]), d_in=ir_in.dim, d_out=ir_out.dim, mul=mul, l_sh=l_sh,
                          out_offset=group_offset[ir_out], group_mul=group_mul[ir_out],
                          channel_offset=channel_fill[ir_out], weight_offset=weight_offset,
                          entries=tuple(entries)))
        channel_fill[ir_out] += mul
        weight_offset += mul
    sh_to_b = np.stack(columns, axis=1).astype(np.float32)
    return TensorProductPlan(irreps_in=irreps_in_, irreps_filter=e3nn.Irreps(irreps_out), irreps_msg=irreps_msg,
                             sh_lmax=sh_lmax, paths=tuple(paths), n_b=sh_to_b.shape[1],
                             sh_to_b_bytes=sh_to_b.tobytes())


def to_channel_minor(array: jnp.ndarray, irreps: e3nn.Irreps) -> jnp.ndarray:
    """e3nn layout ``[..., dim]`` (each block ``[mul, d]``) -> channel-minor layout (each block ``[d, mul]``)."""
    blocks, start = [], 0
    for mul, ir in irreps:
        block = array[..., start:start + mul * ir.dim]
        if ir.dim > 1 and mul > 1:
            block = jnp.swapaxes(block.reshape(*block.shape[:-1], mul, ir.dim), -1, -2).reshape(block.shape)
        blocks.append(block)
        start += mul * ir.dim
    return blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, axis=-1)


def from_channel_minor(array: jnp.ndarray, irreps: e3nn.Irreps) -> jnp.ndarray:
    """Inverse of :func:`to_channel_minor`."""
    blocks, start = [], 0
    for mul, ir in irreps:
        block = array[..., start:start + mul * ir.dim]
        if ir.dim > 1 and mul > 1:
            block = jnp.swapaxes(block.reshape(*block.shape[:-1], ir.dim, mul), -1, -2).reshape(block.shape)
        blocks.append(block)
        start += mul * ir.dim
    return blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, axis=-1)
