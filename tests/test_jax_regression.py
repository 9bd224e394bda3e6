"""Guard against the jax CPU miscompile of a vmapped mat-vec followed by a reduction (jax issue 39103, jax 0.10.2).

atomsmith pins ``jax != 0.10.2``; this test fails loudly if an environment ends up with a jax that computes these
sums wrongly (the bug gave wrong results above ~16k elements).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def test_jax_version_is_not_the_miscompiling_release():
    assert jax.__version__ != "0.10.2", "jax 0.10.2 miscompiles vmapped mat-vec + reduction on CPU (issue 39103)"


@pytest.mark.parametrize("batch,n", [(64, 32), (512, 48), (2048, 24)])  # 65k to 2.4M elements
def test_vmapped_matvec_then_reduction(batch, n):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(batch, n, n)).astype(np.float32)
    v = rng.normal(size=(batch, n)).astype(np.float32)

    @jax.jit
    def f(m, v):
        return jnp.sum(jax.vmap(lambda a, b: a @ b)(m, v), axis=-1)

    @jax.jit
    def total(m, v):
        return jnp.sum(jax.vmap(lambda a, b: a @ b)(m, v))

    expect = np.einsum("bij,bj->bi", m.astype(np.float64), v.astype(np.float64))
    np.testing.assert_allclose(np.asarray(f(m, v)), expect.sum(-1), rtol=1e-4, atol=1e-3 * np.sqrt(n))
    np.testing.assert_allclose(float(total(m, v)), expect.sum(), rtol=1e-4, atol=1e-2 * np.sqrt(batch * n))
