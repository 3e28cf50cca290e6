"""What a study says, read from its storage once: every trial, each candidate's per-seed
accuracies at each fidelity, the selection (best, ties, recommendation, noise), the training
each stage spent, and whether the study is finished.  ``best``, ``report`` and ``calibrate``
read studies through this view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from ulsam_nas.errors import InvalidInput
from ulsam_nas.search.config import StudyConfig, settings_fingerprint, stored_config
from ulsam_nas.search.effects import effect_sentence, estimate_effects, importance
from ulsam_nas.search.network import network_of_attrs, width_label_of
from ulsam_nas.search.noise import TEST_NAME, summarize
from ulsam_nas.search.records import (
    FINISHED,
    Record,
    collect_results,
    collect_tests,
    first_records,
    infeasible_draws,
    is_search_trial,
    reference_of,
    search_trials_finished,
    stage_of,
)
from ulsam_nas.search.schedule import Costs, Ladder, Ranked, Results, Selection, select, tie_sentence
from ulsam_nas.search.space import SearchSpace


@dataclass
class StudyResults:
    name: str
    config: StudyConfig
    ladder: Ladder
    user_attrs: dict[str, Any]
    trials: list[optuna.trial.FrozenTrial]
    results: Results
    costs: dict[str, Costs]
    reference: str | None  # the vanilla candidate whose seed spread states the noise
    first: dict[str, dict[str, Any]]  # each candidate's attributes from its first finished trial
    selection: Selection
    tests: dict[str, dict[int, float]]  # candidate -> seed -> test accuracy (confirmation only)

    @classmethod
    def load(cls, study: optuna.Study, empty: str = "") -> StudyResults:
        """Read the study once; a study without one trained trial is invalid input (``empty``
        ends that message)."""
        user_attrs = dict(study.user_attrs)
        config = stored_config(user_attrs, study.study_name)
        ladder = config.ladder
        trials = study.get_trials(deepcopy=False)
        results, costs = collect_results(trials, ladder)
        if not results:
            raise InvalidInput(f"study {study.study_name!r} has no finished, trained trial yet{empty}")
        reference = reference_of(trials, user_attrs.get("reference"))
        selection = select(ladder, results, costs, reference)
        return cls(
            study.study_name, config, ladder, user_attrs, trials, results, costs, reference,
            first_records(trials), selection, collect_tests(trials, ladder),
        )  # fmt: skip

    @property
    def network(self) -> dict[str, Any]:
        return dict(self.user_attrs.get("network", {}))

    def record(self, key: str) -> Record:
        """The first trial of candidate ``key`` (what does not depend on training), typed."""
        return Record.of(self.first[key])

    def label(self, key: str) -> str:
        record = self.record(key)
        return f"{record.shown_plan or 'plain'} ({self.width_label(float(record.width_mult or 0))})"

    def width_label(self, width: float) -> str:
        """``α 0.28125``, or a brought network's ``width=12`` (from the study's network, so a
        study written before records stored it reads the same)."""
        return width_label_of(self.network, width)

    def partial(self) -> list[str]:
        """Why the study is not finished (running or queued trials, search trials or a stage's
        evaluations still to run); empty when it is."""
        reasons = []
        busy = [
            t
            for t in self.trials
            if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
        ]
        if busy:
            reasons.append(f"{len(busy)} trial(s) running or queued (or left by a worker that died)")
        finished = search_trials_finished(self.trials)
        if finished < self.config.trials:
            reasons.append(f"{finished} of {self.config.trials} search trials finished")
        else:
            stage, missing = self.ladder.pending(self.results, self.costs, self.reference)
            if stage is not None:
                reasons.append(f"stage {stage!r} has {len(missing)} evaluation(s) to run")
        return reasons

    def best(self, top: int = 5) -> dict[str, Any]:
        """What ``ulsam-nas best --json`` prints: the candidates ranked by the highest fidelity
        they reached, then mean accuracy; the confirmed contenders tied with the best (paired
        over common seeds) and the cheapest of them recommended; the noise per fidelity and the
        training each stage spent."""
        selection = self.selection
        recommended = self.record(selection.recommended) if selection.recommended else None
        complete = [
            Record.of(t.user_attrs) for t in self.trials if t.state == optuna.trial.TrialState.COMPLETE
        ]
        scored = [r for r in complete if not r.over_budget and r.accuracy is not None]
        return {
            "study": self.name,
            "settings": settings_fingerprint(self.user_attrs.get("identity") or {}),
            "unit": "MAC",
            "scored_trials": len(scored),
            "trained_trials": sum(1 for r in scored if r.trained_steps),
            "test": TEST_NAME + ", 95% interval of the mean difference; tied when it contains 0",
            "confirmed": selection.confirmed,
            "best": selection.best,
            "recommended": recommended.plan if recommended else None,
            "recommended_width_mult": recommended.width_mult if recommended else None,
            "recommended_candidate": selection.recommended,
            "recommendation": tie_sentence(selection, {k: self.label(k) for k in self.first}, self.costs),
            "detectable_difference": selection.detectable,
            "trade_off": self.trade_off(),
            "replication": self.user_attrs.get("replication"),
            "fidelity_check": self.user_attrs.get("fidelity_check"),
            "latency_device": self.latency_device(),
            "noise": selection.noise,
            "training": training_by_stage(self.trials, self.ladder),
            "split": self.user_attrs.get("split"),
            "infeasible_draws": infeasible_draws(self.trials),
            "candidates": [self._candidate(entry) for entry in selection.ranked[:top]],
            **self.effects(),
            "notes": selection.notes + self._test_notes(),
        }

    def latency_device(self) -> str | None:
        """The device the study's latencies are predicted for (None: no latency table)."""
        stored = self.user_attrs.get("latency_table")
        if not isinstance(stored, dict):
            return None
        from ulsam_nas.latency import Device

        device = Device.from_dict(stored.get("device", {})).text()
        other = float(stored.get("other_work", 0.0))
        if other >= 0.5:  # as a device table says it (latency.table.busy), in the study's terms
            device += f", its table measured while other work kept about {other:.1f} cores busy"
        return device

    def trade_off(self) -> dict[str, Any] | None:
        """The recommendation against the plain network at the widest width inside the budget,
        paired over their common confirmation seeds: the width trade-off in one interval."""
        selection, reference = self.selection, self.reference
        comparison = selection.versus_reference
        if comparison is None or reference is None or selection.recommended is None:
            return None
        return {
            "recommended": selection.recommended,
            "reference": reference,
            "seeds": comparison.n,
            "mean": comparison.difference,
            "ci_low": comparison.ci_low,
            "ci_high": comparison.ci_high,
            "p_value": comparison.p_value,
            "sentence": trade_off_sentence(
                self.label(selection.recommended), self.label(reference), comparison.difference,
                comparison.ci_low, comparison.ci_high, comparison.n,
                self.costs[selection.recommended].macs - self.costs[reference].macs,
            ),
        }  # fmt: skip

    def _position_names(self, positions: list[int]) -> dict[int, str]:
        """A brought network's positions by module path (a built-in's keep ``layer INDEX``)."""
        if "model" not in self.network or not self.first:
            return {}
        stored = self.user_attrs.get("position_names")
        if stored is not None:
            return {index: stored[str(index)] for index in positions if str(index) in stored}
        record = self.record(next(iter(self.first)))  # a study made before names were stored
        network = network_of_attrs(str(record.backbone), self.network).at(float(record.width_mult or 1))
        return {index: network.where(index) for index in positions}

    def effects(self) -> dict[str, Any]:
        """Factor effects (``effects``) from every trained evaluation at the rung with the most
        trained candidates, and Optuna's importance of the sampler's parameters."""
        if not self.results:
            return {"effects": [], "effects_rung": None, "importance": None}
        rung = max(self.results, key=lambda r: (len(self.results[r]), -r))
        observations = [
            (float(self.record(key).width_mult or 0), self.record(key).plan, seed, accuracy)
            for key, found in self.results[rung].items()
            for seed, accuracy in found.items()
        ]
        space = self.space
        names = [n for n in self.user_attrs.get("parameters", []) if "." not in n]
        # The sampler's at{i} parameters name the positions as the network resolved them (a
        # brought network's path patterns included).
        positions = sorted(int(n[2:]) for n in names if n.startswith("at") and n[2:].isdigit())
        if not positions and space is not None:
            positions = sorted(p.index for p in space.positions if p.index is not None)
        modules = list(space.modules) if space else ["ulsam"]
        trained = [
            t
            for t in self.trials
            if t.state == optuna.trial.TrialState.COMPLETE
            and is_search_trial(t.user_attrs)
            and Record.of(t.user_attrs).trained_seeds
            and Record.of(t.user_attrs).rung == 0
        ]
        distributions = trained[0].distributions if trained else {}
        paths = self._position_names(positions)
        return {
            "effects": estimate_effects(
                observations,
                positions,
                modules,
                names=paths,
                width_label=self.width_label,
            ),
            "effects_rung": rung,
            "effects_candidates": len(self.results[rung]),
            "effects_observations": len(observations),
            "importance": importance(trained, distributions, [n for n in names if n in distributions]),
            # A brought network's position numbers by module path (the parameters name numbers).
            **({"position_names": {str(i): path for i, path in paths.items()}} if paths else {}),
        }

    @property
    def space(self) -> SearchSpace | None:
        """The search space the study was made with (its text is part of the identity)."""
        import yaml

        text = (self.user_attrs.get("identity") or {}).get("space")
        try:
            return SearchSpace.model_validate(yaml.safe_load(text)) if text else None
        except (ValueError, yaml.YAMLError):
            return None

    def test_summary(self, key: str) -> tuple[float, float | None, int] | None:
        """Mean test accuracy, its SE over seeds and the seed count of a confirmed candidate."""
        found = self.tests.get(key)
        if not found:
            return None
        summary = summarize([found[s] for s in sorted(found)])
        return summary.mean, summary.se, summary.n

    def _test_notes(self) -> list[str]:
        split = self.user_attrs.get("split") or {}
        if split and not split.get("test_images"):
            return ["the data has no test part: no test figure exists (give a test part to get one)"]
        return []

    def _candidate(self, entry: Ranked) -> dict[str, Any]:
        record = self.record(entry.key)
        width = float(record.width_mult or 0)
        call = network_of_attrs(str(record.backbone), self.network).code(width, record.shown_plan)
        fidelity = self.ladder.fidelities[entry.rung]
        comparison = entry.comparison
        return {
            "trial": self._first_number(entry.key),
            "candidate": entry.key,
            "plan": record.plan,
            **({"where": record.where} if record.where is not None else {}),
            "backbone": record.backbone,
            "width_mult": record.width_mult,
            "width_label": self.width_label(width),
            "groups": record.groups,
            "stage": entry.stage,
            "epochs": fidelity.epochs,
            "images": fidelity.images,
            "seeds": list(entry.seeds),
            "accuracies": list(entry.accuracies),
            "accuracy": entry.mean,
            "accuracy_se": entry.se,
            "tied_with_best": entry.tied_with_best,
            "difference_to_best": None
            if comparison is None
            else {
                "seeds": comparison.n,
                "mean": comparison.difference,
                "ci_low": comparison.ci_low,
                "ci_high": comparison.ci_high,
                "p_value": comparison.p_value,
            },
            "macs": record.macs,
            "params": record.params,
            "latency_ms": self.costs[entry.key].latency_ms,
            "predicted_latency_ms": self.costs[entry.key].predicted_ms,
            **self._test_fields(entry),
            "create_network": call,
        }

    def _test_fields(self, entry: Ranked) -> dict[str, Any]:
        """Test accuracy over the confirmation's seeds (only confirmed candidates have one)."""
        summary = self.test_summary(entry.key) if entry.stage == "confirm" else None
        if summary is None:
            return {"test_accuracy": None, "test_accuracy_se": None, "test_seeds": 0}
        return {"test_accuracy": summary[0], "test_accuracy_se": summary[1], "test_seeds": summary[2]}

    def _first_number(self, key: str) -> int:
        return next(
            t.number
            for t in self.trials
            if t.state == optuna.trial.TrialState.COMPLETE and Record.of(t.user_attrs).candidate == key
        )


def best_candidates(study: optuna.Study, top: int = 5) -> dict[str, Any]:
    """``ulsam-nas best --json`` of a study (see ``StudyResults.best``)."""
    return StudyResults.load(study).best(top)


def training_by_stage(trials: list[optuna.trial.FrozenTrial], ladder: Ladder) -> list[dict[str, Any]]:
    """How much training each stage spent: trials, seed runs, candidate-epochs (one epoch at the
    first rung's image count = 1) and seconds."""
    rows: dict[str, dict[str, Any]] = {
        name: {"stage": name, "trials": 0, "seed_runs": 0, "candidate_epochs": 0.0, "train_seconds": 0.0}
        for name in ladder.stage_names()
    }
    for trial in trials:
        record, name = Record.of(trial.user_attrs), stage_of(trial.user_attrs)
        if name not in rows or trial.state not in FINISHED or record.infeasible:
            continue
        row = rows[name]
        row["trials"] += 1
        row["seed_runs"] += len(record.trained_seeds)
        row["candidate_epochs"] += record.candidate_epochs
        row["train_seconds"] += record.train_seconds or 0.0
    return list(rows.values())


def best_text(result: dict[str, Any]) -> str:
    """``best`` for people: the recommendation, the ranked candidates, noise and training spent."""
    lines = [
        f"Study {result['study']!r} (settings {result['settings']}): {result['scored_trials']} scored "
        f"trials, {result['trained_trials']} trained.",
        f"Recommendation: {result['recommendation']}.",
    ]
    if result["detectable_difference"] is not None:
        lines.append(
            f"Smallest difference the final stage detects at 80% power: "
            f"{result['detectable_difference'] * 100:.2f} points."
        )
    if result.get("trade_off"):
        lines.append(f"Trade-off at this budget: {result['trade_off']['sentence']}.")
    if result.get("replication"):
        lines.append(f"Replication: {result['replication']['sentence']}.")
    if result.get("fidelity_check"):
        lines.append(f"At a longer training: {result['fidelity_check']['sentence']}.")
    if result.get("latency_here"):
        from ulsam_nas.search.latency import latency_here_lines

        for latency in result["latency_here"]:
            lines += latency_here_lines(latency)
    if result.get("latency_device"):
        lines.append(
            f"Latency: predicted on {result['latency_device']} (the study's table); measured on "
            "the device that trained the candidate, where it was trained."
        )
    lines += [f"Note: {note}." for note in result["notes"]]
    lines.append("")
    for i, c in enumerate(result["candidates"], 1):
        here = [
            f"{latency['by_candidate'][c['candidate']]:.3f} ms predicted ({latency['runtime']})"
            for latency in result.get("latency_here") or []
            if c["candidate"] in latency.get("by_candidate", {})
        ]
        shown = ", ".join(here) or None
        lines.append(_candidate_text(i, c, best_confirmed=i == 1 and result["confirmed"], here=shown))
    lines.append("")
    lines.append("Seed noise per fidelity (sd in points; reference = widest plain backbone in budget):")
    lines += [_noise_text(row) for row in result["noise"]]
    lines.append("Training spent per stage:")
    for row in result["training"]:
        lines.append(
            f"  {row['stage']}: {row['trials']} trials, {row['seed_runs']} seed runs, "
            f"{row['candidate_epochs']:.1f} candidate-epochs, {row['train_seconds']:.0f} s"
        )
    if result.get("infeasible_draws"):
        lines.append(
            f"  infeasible draws (constraints violated, never trained): {result['infeasible_draws']}"
        )
    lines += _effects_text(result)
    return "\n".join(lines) + "\n"


def _effects_text(result: dict[str, Any]) -> list[str]:
    if not result.get("effects"):
        return []
    lines = [
        f"Factor effects at rung {result['effects_rung']}, from {result['effects_observations']} trained "
        f"runs of {result['effects_candidates']} candidates (linear model blocked on seed, 95% intervals):"
    ]
    lines += [f"  {effect_sentence(entry)}" for entry in result["effects"]]
    if result.get("importance"):
        ranked = sorted(result["importance"].items(), key=lambda item: -item[1])
        paths = result.get("position_names", {})

        def named(parameter: str) -> str:
            path = paths.get(parameter[2:]) if parameter.startswith("at") else None
            return f"{parameter} ({path})" if path else parameter

        lines.append(
            "  Optuna's PED-ANOVA importance: " + ", ".join(f"{named(k)} {v:.2f}" for k, v in ranked)
        )
    return lines


def trade_off_sentence(
    ours: str, plain: str, mean: float, low: float | None, high: float | None, seeds: int, macs: int
) -> str:
    """ "replace@9 g4 (α 0.34) − plain (α 0.31): +0.4 points [−0.1, +0.9] over 12 paired seeds"."""
    interval = f" [{low * 100:+.2f}, {high * 100:+.2f}]" if low is not None and high is not None else ""
    verdict = (
        "no difference resolved"
        if low is None or high is None or low <= 0 <= high
        else ("better" if mean > 0 else "worse")
    )
    return (
        f"{ours} − {plain} (the widest plain network inside the budget) = {mean * 100:+.2f} points{interval} "
        f"over {seeds} paired seeds ({verdict}; {macs / 1e6:+.3f} MMACs)"
    )


def _candidate_text(rank: int, c: dict[str, Any], best_confirmed: bool, here: str | None = None) -> str:
    latency = f"{c['latency_ms']:.2f} ms" if c["latency_ms"] is not None else "-"
    beside = []
    if c.get("predicted_latency_ms") is not None:
        study = " (the study's table)" if here is not None else ""
        beside.append(f"{c['predicted_latency_ms']:.2f} ms predicted{study}")
    if here is not None:
        beside.append(here)
    if beside:
        latency = f"{latency} measured, {', '.join(beside)}"
    se = f" ± {c['accuracy_se']:.4f}" if c["accuracy_se"] is not None else ""
    test = ""
    if c.get("test_accuracy") is not None:
        test_se = f" ± {c['test_accuracy_se']:.4f}" if c["test_accuracy_se"] is not None else ""
        test = f"; test {c['test_accuracy']:.4f}{test_se}"
    tie = (
        "best"
        if best_confirmed
        else {True: "tied with best", False: "worse than best", None: ""}[c["tied_with_best"]]
    )
    return (
        f"{rank}. validation accuracy {c['accuracy']:.4f}{se} ({len(c['seeds'])} seeds, {c['stage']}, "
        f"{c['epochs']} epochs{test}) {tie}\n"
        f"   {c['macs'] / 1e6:.3f} MMACs  {c['params']:,} params  latency {latency}  "
        f"{c['width_label']}  plan {c.get('where', c['plan']) or '(none)'}\n"
        f"   {c['create_network']}"
    )


def _noise_text(row: dict[str, Any]) -> str:
    ref = (
        f"reference sd {row['reference_sd'] * 100:.2f} over {row['reference_seeds']} seeds"
        if row["reference_sd"] is not None
        else f"reference: {row['reference_seeds']} seed(s), no spread"
    )
    pooled = f", pooled sd {row['pooled_sd'] * 100:.2f} ({row['pooled_dof']} df)" if row["pooled_sd"] else ""
    images = "all" if row["images"] is None else f"{row['images']:,}"
    return f"  rung {row['rung']} ({row['epochs']} epochs × {images} images): {ref}{pooled}"


def check_best_target(path: str | None, result: dict[str, Any]) -> None:
    """Refuse to replace a ``best`` output that a study with other settings wrote (its stamp,
    in the text's first line or the JSON's ``settings``); any other file is the user's to
    replace."""
    import json
    import re
    from pathlib import Path

    if path is None or not Path(path).is_file():
        return
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    found = re.search(r"^Study '.*' \(settings ([0-9a-f]{12})\)", text)
    stamp = found.group(1) if found else None
    if stamp is None:
        try:
            stamp = json.loads(text).get("settings")
        except (json.JSONDecodeError, AttributeError):
            stamp = None
    if stamp is not None and stamp != result["settings"]:
        raise InvalidInput(
            f"{path} holds the best configurations of a study with other settings ({stamp}, this one "
            f"{result['settings']}); give another -o FILE"
        )
