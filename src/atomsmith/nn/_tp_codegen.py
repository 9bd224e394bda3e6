"""C++ source of the fused convolution kernel, generated per (tensor-product plan, radial-MLP spec).

One FFI handler pair per plan:

* ``<name>_fwd(x [N, dim_in], sh [E, S], radial [E, R], K_1..K_L, senders [E], receivers [E]) -> out [N, dim_msg]``
  For each edge: radial MLP -> weights ``w``; ``B = sh . CG``; ``out[r] += w * (B x[s])`` path by path.
* ``<name>_bwd(g [N, dim_msg], <same inputs>) -> (dx [N, dim_in], dsh [E, S], dradial [E, R], dK_1..dK_L)``
  For each edge: recompute ``w`` and ``B``, gather ``g[r]``, write ``dsh`` and ``dradial``, accumulate ``dx[s]``
  and the per-task ``dK``; the task partials are summed in a fixed order (deterministic).

Layouts are the channel-minor ones of :mod:`._tp_plan`. Every loop bound, offset and Clebsch-Gordan coefficient
is a compile-time constant, so the compiler unrolls the sparse sums and vectorises over channels.
"""

from __future__ import annotations

import numpy as np

from atomsmith.nn._radial_mlp import MlpSpec
from atomsmith.nn._tp_plan import Path, TensorProductPlan

COMMON = r"""
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace {

// exp for the SiLU, written so that it vectorises (Cody-Waite reduction, degree-6 polynomial, ~2 ulp).
inline float Exp(float x) {
  x = std::min(88.37f, std::max(-87.33f, x));
  const float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // round to nearest (std::floor blocks SIMD)
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
  float p = 1.3888889e-3f;
  p = p * r + 8.3333333e-3f;
  p = p * r + 4.1666667e-2f;
  p = p * r + 1.6666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline float Sigmoid(float z) { return 1.0f / (1.0f + Exp(-z)); }

// Denormal operands slow x86 FP units down many times; treat them as zero, as XLA's own CPU code does.
inline void RunWithFlushToZero(const std::function<void(int)>& fn, int i) {
#if defined(__SSE__)
  const unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // FTZ | DAZ
  fn(i);
  _mm_setcsr(csr);
#else
  fn(i);
#endif
}

// out[j] = sum_l rows[8 j + l] for 8 rows of 8 lanes.
inline void Reduce8x8(const float* __restrict__ rows, float* __restrict__ out) {
#if defined(__AVX__)
  __m256 a0 = _mm256_loadu_ps(rows + 0), a1 = _mm256_loadu_ps(rows + 8), a2 = _mm256_loadu_ps(rows + 16),
         a3 = _mm256_loadu_ps(rows + 24), a4 = _mm256_loadu_ps(rows + 32), a5 = _mm256_loadu_ps(rows + 40),
         a6 = _mm256_loadu_ps(rows + 48), a7 = _mm256_loadu_ps(rows + 56);
  __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(a4, a5), _mm256_hadd_ps(a6, a7));
  __m256 lo = _mm256_permute2f128_ps(t0, t1, 0x20), hi = _mm256_permute2f128_ps(t0, t1, 0x31);
  _mm256_storeu_ps(out, _mm256_add_ps(lo, hi));
#else
  for (int j = 0; j < 8; ++j) {
    float acc = 0.0f;
    for (int l = 0; l < 8; ++l) acc += rows[8 * j + l];
    out[j] = acc;
  }
#endif
}

// Small GEMMs for the radial MLP on blocks of edges: register-blocked 4 rows x 4 vectors of 16 lanes.
typedef float V __attribute__((vector_size(64)));
typedef float VU __attribute__((vector_size(64), aligned(4)));
inline V LoadV(const float* p) { return *reinterpret_cast<const VU*>(p); }
inline void StoreV(float* p, V v) { *reinterpret_cast<VU*>(p) = v; }

template <int MR, int VR, int K, int N, bool ACC>
inline void GemmBlock(int m, int v, const float* __restrict__ a, int sam, int sak, const float* __restrict__ b,
                      float* __restrict__ c) {
  V acc[MR][VR];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < VR; ++q) acc[r][q] = ACC ? LoadV(c + (m + r) * N + 16 * (v + q)) : V{};
  for (int k = 0; k < K; ++k) {
    V bv[VR];
#pragma GCC unroll 4
    for (int q = 0; q < VR; ++q) bv[q] = LoadV(b + k * N + 16 * (v + q));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const float av = a[(m + r) * sam + k * sak];
#pragma GCC unroll 4
      for (int q = 0; q < VR; ++q) acc[r][q] += av * bv[q];
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < VR; ++q) StoreV(c + (m + r) * N + 16 * (v + q), acc[r][q]);
}

// c[m, n] (+)= sum_k A(m, k) b[k, n] with A(m, k) = a[m * sam + k * sak]; b row-major [K, N]; c row-major [M, N].
template <int M, int K, int N, bool ACC>
inline void Gemm(const float* __restrict__ a, int sam, int sak, const float* __restrict__ b, float* __restrict__ c) {
  constexpr int NV = N / 16, REM = N % 16;
  for (int m = 0; m < M; m += 4) {
    if (m + 4 <= M) {
      int v = 0;
      for (; v + 4 <= NV; v += 4) GemmBlock<4, 4, K, N, ACC>(m, v, a, sam, sak, b, c);
      for (; v < NV; ++v) GemmBlock<4, 1, K, N, ACC>(m, v, a, sam, sak, b, c);
    } else {
      for (int mm = m; mm < M; ++mm) {
        int v = 0;
        for (; v + 4 <= NV; v += 4) GemmBlock<1, 4, K, N, ACC>(mm, v, a, sam, sak, b, c);
        for (; v < NV; ++v) GemmBlock<1, 1, K, N, ACC>(mm, v, a, sam, sak, b, c);
      }
    }
  }
  if (REM > 0) {
    for (int m = 0; m < M; ++m) {
      float acc[REM > 0 ? REM : 1];
      for (int r = 0; r < REM; ++r) acc[r] = ACC ? c[m * N + 16 * NV + r] : 0.0f;
      for (int k = 0; k < K; ++k) {
        const float av = a[m * sam + k * sak];
#pragma omp simd
        for (int r = 0; r < REM; ++r) acc[r] += av * b[k * N + 16 * NV + r];
      }
      for (int r = 0; r < REM; ++r) c[m * N + 16 * NV + r] = acc[r];
    }
  }
}

// Split the nodes [0, n_nodes) into n_tasks contiguous ranges holding about equal numbers of valid edges keyed
// to them, and list each task's edges in edge order (the per-edge arrays then stream; node rows are few and stay
// in cache). Each node belongs to one task: accumulation needs no atomics and its order is fixed.
struct Partition {
  std::vector<int64_t> node_start;  // n_tasks + 1
  std::vector<int64_t> edge_start;  // n_tasks + 1
  std::vector<int32_t> edges;
  std::vector<int32_t> invalid;     // edges with an out-of-range index (skipped, zero gradients)
};

Partition MakePartition(const int32_t* key, const int32_t* other, int64_t n_edges, int64_t n_nodes,
                        int n_tasks) {
  Partition p;
  std::vector<int64_t> offset(n_nodes + 1, 0);
  std::vector<char> valid(n_edges);
  for (int64_t e = 0; e < n_edges; ++e) {
    const int32_t k = key[e], o = other[e];
    valid[e] = k >= 0 && k < n_nodes && o >= 0 && o < n_nodes;
    if (valid[e]) {
      offset[k + 1]++;
    } else {
      p.invalid.push_back(static_cast<int32_t>(e));
    }
  }
  for (int64_t v = 0; v < n_nodes; ++v) offset[v + 1] += offset[v];
  const int64_t n_valid = offset[n_nodes];
  p.node_start.assign(n_tasks + 1, n_nodes);
  p.node_start[0] = 0;
  for (int t = 1; t < n_tasks; ++t) {
    const int64_t target = (n_valid * t + n_tasks - 1) / n_tasks;
    const int64_t v = std::lower_bound(offset.begin(), offset.end(), target) - offset.begin();
    p.node_start[t] = std::max(p.node_start[t - 1], std::min(v, n_nodes));
  }
  p.edge_start.resize(n_tasks + 1);
  for (int t = 0; t <= n_tasks; ++t) p.edge_start[t] = offset[p.node_start[t]];
  p.edges.resize(n_valid);
  std::vector<int64_t> fill(p.edge_start.begin(), p.edge_start.end() - 1);
  for (int64_t e = 0; e < n_edges; ++e) {
    if (!valid[e]) continue;
    const int32_t k = key[e];
    const int t = static_cast<int>(std::upper_bound(p.node_start.begin() + 1, p.node_start.end() - 1, k) -
                                   (p.node_start.begin() + 1));
    p.edges[fill[t]++] = static_cast<int32_t>(e);
  }
  return p;
}

}  // namespace
"""

FFI_COMMON = r"""
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

struct TaskState {
  std::atomic<int> next{0};
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  int n = 0;
  const std::function<void(int)>* fn = nullptr;
};

// Run fn(0..n-1) on the calling thread and XLA's intra-op pool. Tasks are claimed atomically, so the caller
// finishes any task no pool thread has started (no deadlock when the pool is busy), and fn is only touched while
// the caller waits for it.
void RunTasks(ffi::ThreadPool& pool, int n, const std::function<void(int)>& fn) {
  if (n <= 1) {
    if (n == 1) RunWithFlushToZero(fn, 0);
    return;
  }
  auto st = std::make_shared<TaskState>();
  st->n = n;
  st->fn = &fn;
  auto worker = [st]() {
    for (;;) {
      const int i = st->next.fetch_add(1);
      if (i >= st->n) return;
      RunWithFlushToZero(*st->fn, i);
      {
        std::lock_guard<std::mutex> lock(st->mu);
        st->done++;
      }
      st->cv.notify_all();
    }
  };
  for (int t = 1; t < n; ++t) {
    std::function<void()> task = worker;
    pool.Schedule(std::move(task));
  }
  worker();
  std::unique_lock<std::mutex> lock(st->mu);
  st->cv.wait(lock, [&] { return st->done == st->n; });
}

int NumTasks(ffi::ThreadPool& pool, int64_t n_edges) {
  int64_t threads = pool.num_threads();
  if (threads < 1) threads = 1;
  if (n_edges < 1024) threads = 1;
  return static_cast<int>(std::min<int64_t>(threads, 64));
}

}  // namespace
"""


def _f(value: float) -> str:
    return f"{float(np.float32(value))!r}f"


def _sh_to_b(plan: TensorProductPlan) -> str:
    """``b[col] = sum_j C[j, col] sh[j]``."""
    c = plan.sh_to_b
    lines = []
    for col in range(plan.n_b):
        terms = [f"{_f(c[j, col])} * sh[{j}]" for j in range(plan.sh_dim) if c[j, col] != 0.0]
        lines.append(f"  b[{col}] = {' + '.join(terms) if terms else '0.0f'};")
    return "\n".join(lines)


def _db_to_dsh(plan: TensorProductPlan) -> str:
    """``dsh[j] = sum_col C[j, col] db[col]``."""
    c = plan.sh_to_b
    lines = []
    for j in range(plan.sh_dim):
        terms = [f"{_f(c[j, col])} * db[{col}]" for col in range(plan.n_b) if c[j, col] != 0.0]
        lines.append(f"  dsh[{j}] = {' + '.join(terms) if terms else '0.0f'};")
    return "\n".join(lines)


def _fwd_path(path: Path) -> str:
    m = path.mul
    lines = ["  {"]
    for _, _, col in path.entries:
        lines.append(f"    const float b{col} = b[{col}];")
    lines.append("#pragma omp simd")
    lines.append(f"    for (int u = 0; u < {m}; ++u) {{")
    lines.append(f"      const float wu = w[{path.weight_offset} + u];")
    for i in sorted({i for i, _, _ in path.entries}):
        lines.append(f"      const float x{i} = xs[{path.in_offset + i * m} + u];")
    for k in range(path.d_out):
        terms = [f"b{col} * x{i}" for i, kk, col in path.entries if kk == k]
        if terms:
            lines.append(f"      o[{path.out_offset + k * path.group_mul + path.channel_offset} + u] += "
                         f"wu * ({' + '.join(terms)});")
    lines.append("    }")
    lines.append("  }")
    return "\n".join(lines)


def _bwd_path_lines(path: Path, lane: str, reduce_into) -> list[str]:
    """Body of the channel loop of one path's backward (channel index ``u``)."""
    m = path.mul
    lines = [f"{lane}const float wu = w[{path.weight_offset} + u];"]
    rows_in = sorted({i for i, _, _ in path.entries})
    for i in rows_in:
        lines.append(f"{lane}const float x{i} = xs[{path.in_offset + i * m} + u];")
    dw_terms = []
    for k in sorted({k for _, k, _ in path.entries}):
        terms = [f"b{col} * x{i}" for i, kk, col in path.entries if kk == k]
        lines.append(f"{lane}const float g{k} = gr[{path.out_offset + k * path.group_mul + path.channel_offset} + u];")
        lines.append(f"{lane}const float d{k} = g{k} * wu;")
        dw_terms.append(f"g{k} * ({' + '.join(terms)})")
    lines.append(f"{lane}dw[{path.weight_offset} + u] = {' + '.join(dw_terms)};")
    for i in rows_in:
        terms = [f"b{col} * d{k}" for ii, k, col in path.entries if ii == i]
        lines.append(f"{lane}dxs[{path.in_offset + i * m} + u] += {' + '.join(terms)};")
    for i, k, col in path.entries:
        lines.append(f"{lane}{reduce_into(col)} += d{k} * x{i};")
    return lines


def _bwd_body(plan: TensorProductPlan) -> str:
    """TP backward of one edge: ``dw`` (per weight), ``db`` (per B entry), ``dxs += ...``.

    Paths whose channel count is a multiple of 8 accumulate the ``db`` dot products as 8-lane partial sums in
    ``part`` and reduce them 8 at a time (``Reduce8x8``) instead of one horizontal reduction per entry.
    """
    chunked = [p for p in plan.paths if p.mul % 8 == 0]
    slot = {col: j for j, col in enumerate(col for p in chunked for _, _, col in p.entries)}
    n_slots = -(-len(slot) // 8) * 8
    lines = []
    if slot:
        lines.append(f"  alignas(64) float part[{8 * n_slots}];")
        lines.append("  std::memset(part, 0, sizeof(part));")
    for path in plan.paths:
        lines.append("  {")
        for _, _, col in path.entries:
            lines.append(f"    const float b{col} = b[{col}];")
        if path.mul % 8 == 0:
            lines.append(f"    for (int u0 = 0; u0 < {path.mul}; u0 += 8) {{")
            lines.append("#pragma omp simd")
            lines.append("      for (int l = 0; l < 8; ++l) {")
            lines.append("        const int u = u0 + l;")
            lines += _bwd_path_lines(path, "        ", lambda col: f"part[{8 * slot[col]} + l]")
            lines.append("      }")
            lines.append("    }")
        else:
            cols = [col for _, _, col in path.entries]
            for col in cols:
                lines.append(f"    float r{col} = 0.0f;")
            lines.append(f"#pragma omp simd reduction(+: {', '.join(f'r{c}' for c in cols)})")
            lines.append(f"    for (int u = 0; u < {path.mul}; ++u) {{")
            lines += _bwd_path_lines(path, "      ", lambda col: f"r{col}")
            lines.append("    }")
            for col in cols:
                lines.append(f"    db[{col}] = r{col};")
        lines.append("  }")
    if slot:
        cols = sorted(slot, key=slot.get)
        lines.append(f"  alignas(32) float sums[{n_slots}];")
        for j0 in range(0, n_slots, 8):
            lines.append(f"  Reduce8x8(part + {8 * j0}, sums + {j0});")
        for j, col in enumerate(cols):
            lines.append(f"  db[{col}] = sums[{j}];")
    return "\n".join(lines)


EDGE_BLOCK = 8  # edges per radial-MLP block (padded with zeros at the end of a task)


def _mlp_code(spec: MlpSpec) -> str:
    """MlpForward / MlpBackward on a block of ``EDGE_BLOCK`` edges (rows).

    ``h_l [NB, d_l]`` activations (``h_0`` = radial), ``z_l [NB, d_l]`` pre-activations (l >= 1); the backward
    accumulates ``dK_l += h_(l-1)^T dacc_l`` and writes ``dradial [NB, d_0]``.
    """
    dims, n, nb = spec.dims, spec.n_layers, EDGE_BLOCK
    act = _f(spec.act_scale)
    widest = max(dims)
    fwd = ["inline void MlpForward(const float* const* __restrict__ K, float* const* __restrict__ h,",
           "                       float* const* __restrict__ z) {",
           f"  alignas(64) float acc[{nb * widest}];"]
    for layer in range(n):
        d_in, d_out = dims[layer], dims[layer + 1]
        fwd.append(f"  Gemm<{nb}, {d_in}, {d_out}, false>(h[{layer}], {d_in}, 1, K[{layer}], acc);")
        fwd.append("#pragma omp simd")
        fwd.append(f"  for (int j = 0; j < {nb * d_out}; ++j) {{")
        fwd.append(f"    const float zz = {_f(spec.scales[layer])} * acc[j];")
        fwd.append(f"    z[{layer + 1}][j] = zz;")
        fwd.append(f"    h[{layer + 1}][j] = {act} * zz * Sigmoid(zz);")
        fwd.append("  }")
    fwd.append("}")
    bwd = ["inline void MlpBackward(const float* const* __restrict__ KT, float* const* __restrict__ h,",
           "                        float* const* __restrict__ z, const float* __restrict__ dout,",
           "                        float* const* __restrict__ dK, float* __restrict__ dradial) {",
           "  // dout = dL/dh_L [NB, d_L]; KT[l]: K[l] transposed ([d_out, d_in])",
           f"  alignas(64) float da[{nb * widest}], dacc[{nb * widest}];",
           f"  for (int j = 0; j < {nb * dims[-1]}; ++j) da[j] = dout[j];"]
    for layer in reversed(range(n)):
        d_in, d_out = dims[layer], dims[layer + 1]
        bwd.append("#pragma omp simd")
        bwd.append(f"  for (int j = 0; j < {nb * d_out}; ++j) {{")
        bwd.append(f"    const float zz = z[{layer + 1}][j];")
        bwd.append("    const float s = Sigmoid(zz);")
        bwd.append(f"    dacc[j] = {_f(spec.scales[layer] * spec.act_scale)} * da[j] * s * (1.0f + zz * (1.0f - s));")
        bwd.append("  }")
        bwd.append(f"  Gemm<{d_in}, {nb}, {d_out}, true>(h[{layer}], 1, {d_in}, dacc, dK[{layer}]);")
        target = "dradial" if layer == 0 else "da"
        bwd.append(f"  Gemm<{nb}, {d_out}, {d_in}, false>(dacc, {d_out}, 1, KT[{layer}], {target});")
    bwd.append("}")
    return "\n".join(fwd + [""] + bwd)


def kernel_core(plan: TensorProductPlan, spec: MlpSpec) -> str:
    """Plan-specific C++ (no FFI): constants, per-edge functions and the two task bodies."""
    dims = spec.dims
    n_layers = spec.n_layers
    nb = EDGE_BLOCK
    h_total = sum(dims)
    k_sizes = ", ".join(str(a * b) for a, b in zip(dims[:-1], dims[1:]))
    return COMMON + f"""
namespace {{

constexpr int64_t kIn = {plan.dim_in}, kMsg = {plan.dim_msg}, kSh = {plan.sh_dim}, kB = {plan.n_b};
constexpr int64_t kW = {plan.n_weights}, kR = {dims[0]}, kLayers = {n_layers};
constexpr int64_t kKSize[kLayers] = {{{k_sizes}}};
constexpr int64_t kKIn[kLayers] = {{{", ".join(str(d) for d in dims[:-1])}}};
constexpr int64_t kKOut[kLayers] = {{{", ".join(str(d) for d in dims[1:])}}};
static_assert(kW == {dims[-1]}, "radial MLP width must match the number of weights");
constexpr int64_t kNB = {nb};
constexpr int64_t kDim[kLayers + 1] = {{{", ".join(str(d) for d in dims)}}};

inline void ShToB(const float* __restrict__ sh, float* __restrict__ b) {{
{_sh_to_b(plan)}
}}

inline void DbToDsh(const float* __restrict__ db, float* __restrict__ dsh) {{
{_db_to_dsh(plan)}
}}

{_mlp_code(spec)}

inline void TpForward(const float* __restrict__ xs, const float* __restrict__ b, const float* __restrict__ w,
                      float* __restrict__ o) {{
{chr(10).join(_fwd_path(p) for p in plan.paths)}
}}

inline void TpBackward(const float* __restrict__ gr, const float* __restrict__ xs, const float* __restrict__ b,
                       const float* __restrict__ w, float* __restrict__ dxs, float* __restrict__ db,
                       float* __restrict__ dw) {{
{_bwd_body(plan)}
}}

// Forward over one task's edges; the task owns receiver rows [node_lo, node_hi) of out (zeroed here).
void ForwardTask(const Partition& part, int t, const float* x, const float* sh, const float* radial,
                 const float* const* K, const int32_t* senders, const int32_t* receivers, float* out) {{
  std::memset(out + part.node_start[t] * kMsg, 0,
              sizeof(float) * (part.node_start[t + 1] - part.node_start[t]) * kMsg);
  alignas(64) float hbuf[{nb * h_total}], zbuf[{nb * h_total}], b[kB];
  float* h[kLayers + 1];
  float* z[kLayers + 1];
  {{
    int64_t off = 0;
    for (int l = 0; l <= kLayers; ++l) {{
      h[l] = hbuf + off;
      z[l] = zbuf + off;
      off += kNB * kDim[l];
    }}
  }}
  const int64_t lo = part.edge_start[t], hi = part.edge_start[t + 1];
  for (int64_t j0 = lo; j0 < hi; j0 += kNB) {{
    const int64_t count = std::min<int64_t>(kNB, hi - j0);
    for (int64_t q = 0; q < kNB; ++q) {{
      if (q < count) {{
        std::memcpy(h[0] + q * kR, radial + static_cast<int64_t>(part.edges[j0 + q]) * kR, sizeof(float) * kR);
      }} else {{
        std::memset(h[0] + q * kR, 0, sizeof(float) * kR);
      }}
    }}
    MlpForward(K, h, z);
    for (int64_t q = 0; q < count; ++q) {{
      const int64_t e = part.edges[j0 + q];
      ShToB(sh + e * kSh, b);
      TpForward(x + static_cast<int64_t>(senders[e]) * kIn, b, h[kLayers] + q * kW,
                out + static_cast<int64_t>(receivers[e]) * kMsg);
    }}
  }}
}}

// Backward over one task's edges; the task owns sender rows of dx (zeroed here) and writes dsh, dradial of its
// edges; dK_task (per-task partial sums, zeroed here) are summed by the caller.
void BackwardTask(const Partition& part, int t, const float* g, const float* x, const float* sh,
                  const float* radial, const float* const* K, const float* const* KT, const int32_t* senders,
                  const int32_t* receivers, float* dx, float* dsh, float* dradial, float* const* dK_task) {{
  std::memset(dx + part.node_start[t] * kIn, 0,
              sizeof(float) * (part.node_start[t + 1] - part.node_start[t]) * kIn);
  for (int l = 0; l < kLayers; ++l) std::memset(dK_task[l], 0, sizeof(float) * kKSize[l]);
  alignas(64) float hbuf[{nb * h_total}], zbuf[{nb * h_total}], b[kB], db[kB], dw[{nb} * kW], dr[{nb} * kR];
  float* h[kLayers + 1];
  float* z[kLayers + 1];
  {{
    int64_t off = 0;
    for (int l = 0; l <= kLayers; ++l) {{
      h[l] = hbuf + off;
      z[l] = zbuf + off;
      off += kNB * kDim[l];
    }}
  }}
  const int64_t lo = part.edge_start[t], hi = part.edge_start[t + 1];
  for (int64_t j0 = lo; j0 < hi; j0 += kNB) {{
    const int64_t count = std::min<int64_t>(kNB, hi - j0);
    for (int64_t q = 0; q < kNB; ++q) {{
      if (q < count) {{
        std::memcpy(h[0] + q * kR, radial + static_cast<int64_t>(part.edges[j0 + q]) * kR, sizeof(float) * kR);
      }} else {{
        std::memset(h[0] + q * kR, 0, sizeof(float) * kR);
      }}
    }}
    MlpForward(K, h, z);
    for (int64_t q = 0; q < count; ++q) {{
      const int64_t e = part.edges[j0 + q];
      const int64_t s = senders[e];
      ShToB(sh + e * kSh, b);
      TpBackward(g + static_cast<int64_t>(receivers[e]) * kMsg, x + s * kIn, b, h[kLayers] + q * kW,
                 dx + s * kIn, db, dw + q * kW);
      DbToDsh(db, dsh + e * kSh);
    }}
    if (count < kNB) std::memset(dw + count * kW, 0, sizeof(float) * (kNB - count) * kW);
    MlpBackward(KT, h, z, dw, dK_task, dr);
    for (int64_t q = 0; q < count; ++q)
      std::memcpy(dradial + static_cast<int64_t>(part.edges[j0 + q]) * kR, dr + q * kR, sizeof(float) * kR);
  }}
}}

}}  // namespace
"""


def ffi_source(plan: TensorProductPlan, spec: MlpSpec, name: str) -> str:
    """Complete translation unit with the two FFI handlers ``<name>_fwd`` and ``<name>_bwd``."""
    n_layers = spec.n_layers
    k_args = "\n".join("        .Arg<ffi::Buffer<ffi::F32>>()" for _ in range(n_layers))
    dk_rets = "\n".join("        .Ret<ffi::Buffer<ffi::F32>>()" for _ in range(n_layers))
    k_params = ", ".join(f"ffi::Buffer<ffi::F32> k{i}" for i in range(n_layers))
    dk_params = ", ".join(f"ffi::ResultBuffer<ffi::F32> dk{i}" for i in range(n_layers))
    k_list = ", ".join(f"k{i}.typed_data()" for i in range(n_layers))
    k_checks = "\n".join(
        f"  if (k{i}.element_count() != kKSize[{i}]) return ffi::Error::InvalidArgument(\"bad radial kernel {i}\");"
        for i in range(n_layers))
    dk_list = ", ".join(f"dk{i}->typed_data()" for i in range(n_layers))
    return kernel_core(plan, spec) + FFI_COMMON + f"""
namespace {{

ffi::Error Check(int64_t n_nodes, int64_t n_edges, const ffi::Buffer<ffi::F32>& x,
                 const ffi::Buffer<ffi::F32>& sh, const ffi::Buffer<ffi::F32>& radial, int64_t n_recv) {{
  if (x.dimensions().size() != 2 || x.dimensions()[1] != kIn) return ffi::Error::InvalidArgument("x: bad shape");
  if (sh.element_count() != n_edges * kSh) return ffi::Error::InvalidArgument("sh: bad shape");
  if (radial.element_count() != n_edges * kR) return ffi::Error::InvalidArgument("radial: bad shape");
  if (n_recv != n_edges) return ffi::Error::InvalidArgument("senders and receivers differ in length");
  if (n_nodes >= (int64_t{{1}} << 31) || n_edges >= (int64_t{{1}} << 31))
    return ffi::Error::InvalidArgument("graph too large for int32 indices");
  return ffi::Error::Success();
}}

ffi::Error Forward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> sh,
                   ffi::Buffer<ffi::F32> radial, {k_params}, ffi::Buffer<ffi::S32> senders,
                   ffi::Buffer<ffi::S32> receivers, ffi::ResultBuffer<ffi::F32> out) {{
  const int64_t n_nodes = x.dimensions().size() == 2 ? x.dimensions()[0] : 0;
  const int64_t n_edges = senders.element_count();
  if (auto err = Check(n_nodes, n_edges, x, sh, radial, receivers.element_count()); err.failure()) return err;
{k_checks}
  const float* K[kLayers] = {{{k_list}}};
  const int n_tasks = NumTasks(pool, n_edges);
  const Partition part = MakePartition(receivers.typed_data(), senders.typed_data(), n_edges, n_nodes, n_tasks);
  float* op = out->typed_data();
  std::function<void(int)> task = [&](int t) {{
    ForwardTask(part, t, x.typed_data(), sh.typed_data(), radial.typed_data(), K, senders.typed_data(),
                receivers.typed_data(), op);
  }};
  RunTasks(pool, n_tasks, task);
  return ffi::Error::Success();
}}

ffi::Error Backward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> x,
                    ffi::Buffer<ffi::F32> sh, ffi::Buffer<ffi::F32> radial, {k_params},
                    ffi::Buffer<ffi::S32> senders, ffi::Buffer<ffi::S32> receivers,
                    ffi::ResultBuffer<ffi::F32> dx, ffi::ResultBuffer<ffi::F32> dsh,
                    ffi::ResultBuffer<ffi::F32> dradial, {dk_params}) {{
  const int64_t n_nodes = x.dimensions().size() == 2 ? x.dimensions()[0] : 0;
  const int64_t n_edges = senders.element_count();
  if (auto err = Check(n_nodes, n_edges, x, sh, radial, receivers.element_count()); err.failure()) return err;
  if (g.element_count() != n_nodes * kMsg) return ffi::Error::InvalidArgument("g: bad shape");
{k_checks}
  const float* K[kLayers] = {{{k_list}}};
  std::vector<float> kt_storage;
  const float* KT[kLayers];
  for (int l = 0; l < kLayers; ++l) kt_storage.resize(kt_storage.size() + kKSize[l]);
  {{
    int64_t off = 0;
    for (int l = 0; l < kLayers; ++l) {{
      float* kt = kt_storage.data() + off;
      for (int64_t i = 0; i < kKIn[l]; ++i)
        for (int64_t j = 0; j < kKOut[l]; ++j) kt[j * kKIn[l] + i] = K[l][i * kKOut[l] + j];
      KT[l] = kt;
      off += kKSize[l];
    }}
  }}
  const int n_tasks = NumTasks(pool, n_edges);
  const Partition part = MakePartition(senders.typed_data(), receivers.typed_data(), n_edges, n_nodes, n_tasks);
  float* dshp = dsh->typed_data();
  float* drp = dradial->typed_data();
  for (int32_t e : part.invalid) {{
    std::memset(dshp + static_cast<int64_t>(e) * kSh, 0, sizeof(float) * kSh);
    std::memset(drp + static_cast<int64_t>(e) * kR, 0, sizeof(float) * kR);
  }}
  int64_t k_total = 0;
  for (int l = 0; l < kLayers; ++l) k_total += kKSize[l];
  std::vector<float> dk_storage(static_cast<size_t>(k_total) * n_tasks);
  std::function<void(int)> task = [&](int t) {{
    float* dK_task[kLayers];
    int64_t off = k_total * t;
    for (int l = 0; l < kLayers; ++l) {{
      dK_task[l] = dk_storage.data() + off;
      off += kKSize[l];
    }}
    BackwardTask(part, t, g.typed_data(), x.typed_data(), sh.typed_data(), radial.typed_data(), K, KT,
                 senders.typed_data(), receivers.typed_data(), dx->typed_data(), dshp, drp, dK_task);
  }};
  RunTasks(pool, n_tasks, task);
  float* dK[kLayers] = {{{dk_list}}};
  int64_t off = 0;
  for (int l = 0; l < kLayers; ++l) {{
    for (int64_t i = 0; i < kKSize[l]; ++i) {{
      float acc = 0.0f;
      for (int t = 0; t < n_tasks; ++t) acc += dk_storage[k_total * t + off + i];
      dK[l][i] = acc;
    }}
    off += kKSize[l];
  }}
  return ffi::Error::Success();
}}

}}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL({name}_fwd, Forward,
    ffi::Ffi::Bind()
        .Ctx<ffi::ThreadPool>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
{k_args}
        .Arg<ffi::Buffer<ffi::S32>>()
        .Arg<ffi::Buffer<ffi::S32>>()
        .Ret<ffi::Buffer<ffi::F32>>());

XLA_FFI_DEFINE_HANDLER_SYMBOL({name}_bwd, Backward,
    ffi::Ffi::Bind()
        .Ctx<ffi::ThreadPool>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
{k_args}
        .Arg<ffi::Buffer<ffi::S32>>()
        .Arg<ffi::Buffer<ffi::S32>>()
        .Ret<ffi::Buffer<ffi::F32>>()
        .Ret<ffi::Buffer<ffi::F32>>()
        .Ret<ffi::Buffer<ffi::F32>>()
{dk_rets});
"""
