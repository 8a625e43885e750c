"""The errors a user can cause (bad files, bad sets, mismatched networks): the CLI turns them into exit 3."""

from __future__ import annotations

from .nets.ir import NetworkError
from .spec.sets import InputSetError


class FormatError(ValueError):
    """A file that cannot be read: unsupported ONNX operator, malformed .nnet or VNN-LIB, ..."""


USER_ERRORS: tuple[type[BaseException], ...] = (NetworkError, InputSetError, FormatError, FileNotFoundError)
