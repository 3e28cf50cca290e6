"""Checking closed forms against traced counts of fvcore, ptflops and torch's FlopCounterMode."""

from ulsam_nas.verify.cases import Case, attention_cases
from ulsam_nas.verify.runner import Explanation, VerifyResult, explain, verify

__all__ = ["Case", "Explanation", "VerifyResult", "attention_cases", "explain", "verify"]
