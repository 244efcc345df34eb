"""Types of the compiled part of mi_est (python/src/lib.rs). Use the Python layer
(`mi_est.Posterior`, `mi_est.estimate`, `mi_est.grid`, `mi_est.torch`): it checks its
arguments and gives them their idioms."""

from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
ESTIMATORS: List[str]
GRADIENT_ESTIMATORS: List[str]

class MiEstError(ValueError):
    """An input or setting mi_est refuses. `field` names it (a parameter, tensor or file)
    and `value` is the offending value, where the library knows them."""

    field: Optional[str]
    value: Optional[str]

class _Posterior:
    @staticmethod
    def from_tensors(
        tensors: Mapping[str, npt.NDArray[Any]],
        metadata: Mapping[str, str],
        spec: Optional[str] = None,
        layers: Optional[Sequence[str]] = None,
    ) -> "_Posterior": ...
    @staticmethod
    def load(
        path: Union[str, PathLike[str]],
        spec: Optional[str] = None,
        layers: Optional[Sequence[str]] = None,
        max_memory_gib: Optional[float] = None,
    ) -> "_Posterior": ...
    def save(self, path: Union[str, PathLike[str]], overwrite: bool = False) -> None: ...
    @property
    def n_params(self) -> int: ...
    @property
    def ln_group_order(self) -> float: ...
    @property
    def permutation_sizes(self) -> List[int]: ...
    @property
    def widths(self) -> Optional[List[int]]: ...
    @property
    def spec(self) -> Optional[str]: ...
    @property
    def layout(self) -> List[Tuple[str, List[int]]]: ...
    @property
    def architecture(self) -> str: ...
    @property
    def schemes(self) -> List[str]: ...
    @property
    def prior_scale(self) -> float: ...
    def mu(self) -> npt.NDArray[np.float64]: ...
    def sigma(self) -> npt.NDArray[np.float64]: ...
    def entropy(self) -> float: ...
    def kl_to_prior(self, prior_scale: Optional[float] = None) -> float: ...

def estimate(
    posterior: _Posterior,
    estimator_name: str,
    k: Optional[int],
    samples: int,
    seed: int,
    max_memory_gib: Optional[float] = None,
    max_hours: Optional[float] = None,
) -> Dict[str, Any]: ...
def grid(
    paths: Sequence[Union[str, PathLike[str]]],
    objects: Sequence[Tuple[str, _Posterior]],
    estimators: Sequence[str],
    ks: Sequence[int],
    temperatures: Sequence[int],
    samples: int,
    repeats: int,
    seed: int,
    spec: Optional[str] = None,
    layers: Optional[Sequence[str]] = None,
    max_memory_gib: Optional[float] = None,
    max_hours: Optional[float] = None,
) -> List[Dict[str, Any]]: ...
def mi_term(
    posterior: _Posterior,
    mu: npt.NDArray[np.float64],
    sigma: npt.NDArray[np.float64],
    estimator_name: str,
    k: Optional[int],
    samples: int,
    seed: int,
    step: int,
) -> Tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def trainer_noise(seed: int, step: int, n: int) -> npt.NDArray[np.float64]: ...
