"""Training: ``zoo.train`` (strategies, exact resume, NaN guard), checkpoints, callbacks, optimizers."""

from zoo.training import callbacks, checkpoints, data, optimizers, strategies
from zoo.training.callbacks import BestModelExport, DataNoiseAnnealing, SampleGrid, SpreadSpectrumHistory, TrainingState
from zoo.training.checkpoints import CHECKPOINT_FORMAT, CheckpointManager, snapshot
from zoo.training.data import epoch_dataset, load_training_data
from zoo.training.optimizers import (
    DEFAULT_TRAINING,
    AdamL2,
    learning_rate_schedule,
    make_optimizer,
    spread_optimizer,
    training_settings,
)
from zoo.training.strategies import STRATEGIES, is_chief, make_strategy
from zoo.training.trainer import RUN_ARGUMENTS, TrainingDivergedError, TrainResult, train

__all__ = ["AdamL2", "BestModelExport", "CHECKPOINT_FORMAT", "CheckpointManager", "DEFAULT_TRAINING",
           "DataNoiseAnnealing", "RUN_ARGUMENTS", "STRATEGIES", "SampleGrid", "SpreadSpectrumHistory", "TrainResult", "TrainingDivergedError",
           "TrainingState", "callbacks", "checkpoints", "data", "epoch_dataset", "is_chief", "learning_rate_schedule",
           "load_training_data", "make_optimizer", "make_strategy", "optimizers", "snapshot", "spread_optimizer",
           "strategies", "train", "training_settings"]
