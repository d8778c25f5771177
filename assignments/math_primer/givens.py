"""What the judge may hand to student code in Exercise 2, besides arrays.

Loaded by the sandboxed evaluator (numpy only; nothing of the checks): the f' passed to
``jacobian_elementwise(f_prime, x)`` in 2-1 c, by the name of f.
"""

import numpy as np

GIVENS = {
    "sin": np.cos,
    "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
    "cube": lambda x: 3.0 * x**2,
    "softplus": lambda x: 0.5 * (1.0 + np.tanh(x / 2)),
}
"""Name of f -> f', elementwise on arrays."""
