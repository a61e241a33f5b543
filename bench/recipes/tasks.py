"""The reasoning-gym tasks the default recipe is checked on (issue #17): the demo's own
task and others of about its difficulty for SmolLM2-135M, none tuned for."""

from __future__ import annotations

DEMO = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "operators": ["+", "-"],
        "allow_parentheses": False, "allow_negation": False}  # fmt: skip

TASKS: dict[str, tuple[str, dict]] = {
    "basic_arithmetic": ("basic_arithmetic", DEMO),  # the demo's
    "products": ("products", {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1}),
    "chain_sum": ("chain_sum", {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1}),
    "gcd": ("gcd", {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 20}),
    "lcm": ("lcm", {"min_numbers": 2, "max_numbers": 2, "min_value": 1, "max_value": 10}),
    "count_bits": ("count_bits", {"min_n": 1, "max_n": 31}),
}
SIZE, EVAL = 400, 64  # the demo's dataset_size and eval_size
