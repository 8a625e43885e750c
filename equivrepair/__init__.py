"""equivrepair: how far can a compressed network drift from the original, provably, and can it be repaired?"""

from .merge import merge
from .nets.ir import FNN, Layer, NetworkError, random_fnn

__version__ = "0.1.0"
__all__ = ["FNN", "Layer", "NetworkError", "merge", "random_fnn", "__version__"]
