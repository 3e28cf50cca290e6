"""The search: a budget-constrained Optuna study over where ULSAM goes, scored by proxy training.

Reading order, one responsibility per module:

* ``config`` — the study file's schema (the proxy's recipe included), command-line overrides,
  the identity a study keeps; ``storage`` — opening a journal or database storage, finding a
  study, redacting passwords.
* ``space`` — search-space files; ``parameters`` — the sampler's structured parameters over a
  space, and the closed-form judgement of a drawn configuration (cost, constraints, the
  budget, the widest plain network that fits);
  ``data``, ``train`` — the proxy's data (validation held out of the training split, a test
  part) and training; ``network`` — the network a study searches (a built-in backbone or a
  model the user brings); ``problem`` — all of it resolved once; ``dryrun`` — what a study
  will do, before anything trains.
* ``records`` — what a trial stores, and the one definition of a search trial, a rung, its
  seeds, its owner and the study's reference; what a plan's text says (placement, g).
* ``claims``, ``liveness`` — who holds what, and what happens to a dead worker's trial.
* ``evaluate`` — one candidate at one rung; ``create`` — creating or resuming a study;
  ``worker`` — the loop (search phase, then the schedule's stage phase); ``processes`` —
  local ``--workers``.
* ``schedule``, ``noise`` — the fidelity schedule and the selection (fresh confirmation seeds,
  the reference as a contender, seeds added until a target is detected), pure and shared with
  ``simulate`` (simulated objectives); ``results`` — a study read once for ``best``, reports
  and ``calibrate``; ``effects`` — factor effects from every trained trial; ``replicate`` —
  the same study under another seed base; ``calibrate`` — the proxy's rank statistics and
  noise decomposition, ``calibration_report`` — what it writes.
"""

from ulsam_nas.search.data import ImageData, load_data
from ulsam_nas.search.train import TrainResult, TrainSettings, proxy_train

__all__ = ["ImageData", "TrainResult", "TrainSettings", "load_data", "proxy_train"]
