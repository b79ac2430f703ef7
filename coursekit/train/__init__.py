"""Training: the run configuration, the loop, checkpoints, schedules and callbacks.

The recipes that compose them (``finetune``, ``lr_find``) are in :mod:`coursekit.recipes`.
"""

from coursekit.display.dashboard import Dashboard, dashboard_figure, render_metrics
from coursekit.display.progress import ProgressBar
from coursekit.train.callbacks import (
    METRIC_KEYS,
    BaseCallback,
    Callback,
    CallbackList,
    MetricsLogger,
    read_metrics,
)
from coursekit.train.checkpoint import Checkpointer, CheckpointWarning, ConfigMismatchError
from coursekit.train.config import TrainConfig
from coursekit.train.failures import NonFiniteError, RunFailedError, TrainingInterrupted
from coursekit.train.loop import Trainer, make_accelerator
from coursekit.train.loss import TargetLoss
from coursekit.train.lr_finder import (
    SUGGESTERS,
    LRFinderResult,
    lr_range_test,
    plot_lr_finder,
    suggest,
)
from coursekit.train.run import (
    EmptyValidationWarning,
    load_for_training,
    prepare_output,
    train_run,
)
from coursekit.train.schedule import build_scheduler, lr_factor
from coursekit.train.spec import RunSpec, load_spec

__all__ = [
    "METRIC_KEYS",
    "SUGGESTERS",
    "BaseCallback",
    "Callback",
    "CallbackList",
    "CheckpointWarning",
    "Checkpointer",
    "ConfigMismatchError",
    "Dashboard",
    "EmptyValidationWarning",
    "LRFinderResult",
    "MetricsLogger",
    "NonFiniteError",
    "ProgressBar",
    "RunFailedError",
    "RunSpec",
    "TargetLoss",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "build_scheduler",
    "dashboard_figure",
    "load_for_training",
    "load_spec",
    "lr_factor",
    "lr_range_test",
    "make_accelerator",
    "plot_lr_finder",
    "prepare_output",
    "read_metrics",
    "render_metrics",
    "suggest",
    "train_run",
]
