"""Op converters; importing this package registers them all (see :mod:`..registry`)."""

from . import elementwise, nn, reduce, shape, tensor

__all__ = ["elementwise", "nn", "reduce", "shape", "tensor"]
