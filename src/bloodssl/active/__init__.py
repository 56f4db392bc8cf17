"""Semi-supervised active learning: the loop, its query strategies and oracles, and the
study of notebook 05."""

from bloodssl.active.loop import ActiveLoop, default_learner, pool_predictions
from bloodssl.active.oracle import FileOracle, LabelsPending, OracleError, SimulatedOracle
from bloodssl.active.strategies import STRATEGIES, Strategy, get_strategy, register

__all__ = [
    "STRATEGIES",
    "ActiveLoop",
    "FileOracle",
    "LabelsPending",
    "OracleError",
    "SimulatedOracle",
    "default_learner",
    "Strategy",
    "get_strategy",
    "pool_predictions",
    "register",
]
