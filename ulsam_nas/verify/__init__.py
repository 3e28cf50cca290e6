"""Checking closed forms against traced counts of fvcore, ptflops and torch's FlopCounterMode."""

from ulsam_nas.verify.cases import Case, NetworkCase, attention_cases, network_cases
from ulsam_nas.verify.runner import Explanation, VerifyResult, explain, verify

__all__ = [
    "Case",
    "Explanation",
    "NetworkCase",
    "VerifyResult",
    "attention_cases",
    "explain",
    "network_cases",
    "verify",
]
