"""Small studies on generated data, shared by the search, worker, report, fault and bad-input
tests (one definition; test modules do not import each other)."""

from __future__ import annotations

from pathlib import Path

import torch

from ulsam_nas.search.config import load_study_config
from ulsam_nas.search.problem import prepare
from ulsam_nas.search.worker import Search

SPACE = """
backbone: mobilenet_v1
stem: small
width_mults: [0.25, 0.5]
positions:
  - {index: 9, actions: [insert, replace]}
  - {index: 12, actions: [insert]}
groups: [1, 4]
max_modules: 1
paper_plan: replace@9:ulsam:groups=4
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def small_study(tmp_path: Path, budget: float = 12.5, extra: str = "") -> Path:
    """Six trials of MobileNetV1 on 256 generated images (α 0.5 is over a 12.5 MMAC budget)."""
    write(tmp_path / "space.yaml", SPACE)
    return write(
        tmp_path / "study.yaml",
        f"""
name: t
space: space.yaml
budget: {{mmacs: {budget}}}
proxy: {{data: synthetic, train_images: 256, val_images: 128, epochs: 1, batch_size: 64}}
trials: 6
{extra}
""",
    )


def run_search(path: Path, **overrides: object) -> Search:
    """One worker runs a study file to its target, on one thread."""
    torch.set_num_threads(1)
    search = Search(prepare(load_study_config(path, overrides)))
    search.run(search.config.trials)
    return search
