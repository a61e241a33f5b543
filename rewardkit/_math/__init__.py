"""Private engine of :mod:`rewardkit.verifiers.math`.

- :mod:`.normalize`: string clean-up, answer structure, exact number parsing (no sympy).
- :mod:`.compare`: structural comparison (tuples, sets, intervals) and the fast scalar.
- :mod:`.engine`: verdicts, fast path and full path.
- :mod:`.symbolic`: sympy parsing and equality; imported only inside workers.
- :mod:`.texplain`: simple LaTeX rewritten as plain syntax for the fast parser.
- :mod:`.pool` / :mod:`.worker`: the worker processes with a hard deadline.
"""
