"""The one training loop (jitted ``train_step``, EMA, evaluation, resume) and the one checkpoint format.

Modules: :mod:`~atomsmith.training.loop`, :mod:`~atomsmith.training.checkpoint`. Names are resolved lazily.
"""

from atomsmith.core.lazy import lazy_exports

_EXPORTS = {
    "atomsmith.training.loop": ("FitResult", "TrainConfig", "TrainState", "fit", "init_state", "make_optimizer",
                                "make_train_step"),
    "atomsmith.training.checkpoint": ("CheckpointError", "CheckpointMismatchError", "CorruptCheckpointError",
                                      "read_header"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__ = lazy_exports(__name__, _EXPORTS)
