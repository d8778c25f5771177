"""Sample answers for Exercise 2: the demo batch and the generic tests' catalogue.

``CORRECT`` has one correct answer per question, ``EQUIVALENT`` other correct forms (each must earn
full points), ``MISTAKES`` wrong answers with the tag each must earn (and lose points with).
``DEMO_MISTAKES`` picks the mistakes of the demo's "ben", ``DEMO_PARTIAL`` the questions "dora"
answers.
"""

CORRECT: dict[str, str] = {
    "q1a": "def jacobian_Wx(W, x):\n    return np.array(W, dtype=float)\n",
    "q1b": "def jacobian_xT_WT(W, x):\n    return np.asarray(W, dtype=float).copy()\n",
    "q1c": "def jacobian_elementwise(f_prime, x):\n    return np.diag(f_prime(x))\n",
    "q1d": "def dL_dW(dL_dz, x):\n    return np.outer(dL_dz, x)\n",
    "q2a": (
        "def softmax_diag_derivative(z):\n    s = softmax(z)\n    return s * (1 - s)\n\n"
        "def softmax_jacobian(z):\n    s = softmax(z)\n    return np.diag(s) - np.outer(s, s)\n"
    ),
    "q2b": "def cross_entropy_grad(z, y):\n    return softmax(z) - y\n",
    "q3": "def mse_minimizer(X, y):\n    return np.linalg.solve(X.T @ X, X.T @ y)\n",
}
"""One correct answer per question."""

EQUIVALENT: dict[str, list[str]] = {
    "q1a": [
        (
            "def jacobian_Wx(W, x):\n    n, d = W.shape\n    J = np.zeros((n, d))\n"
            "    for i in range(n):\n        for j in range(d):\n            J[i, j] = W[i, j]\n"
            "    return J\n"
        )
    ],
    "q1c": ["def jacobian_elementwise(f_prime, x):\n    return np.eye(len(x)) * f_prime(x)\n"],
    "q1d": [
        "def dL_dW(dL_dz, x):\n    return np.einsum('i,j->ij', dL_dz, x)\n",
        "def dL_dW(dL_dz, x):\n    return dL_dz[:, None] @ x[None, :]\n",
    ],
    "q2a": [
        (
            "def softmax_diag_derivative(z):\n    return np.diag(softmax_jacobian(z))\n\n"
            "def softmax_jacobian(z):\n    s = softmax(z)[:, None]\n"
            "    return np.diagflat(s) - s @ s.T\n"
        )
    ],
    "q2b": [
        (
            "def cross_entropy_grad(z, y):\n    z = z - z.max()\n"
            "    return np.exp(z) / np.exp(z).sum() * y.sum() - y\n"
        )
    ],
    "q3": [
        "def mse_minimizer(X, y):\n    return np.linalg.inv(X.T @ X) @ X.T @ y\n",
        "def mse_minimizer(X, y):\n    return np.linalg.pinv(X) @ y\n",
        "def mse_minimizer(X, y):\n    return np.linalg.lstsq(X, y, rcond=None)[0]\n",
        (
            "def mse_minimizer(X, y):\n    Q, R = np.linalg.qr(X)\n"
            "    return np.linalg.solve(R, Q.T @ y)\n"
        ),
    ],
}
"""Other correct forms, each of which must earn full points."""

MISTAKES: list[tuple[str, str, str]] = [
    ("q1a", "transposed", "def jacobian_Wx(W, x):\n    return W.T\n"),
    ("q1a", "wrong_type", "def jacobian_Wx(W, x):\n    print(W)\n"),
    ("q1a", "exception", "def jacobian_Wx(W, x):\n    return W @ W\n"),
    ("q1a", "edge_case", "def jacobian_Wx(W, x):\n    return np.squeeze(W)\n"),
    ("q1b", "exception", "def jacobian_xT_WT(W, x):\n    import sys\n    sys.exit(1)\n"),
    ("q1b", "transposed", "def jacobian_xT_WT(W, x):\n    return W.T\n"),
    ("q1b", "wrong_shape", "def jacobian_xT_WT(W, x):\n    return W @ x\n"),
    ("q1c", "missing_diag", "def jacobian_elementwise(f_prime, x):\n    return f_prime(x)\n"),
    (
        "q1c",
        "scaled",
        "def jacobian_elementwise(f_prime, x):\n    return 2 * np.diag(f_prime(x))\n",
    ),
    ("q1d", "transposed", "def dL_dW(dL_dz, x):\n    return np.outer(x, dL_dz)\n"),
    ("q1d", "sign_flipped", "def dL_dW(dL_dz, x):\n    return -np.outer(dL_dz, x)\n"),
    ("q1d", "edge_case", "def dL_dW(dL_dz, x):\n    return np.squeeze(np.outer(dL_dz, x))\n"),
    (
        "q2a",
        "diag_only",
        (
            "def softmax_diag_derivative(z):\n    s = softmax(z)\n    return s * (1 - s)\n\n"
            "def softmax_jacobian(z):\n    s = softmax(z)\n    return np.diag(s * (1 - s))\n"
        ),
    ),
    (
        "q2a",
        "not_stable",
        (
            "def softmax_diag_derivative(z):\n    s = np.exp(z) / np.exp(z).sum()\n"
            "    return s * (1 - s)\n\ndef softmax_jacobian(z):\n    s = np.exp(z) / np.exp(z).sum()\n"
            "    return np.diag(s) - np.outer(s, s)\n"
        ),
    ),
    (
        "q2a",
        "sign_flipped",
        (
            "def softmax_diag_derivative(z):\n    s = softmax(z)\n    return s * (s - 1)\n\n"
            "def softmax_jacobian(z):\n    s = softmax(z)\n    return np.outer(s, s) - np.diag(s)\n"
        ),
    ),
    ("q2b", "dL_dyhat", "def cross_entropy_grad(z, y):\n    return -y / softmax(z)\n"),
    ("q2b", "sign_flipped", "def cross_entropy_grad(z, y):\n    return y - softmax(z)\n"),
    (
        "q2b",
        "not_stable",
        "def cross_entropy_grad(z, y):\n    return np.exp(z) / np.exp(z).sum() - y\n",
    ),
    (
        "q3",
        "scaled",
        "def mse_minimizer(X, y):\n    return 2 * np.linalg.solve(X.T @ X, X.T @ y)\n",
    ),
    ("q3", "wrong_value", "def mse_minimizer(X, y):\n    return X.T @ y / len(y)\n"),
    ("q3", "not_finite", "def mse_minimizer(X, y):\n    return np.full(X.shape[1], np.nan)\n"),
    ("q3", "timeout", "def mse_minimizer(X, y):\n    while True:\n        pass\n"),
    ("q3", "missing", "mse_minimizer = None\n"),
]
"""(question, expected tag, wrong answer): each must lose points on its question with that tag."""

DEMO_MISTAKES = ("transposed", "missing_diag", "not_stable", "dL_dyhat", "scaled")
"""Tags of the mistakes in the demo's ``ben_mistakes`` (per question, the last one listed)."""
DEMO_PARTIAL = ("q1a", "q1b", "q2b")
"""The questions the demo's ``dora_partial`` answers."""
