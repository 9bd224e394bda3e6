"""The one training loop: a pure jitted ``train_step(state, batch) -> (state, metrics)`` driven by :func:`fit`.

* AdamW with linear warm-up and cosine decay, global-norm clipping, and an exponential moving average (EMA) of the
  weights (the EMA weights are what gets evaluated and shipped).
* Deterministic data: ``batches(epoch)`` must return the same sequence for the same epoch, so a run interrupted
  and resumed from its checkpoint gives the same result as an uninterrupted one (the checkpoint stores the step,
  the position inside the epoch, the RNG key, optimiser state, best metric and history).
* Checkpoints are written atomically every ``checkpoint_every`` steps, at the end, and on Ctrl-C.
* Early stopping on a validation metric (``patience`` evaluations without improvement).
* Data parallel over every device (``TrainConfig.data_parallel``; :mod:`atomsmith.parallel`): each batch is split
  over a ``"data"`` mesh axis, parameters and optimiser state are replicated, and XLA's SPMD partitioner averages
  the gradients. The sharded step computes the same function as the one-device step (equal up to the order of
  floating-point sums); with one device nothing is sharded. In a multi-process run (:func:`atomsmith.parallel.
  initialize`) ``batches(epoch)`` must give the same global batches on every process; each process transfers only
  the rows of its own devices, and only process 0 writes checkpoints and shows progress.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from atomsmith import parallel
from atomsmith.training import checkpoint as ckpt


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (all models use the same loop).

    Attributes:
      learning_rate: peak learning rate.
      weight_decay: AdamW decoupled weight decay.
      warmup_steps: linear warm-up from 0.
      max_steps: total optimiser steps (also the cosine decay horizon).
      end_lr_fraction: final learning rate as a fraction of the peak.
      grad_clip: global-norm clip (0 disables).
      ema_decay: EMA of weights (0 disables; then EMA params = params).
      eval_every: steps between validation evaluations (0: only at the end).
      checkpoint_every: steps between checkpoints.
      patience: stop after this many evaluations without improvement (None: never).
      seed: PRNG seed (parameter init is the caller's; this seeds dropout/noise keys in the loop).
      data_parallel: devices each batch is split over (data parallel; parameters replicated). ``None``: every
        device (all local ones, and every process's in a multi-process run); ``1``: a single device, nothing
        sharded. Each batch's leading axis (a GraphBatch: its node and edge counts) must divide by it
        (:class:`atomsmith.parallel.DataParallelError` otherwise). Results do not depend on it beyond float
        rounding.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    max_steps: int = 10_000
    end_lr_fraction: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    eval_every: int = 500
    checkpoint_every: int = 500
    patience: int | None = None
    seed: int = 0
    data_parallel: int | None = None


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    ema_params: Any
    opt_state: Any
    key: jax.Array


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, max(cfg.warmup_steps, 1), max(cfg.max_steps, cfg.warmup_steps + 1),
        cfg.learning_rate * cfg.end_lr_fraction)
    parts = [optax.clip_by_global_norm(cfg.grad_clip)] if cfg.grad_clip else []
    parts.append(optax.adamw(schedule, weight_decay=cfg.weight_decay))
    return optax.chain(*parts)


def init_state(params: Any, cfg: TrainConfig, tx: optax.GradientTransformation | None = None) -> TrainState:
    tx = tx or make_optimizer(cfg)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, ema_params=params, opt_state=tx.init(params),
                      key=jax.random.PRNGKey(cfg.seed))


LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]


def make_train_step(loss_fn: LossFn, cfg: TrainConfig, tx: optax.GradientTransformation | None = None,
                    mesh: jax.sharding.Mesh | None = None):
    """``loss_fn(params, batch, key) -> (loss, metrics)``; returns a jitted ``step(state, batch)``.

    With a data ``mesh`` (:func:`atomsmith.parallel.data_mesh`) the batch comes split over its devices
    (:func:`atomsmith.parallel.shard_batch`) and the new state and metrics are constrained to be replicated, so
    the partitioner all-reduces the gradients of the global loss.
    """
    tx = tx or make_optimizer(cfg)
    replicated = None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    @jax.jit
    def train_step(state: TrainState, batch: Any) -> tuple[TrainState, dict]:
        key, sub = jax.random.split(state.key)
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, sub)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        decay = cfg.ema_decay
        if decay:
            # warm-up of the EMA (as in TF's ExponentialMovingAverage with num_updates)
            d = jnp.minimum(decay, (1.0 + state.step) / (10.0 + state.step))
            ema = jax.tree_util.tree_map(lambda e, p: d * e + (1.0 - d) * p, state.ema_params, params)
        else:
            ema = params
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}
        new_state = TrainState(state.step + 1, params, ema, opt_state, key)
        if replicated is not None:
            new_state, metrics = jax.lax.with_sharding_constraint((new_state, metrics), replicated)
        return new_state, metrics

    return train_step


@dataclasses.dataclass
class FitResult:
    state: TrainState
    best_params: Any
    best_metric: float
    history: list[dict]
    stopped_early: bool


def fit(loss_fn: LossFn, params: Any, batches: Callable[[int], Iterable[Any]], cfg: TrainConfig, *,
        eval_fn: Callable[[Any], Mapping[str, float]] | None = None, eval_metric: str = "loss",
        checkpoint_path: str | os.PathLike | None = None, kind: str = "model",
        metadata: Mapping[str, Any] | None = None, progress: bool = True, resume: bool = True,
        stop_after: int | None = None, process_local: bool = False) -> FitResult:
    """Train until ``cfg.max_steps`` (or early stopping), resuming from ``checkpoint_path`` if it exists.

    Args:
      loss_fn: ``(params, batch, key) -> (loss, metrics)``.
      params: initial parameters (ignored when resuming).
      batches: ``epoch -> iterable of batches``; must be deterministic in ``epoch`` (and, in a multi-process run,
        the same global batches on every process). Split over ``cfg.data_parallel`` devices (see
        :func:`atomsmith.parallel.shard_batch`).
      process_local: ``batches(epoch)`` yields only this process's rows of each global batch
        (``rows[atomsmith.parallel.local_rows(global_size, mesh)]``; dense batches only), which are assembled into
        global arrays with :func:`jax.make_array_from_process_local_data`. Identical to ``False`` in a
        single-process run.
      eval_fn: ``ema_params -> metrics`` on validation data; ``eval_metric`` (lower is better) drives early stopping
        and the choice of ``best_params``. Without it the final EMA parameters are best.
      checkpoint_path: training checkpoint (state + loop position), rewritten atomically.
      stop_after: stop (with a checkpoint) after this many steps in *this* call (for tests of resumption).
    """
    tx = make_optimizer(cfg)
    mesh = parallel.data_mesh(cfg.data_parallel)
    train_step = make_train_step(loss_fn, cfg, tx, mesh)
    state = init_state(params, cfg, tx)
    loop = {"epoch": 0, "batch": 0, "best": math.inf, "bad_evals": 0, "history": []}
    best_params = state.ema_params
    path = Path(checkpoint_path) if checkpoint_path else None
    if path is not None and resume and path.exists():
        template = {"state": flax.serialization.to_state_dict(state), "best_params": best_params}
        restored, meta = ckpt.load(path, kind=f"train-state:{kind}", target=template)
        state = flax.serialization.from_state_dict(state, restored["state"])
        best_params = restored["best_params"]
        loop = meta["loop"]
        if loop.get("finished"):
            return FitResult(state, best_params, loop["best"], loop["history"], loop.get("stopped_early", False))
    if mesh is not None:
        state, best_params = parallel.replicate((state, best_params), mesh)
    writer = jax.process_index() == 0  # multi-process: one process writes checkpoints and shows progress

    def save(finished: bool = False, stopped_early: bool = False) -> None:
        if path is None or not writer:
            return
        loop["finished"], loop["stopped_early"] = finished, stopped_early
        ckpt.save(path, {"state": flax.serialization.to_state_dict(state), "best_params": best_params},
                  kind=f"train-state:{kind}", metadata={**dict(metadata or {}), "loop": loop,
                                                        "train_config": dataclasses.asdict(cfg)})

    def evaluate() -> bool:
        """Returns True if training should stop early."""
        nonlocal best_params
        if eval_fn is None:
            best_params = state.ema_params
            return False
        metrics = {k: float(v) for k, v in eval_fn(state.ema_params).items()}
        step = int(state.step)
        loop["history"].append({"step": step, **{f"val_{k}": v for k, v in metrics.items()}})
        value = metrics[eval_metric]
        if value < loop["best"]:
            loop["best"], loop["bad_evals"], best_params = value, 0, state.ema_params
        else:
            loop["bad_evals"] += 1
        return cfg.patience is not None and loop["bad_evals"] >= cfg.patience

    bar = _Progress(cfg.max_steps, int(state.step), enabled=progress and writer)
    steps_this_call = 0
    stopped_early = False
    running: dict[str, float] = loop.setdefault("running", {})  # saved with the loop: a resume logs identically
    try:
        while int(state.step) < cfg.max_steps and not stopped_early:
            for k, batch in enumerate(batches(loop["epoch"])):
                if k < loop["batch"]:
                    continue  # resuming inside an epoch: skip batches already seen
                if mesh is not None:
                    batch = parallel.shard_local_batch(batch, mesh) if process_local else \
                        parallel.shard_batch(batch, mesh)
                state, metrics = train_step(state, batch)
                loop["batch"] = k + 1
                steps_this_call += 1
                step = int(state.step)
                for name, value in metrics.items():
                    running[name] = 0.9 * running.get(name, float(value)) + 0.1 * float(value)
                if step % 50 == 0 or step == cfg.max_steps:
                    loop["history"].append({"step": step, **{f"train_{n}": v for n, v in running.items()}})
                bar.update(step, running)
                if cfg.eval_every and step % cfg.eval_every == 0:
                    stopped_early = evaluate()
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    save()
                if step >= cfg.max_steps or stopped_early:
                    break
                if stop_after is not None and steps_this_call >= stop_after:
                    save()
                    bar.close()
                    return FitResult(state, best_params, loop["best"], loop["history"], False)
            else:
                loop["epoch"] += 1
                loop["batch"] = 0
                continue
            break
        if not stopped_early and (not cfg.eval_every or int(state.step) % cfg.eval_every):
            evaluate()  # final evaluation; it does not count as early stopping
        save(finished=True, stopped_early=stopped_early)
    except KeyboardInterrupt:
        save()
        bar.close()
        raise
    bar.close()
    return FitResult(state, best_params, loop["best"], loop["history"], stopped_early)


class _Progress:
    """A rich progress bar with the running loss (silent when disabled or not a terminal in CI)."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        self.t0 = time.perf_counter()
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=total, completed=start, info="")

    def update(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.enabled:
            info = " ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:3])
            self.progress.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
            self.enabled = False


def count_params(params: Any) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))
