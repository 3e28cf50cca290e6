"""The search: image data, proxy training, search spaces and the budget-constrained Optuna study."""

from ulsam_nas.search.data import ImageData, load_data
from ulsam_nas.search.train import TrainResult, TrainSettings, proxy_train

__all__ = ["ImageData", "TrainResult", "TrainSettings", "load_data", "proxy_train"]
