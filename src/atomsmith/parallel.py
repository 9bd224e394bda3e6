"""Data parallelism with ``jax.sharding``: one ``"data"`` mesh axis over devices, batches split along it, parameters
and optimiser state replicated; multi-host start-up through :func:`jax.distributed.initialize`.

Everything is SPMD under ``jax.jit`` (no ``pmap``): a jitted function sees the *global* batch, XLA's partitioner
splits the work over the mesh and inserts the all-reduces (e.g. of gradients of a batch-mean loss). So a sharded
step computes the same function as the one-device step; only the order of floating-point reductions differs.
Random draws inside ``jit`` do not depend on the sharding either (``jax_threefry_partitionable``, on by default).

How a batch is split (:func:`shard_batch`):

* a :class:`~atomsmith.graphs.batching.GraphBatch` (flat, padded graphs): node arrays (``frac_coords``,
  ``numbers``, ``node_graph``, ``node_mask``, ``site_properties``) and edge arrays (``senders``, ``receivers``,
  ``shifts``, ``edge_mask``) are split into contiguous blocks; per-graph arrays (``lattices``, ``graph_mask``,
  ``n_atoms``, ``properties``) are small and replicated;
* any other pytree (dicts of dense ``[B, ...]`` arrays, tuples, bare arrays): every array leaf is split along its
  leading (batch) axis; scalars are replicated.

A leading axis that does not divide by the number of devices raises :class:`DataParallelError`.

Multi-host: call :func:`initialize` first in every process; the training mesh then spans every process's devices.
Either every process builds the same global batch and transfers only the rows that live on its own devices
(:func:`shard_batch`, via :func:`jax.make_array_from_callback`), or each process loads only its own rows
(:func:`local_rows`) and the global batch is assembled with :func:`jax.make_array_from_process_local_data`
(:func:`shard_local_batch`; ``fit(..., process_local=True)``). Sampling uses each process's local devices only.
Tested with two processes on one machine (CPU devices, Gloo collectives): ``tests/test_sharding.py``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from atomsmith.graphs.batching import GraphBatch

#: the mesh axis the batch is split over.
DATA_AXIS = "data"

#: environment variables read by :func:`initialize` (``jax.distributed`` reads its own ``JAX_*`` ones as well).
ENV_COORDINATOR = "ATOMSMITH_COORDINATOR"
ENV_NUM_PROCESSES = "ATOMSMITH_NUM_PROCESSES"
ENV_PROCESS_ID = "ATOMSMITH_PROCESS_ID"
ENV_LOCAL_DEVICE_IDS = "ATOMSMITH_LOCAL_DEVICE_IDS"


class DataParallelError(ValueError):
    """A batch or device request that cannot be split over the data mesh, or a bad multi-host setting."""


# ---------------------------------------------------------------------------------------------------- multi-host
def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, local_device_ids: Sequence[int] | None = None) -> tuple[int, int]:
    """Join a multi-process (multi-host) run; call it once per process before any other JAX work.

    Arguments left ``None`` are read from ``ATOMSMITH_COORDINATOR`` (``host:port`` of process 0),
    ``ATOMSMITH_NUM_PROCESSES``, ``ATOMSMITH_PROCESS_ID`` and ``ATOMSMITH_LOCAL_DEVICE_IDS`` (comma separated).
    If none of them is set either, :func:`jax.distributed.initialize` auto-detects the cluster (SLURM, Open MPI,
    Cloud TPU, ...). A second call in the same process is a no-op.

    Returns:
      ``(process_index, process_count)``.
    Raises:
      DataParallelError: a malformed setting, or the cluster could not be joined.
    """
    if _distributed_is_initialized():
        return jax.process_index(), jax.process_count()
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR) or None
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if local_device_ids is None and os.environ.get(ENV_LOCAL_DEVICE_IDS):
        try:
            local_device_ids = [int(x) for x in os.environ[ENV_LOCAL_DEVICE_IDS].split(",")]
        except ValueError:
            raise DataParallelError(f"{ENV_LOCAL_DEVICE_IDS} must be comma-separated integers, got "
                                    f"{os.environ[ENV_LOCAL_DEVICE_IDS]!r}") from None
    if num_processes is not None and num_processes < 1:
        raise DataParallelError(f"num_processes must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise DataParallelError(f"process_id must be in [0, {num_processes}), got {process_id}")
    try:
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id,
                                   local_device_ids=list(local_device_ids) if local_device_ids is not None else None)
    except (RuntimeError, ValueError) as exc:
        raise DataParallelError(f"could not join the multi-process run ({exc}); set {ENV_COORDINATOR}, "
                                f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} or run under a supported cluster "
                                "manager") from exc
    return jax.process_index(), jax.process_count()


def _distributed_is_initialized() -> bool:
    try:
        from jax._src import distributed

        return distributed.global_state.client is not None
    except (ImportError, AttributeError):  # private API moved: let jax.distributed itself complain on a 2nd call
        return False


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise DataParallelError(f"{name} must be an integer, got {value!r}") from None


# ---------------------------------------------------------------------------------------------------- meshes
def data_mesh(n_devices: int | None = None, *, local: bool = False) -> Mesh | None:
    """A 1-D ``("data",)`` mesh, or ``None`` when it would hold a single device (then nothing is sharded).

    Args:
      n_devices: devices to use: ``None`` = all of them; ``1`` = none of the sharding machinery.
      local: only this process's devices (sampling, which each process does on its own); otherwise, in a
        multi-process run, every process's devices (training), and ``n_devices`` must be ``None`` or all of them.
    """
    devices = jax.local_devices() if local else jax.devices()
    if n_devices is None:
        n = len(devices)
    else:
        n = int(n_devices)
        if not 1 <= n <= len(devices):
            raise DataParallelError(f"asked for {n} devices, but {len(devices)} are available")
        if not local and jax.process_count() > 1 and n != len(devices):
            raise DataParallelError(f"a multi-process run uses all {len(devices)} devices; got data_parallel={n}")
    if n == 1:
        return None
    return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def mesh_size(mesh: Mesh | None) -> int:
    """Number of devices along the data axis (1 for no mesh)."""
    return 1 if mesh is None else int(mesh.shape[DATA_AXIS])


def round_up(n: int, mesh: Mesh | None) -> int:
    """Smallest multiple of the mesh size that is ``>= n``."""
    d = mesh_size(mesh)
    return -(-int(n) // d) * d


# ---------------------------------------------------------------------------------------------------- placement
def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array leaf of ``tree`` copied to every device of ``mesh`` (parameters, optimiser state)."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda x: _place(x, sharding), tree)


def shard_leading(tree: Any, mesh: Mesh, what: str = "batch") -> Any:
    """Every array leaf with a leading axis split over the ``"data"`` axis (scalars replicated).

    Raises:
      DataParallelError: a leading axis that does not divide by the number of devices.
    """
    d = mesh_size(mesh)
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())

    def place(path, x):
        shape = np.shape(x)
        if not shape:
            return _place(x, whole)
        if shape[0] % d:
            name = jax.tree_util.keystr(path) or "the batch"
            raise DataParallelError(
                f"{what}: {name} has a leading axis of {shape[0]}, which does not split over {d} devices; use a "
                f"batch size that is a multiple of {d}, or fewer devices (TrainConfig(data_parallel=...), "
                f"sample(devices=...))")
        return _place(x, split)

    return jax.tree_util.tree_map_with_path(place, tree)


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Place one training batch on ``mesh`` (see the module docstring for how each kind of batch is split)."""
    if isinstance(batch, GraphBatch):
        return _shard_graph_batch(batch, mesh)
    return shard_leading(batch, mesh)


def local_rows(n: int, mesh: Mesh | None) -> slice:
    """The rows of a global batch of ``n`` that live on this process's devices (all of them in a single-process
    run): what a process-local data loader (``fit(..., process_local=True)``) yields each step.

    Raises:
      DataParallelError: ``n`` does not split over the mesh, or this process's rows are not one contiguous block.
    """
    if mesh is None:
        return slice(0, int(n))
    d = mesh_size(mesh)
    if n % d:
        raise DataParallelError(f"a global batch of {n} does not split over {d} devices")
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    blocks = sorted({(index[0].start or 0, index[0].stop if index[0].stop is not None else n)
                     for index in sharding.addressable_devices_indices_map((int(n),)).values()})
    start, stop = blocks[0][0], blocks[-1][1]
    if sum(b - a for a, b in blocks) != stop - start:
        raise DataParallelError("this process's devices do not hold one contiguous block of the batch")
    return slice(start, stop)


def shard_local_batch(batch: Any, mesh: Mesh) -> Any:
    """Assemble a global batch from each process's own rows (:func:`jax.make_array_from_process_local_data`).

    ``batch`` is a pytree of dense arrays holding only this process's rows (:func:`local_rows`) along the leading
    axis; scalars must be the same on every process. A flat :class:`GraphBatch` cannot be assembled this way (its
    node indices are global): feed it whole with :func:`shard_batch`.
    """
    if isinstance(batch, GraphBatch):
        raise DataParallelError("a GraphBatch holds global node indices: pass the whole batch on every process "
                                "(fit(..., process_local=False))")
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())
    n_local = sum(1 for _ in mesh.local_devices)

    def place(path, x):
        host = np.asarray(x)
        host = host.astype(jax.dtypes.canonicalize_dtype(host.dtype), copy=False)
        if host.ndim == 0:
            return _place(host, whole)
        if host.shape[0] % n_local:
            raise DataParallelError(f"process-local batch: {jax.tree_util.keystr(path) or 'the batch'} has "
                                    f"{host.shape[0]} rows, which do not split over this process's {n_local} devices")
        return jax.make_array_from_process_local_data(split, host)

    return jax.tree_util.tree_map_with_path(place, batch)


def _shard_graph_batch(batch: GraphBatch, mesh: Mesh) -> GraphBatch:
    d = mesh_size(mesh)
    for name, size in (("nodes", batch.n_nodes), ("edges", int(batch.edge_mask.shape[0]))):
        if size % d:
            raise DataParallelError(
                f"a GraphBatch with {size} {name} does not split over {d} devices; pad it to a multiple of {d} "
                f"(batch_graphs(sizes=...)), or use fewer devices (TrainConfig(data_parallel=...))")
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    whole = NamedSharding(mesh, PartitionSpec())

    def s(x):
        return _place(x, split)

    def r(x):
        return _place(x, whole)

    return batch.replace(
        frac_coords=s(batch.frac_coords), numbers=s(batch.numbers), node_graph=s(batch.node_graph),
        node_mask=s(batch.node_mask), site_properties={k: s(v) for k, v in batch.site_properties.items()},
        senders=s(batch.senders), receivers=s(batch.receivers), shifts=s(batch.shifts), edge_mask=s(batch.edge_mask),
        lattices=r(batch.lattices), graph_mask=r(batch.graph_mask), n_atoms=r(batch.n_atoms),
        properties={k: r(v) for k, v in batch.properties.items()})


def _place(x: Any, sharding: NamedSharding) -> jax.Array:
    """A global array with ``sharding`` built from ``x``, whose value must be the same on every process; each
    process copies only the blocks that live on its own devices (host data via
    :func:`jax.make_array_from_callback`)."""
    if isinstance(x, jax.Array):
        if x.sharding == sharding:
            return x
        if not x.is_fully_addressable or jax.process_count() == 1:
            return jax.device_put(x, sharding)  # on-device data (or already global): let XLA move or reshard it
    host = np.asarray(x)
    host = host.astype(jax.dtypes.canonicalize_dtype(host.dtype), copy=False)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
