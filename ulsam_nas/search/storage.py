"""Where studies live: opening a storage (a journal file, or a database with heartbeats),
finding a study from a study file or from a storage URL and a name, and redacting passwords
from anything shown."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.liveness import requeue_abandoned

SCHEMA_ATTEMPTS = 5  # opening a database storage while other workers create its tables


def redact(url: str) -> str:
    """A storage URL with any password replaced, for messages and reports."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def journal_storage(path: str) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


def open_storage(url: str, heartbeat_interval: int, grace_period: int) -> Any:
    """The storage a worker writes to: a JournalStorage for a file path (created with its
    folder), an RDBStorage whose heartbeats fail a dead worker's trial for a database URL."""
    if "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return journal_storage(url)
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5; we rely on them
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=requeue_abandoned,
                )
        except Exception as error:  # SQLAlchemy's messages can echo the URL: say which part failed
            # Workers starting together on an empty database race to create Optuna's tables: the
            # losers see an IntegrityError and find the tables made on the next try.
            if type(error).__name__ != "IntegrityError" or attempt == SCHEMA_ATTEMPTS - 1:
                raise InvalidInput(f"cannot open storage {redact(url)}: {type(error).__name__}") from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def open_study(storage: str, study_name: str) -> optuna.Study:
    """An existing study, for reading (``best``, ``report``)."""
    if "://" not in storage and not Path(storage).exists():
        raise InvalidInput(f"storage {storage} does not exist; run 'ulsam-nas search' first")
    try:
        return optuna.load_study(
            study_name=study_name, storage=journal_storage(storage) if "://" not in storage else storage
        )
    except KeyError:
        raise InvalidInput(f"no study named {study_name!r} in {redact(storage)}") from None
    except Exception as error:  # SQLAlchemy's messages can echo the URL: say which part failed
        raise InvalidInput(f"cannot open storage {redact(storage)}: {type(error).__name__}") from None


def resolve_study(study: str | Path | None, storage: str | None, study_name: str | None) -> tuple[str, str]:
    """(storage, study name) from a study file (with optional overrides) or from both options."""
    if study:
        config = load_study_config(study, {"storage": storage, "name": study_name})
        return config.storage_url, config.name
    if storage and study_name:
        return storage, study_name
    raise InvalidInput("give a STUDY.yaml, or --storage and --study-name")
