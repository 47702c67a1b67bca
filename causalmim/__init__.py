"""causalmim: neural individual treatment effect estimation with mutual-information minimization."""

__version__ = "0.1.0.dev0"

from .estimators import (
    CausalMIMRegressor,
    CFRNetRegressor,
    DragonNetRegressor,
    DRCFRRegressor,
    ParallelMIMRegressor,
    TARNetRegressor,
    load,
)
from .exceptions import TrainingDivergedError, UnstableTrainingWarning

__all__ = [
    "CausalMIMRegressor",
    "CFRNetRegressor",
    "DRCFRRegressor",
    "DragonNetRegressor",
    "ParallelMIMRegressor",
    "TARNetRegressor",
    "TrainingDivergedError",
    "UnstableTrainingWarning",
    "load",
]
