"""Attention modules, each in its own file beside its closed-form cost.

Adding a module: write ``ulsam_nas/attention/<key>.py`` (config, nn.Module, exact and paper
costs, one ``register_attention`` call) and add its key to ``MODULE_FILES``.
"""

import importlib

from ulsam_nas.attention.registry import (
    AttentionSpec,
    attention_cost,
    attention_formula,
    create_attention,
    get_attention,
    list_attention,
    register_attention,
)

# Import order is registry order: the ULSAM paper's comparison table (PAPER_MODULES), then the
# light modules papers have compared against since, by year.
PAPER_MODULES = ("non_local", "a2", "se", "bam", "cbam", "ulsam")
MODULE_FILES = (*PAPER_MODULES, "gc", "eca", "triplet", "simam", "ca")
for _name in MODULE_FILES:
    importlib.import_module(f"ulsam_nas.attention.{_name}")

__all__ = [
    "MODULE_FILES",
    "PAPER_MODULES",
    "AttentionSpec",
    "attention_cost",
    "attention_formula",
    "create_attention",
    "get_attention",
    "list_attention",
    "register_attention",
]
