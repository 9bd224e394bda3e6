"""The shared E(3)-equivariant encoder and its parts: convolution, radial bases, readouts, Cartesian tensors.

Modules: :mod:`~atomsmith.nn.encoder`, :mod:`~atomsmith.nn.convolution`, :mod:`~atomsmith.nn.readouts`,
:mod:`~atomsmith.nn.cartesian` (the ``_tp_*`` modules are the tensor-product kernels behind the convolution).
Names are resolved lazily.
"""

from atomsmith.core.lazy import lazy_exports

_EXPORTS = {
    "atomsmith.nn.encoder": ("N_ELEMENTS", "Encoder", "EncoderConfig"),
    "atomsmith.nn.convolution": ("Convolution", "radial_basis", "safe_norm"),
    "atomsmith.nn.readouts": ("Readout", "ReadoutConfig"),
    "atomsmith.nn.cartesian": ("CartesianTensorSpec", "tensor_spec"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)
__getattr__ = lazy_exports(__name__, _EXPORTS)
