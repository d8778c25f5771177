"""Sample answers for Exercise 3: the ``demo`` batch and the generic tests' catalogue.

Each entry is the source of an answer cell. The cells run after the notebook's given helpers, so
``np``, ``softmax`` (row-wise) and ``relu`` are defined.
"""

from __future__ import annotations

CORRECT: dict[str, str] = {
    "q1a": "def sigmoid_grad(x):\n    s = 0.5 * (1 + np.tanh(x / 2))\n    return s * (1 - s)\n",
    "q1b": "def tanh_grad(x):\n    return 1 - np.tanh(x) ** 2\n",
    "q1c": "def relu_grad(x):\n    return (x > 0).astype(float)\n",
    "q2": "def linear_backward(X, W, b, dY):\n    return dY @ W.T, X.T @ dY, dY.sum(axis=0)\n",
    "q3": "def softmax_ce_batch_grad(Z, Y):\n    return (softmax(Z) - Y) / len(Z)\n",
    "q4": (
        "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
        "    A = X @ W1 + b1\n"
        "    H = relu(A)\n"
        "    dZ = (softmax(H @ W2 + b2) - Y) / len(X)\n"
        "    dA = (dZ @ W2.T) * (A > 0)\n"
        "    return X.T @ dA, dA.sum(axis=0), H.T @ dZ, dZ.sum(axis=0)\n"
    ),
}
"""One correct answer per question, each on its own (the generic tests run them one by one)."""

CHAINED_Q4 = (
    "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
    "    A = X @ W1 + b1\n"
    "    H = relu(A)\n"
    "    dZ = softmax_ce_batch_grad(H @ W2 + b2, Y)\n"
    "    dH, dW2, db2 = linear_backward(H, W2, b2, dZ)\n"
    "    _, dW1, db1 = linear_backward(X, W1, b1, dH * relu_grad(A.ravel()).reshape(A.shape))\n"
    "    return dW1, db1, dW2, db2\n"
)
"""q4 written with the student's own answers of q1c, q2 and q3, as the sheet suggests (correct
when they are)."""

EQUIVALENT: dict[str, list[str]] = {
    "q1a": [
        "def sigmoid_grad(x):\n    e = np.exp(-np.abs(x))\n    return e / (1 + e) ** 2\n",
        # the textbook sigmoid overflows in exp(-x) for x ~ -1000, but 1 / inf = 0 is exact
        "def sigmoid_grad(x):\n    s = 1 / (1 + np.exp(-x))\n    return s * (1 - s)\n",
    ],
    "q1b": [
        "def tanh_grad(x):\n    return 1 / np.cosh(x) ** 2\n",
        "def tanh_grad(x):\n    t = np.tanh(x)\n    return (1 - t) * (1 + t)\n",
    ],
    "q1c": [
        "def relu_grad(x):\n    return np.where(x > 0, 1.0, 0.0)\n",
        "def relu_grad(x):\n    return np.heaviside(x, 0.0)\n",
        "def relu_grad(x):\n    return x > 0\n",
        "def relu_grad(x):\n    return np.array([1.0 if v > 0 else 0.0 for v in x])\n",
    ],
    "q2": [
        (
            "def linear_backward(X, W, b, dY):\n"
            "    dX = np.einsum('nj,ij->ni', dY, W)\n"
            "    dW = np.einsum('ni,nj->ij', X, dY)\n"
            "    return dX, dW, np.ones(len(X)) @ dY\n"
        ),
        (
            "def linear_backward(X, W, b, dY):\n"
            "    dW = sum(np.outer(x, g) for x, g in zip(X, dY))\n"
            "    return [dY.dot(W.T), dW, dY.sum(0)]\n"
        ),
    ],
    "q3": [
        (
            "def softmax_ce_batch_grad(Z, Y):\n"
            "    Z = Z - Z.max(axis=1, keepdims=True)\n"
            "    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)\n"
            "    return (P - Y) / Z.shape[0]\n"
        ),
        (
            "def softmax_ce_batch_grad(Z, Y):\n"
            "    return np.array([softmax(z) - y for z, y in zip(Z, Y)]) / len(Z)\n"
        ),
    ],
    "q4": [
        (
            "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
            "    B = X.shape[0]\n"
            "    A = X @ W1 + b1\n"
            "    H = np.maximum(A, 0)\n"
            "    G = (softmax(H @ W2 + b2) - Y) / B\n"
            "    GA = (G @ W2.T) * np.heaviside(A, 0.0)\n"
            "    return X.T @ GA, GA.sum(0), H.T @ G, G.sum(0)\n"
        ),
        (
            "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
            "    A = X @ W1 + b1\n"
            "    H = relu(A)\n"
            "    G = (softmax(H @ W2 + b2) - Y) / len(X)\n"
            "    GA = np.where(H > 0, G @ W2.T, 0.0)\n"
            "    return (X.T @ GA, GA.sum(axis=0), H.T @ G, G.sum(axis=0))\n"
        ),
    ],
}
"""Other correct forms, each of which must earn full points."""

MISTAKES: list[tuple[str, str, str]] = [
    (
        "q1a",
        "not_stable",
        "def sigmoid_grad(x):\n    return np.exp(-x) / (1 + np.exp(-x)) ** 2\n",
    ),
    ("q1a", "wrong_value", "def sigmoid_grad(x):\n    return 1 / (1 + np.exp(-x))\n"),
    ("q1a", "wrong_type", "def sigmoid_grad(x):\n    s = 1 / (1 + np.exp(-x))\n    s * (1 - s)\n"),
    (
        "q1a",
        "edge_case",
        (
            "def sigmoid_grad(x):\n    e = np.exp(-np.abs(x))\n"
            "    return np.squeeze(e / (1 + e) ** 2)\n"
        ),
    ),
    ("q1b", "sign_flipped", "def tanh_grad(x):\n    return np.tanh(x) ** 2 - 1\n"),
    ("q1b", "wrong_value", "def tanh_grad(x):\n    return 1 - np.tanh(x)\n"),
    ("q1b", "exception", "def tanh_grad(x):\n    return 1 - math.tanh(x) ** 2\n"),
    ("q1c", "wrong_value", "def relu_grad(x):\n    return relu(x)\n"),
    ("q1c", "wrong_value", "def relu_grad(x):\n    return np.sign(x)\n"),
    ("q1c", "wrong_shape", "def relu_grad(x):\n    return np.diag((x > 0).astype(float))\n"),
    (
        "q2",
        "transposed",
        "def linear_backward(X, W, b, dY):\n    return dY @ W.T, dY.T @ X, dY.sum(axis=0)\n",
    ),
    ("q2", "wrong_shape", "def linear_backward(X, W, b, dY):\n    return dY @ W.T, X.T @ dY, dY\n"),
    (
        "q2",
        "scaled",
        "def linear_backward(X, W, b, dY):\n    return dY @ W.T, X.T @ dY, dY.mean(axis=0)\n",
    ),
    (
        "q2",
        "sign_flipped",
        "def linear_backward(X, W, b, dY):\n    return -dY @ W.T, X.T @ dY, dY.sum(axis=0)\n",
    ),
    (
        "q2",
        "edge_case",
        (
            "def linear_backward(X, W, b, dY):\n"
            "    return np.squeeze(dY @ W.T), X.T @ dY, dY.sum(axis=0)\n"
        ),
    ),
    ("q2", "wrong_type", "def linear_backward(X, W, b, dY):\n    return X.T @ dY\n"),
    ("q3", "scaled", "def softmax_ce_batch_grad(Z, Y):\n    return softmax(Z) - Y\n"),
    (
        "q3",
        "not_stable",
        (
            "def softmax_ce_batch_grad(Z, Y):\n"
            "    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)\n"
            "    return (P - Y) / len(Z)\n"
        ),
    ),
    (
        "q3",
        "sign_flipped",
        "def softmax_ce_batch_grad(Z, Y):\n    return (Y - softmax(Z)) / len(Z)\n",
    ),
    (
        "q3",
        "wrong_value",
        "def softmax_ce_batch_grad(Z, Y):\n    return (softmax(Z.T).T - Y) / len(Z)\n",
    ),
    ("q3", "dL_dyhat", "def softmax_ce_batch_grad(Z, Y):\n    return -Y / softmax(Z)\n"),
    ("q3", "dL_dyhat", "def softmax_ce_batch_grad(Z, Y):\n    return -Y / softmax(Z) / len(Z)\n"),
    (
        "q4",
        "scaled",
        (
            "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
            "    A = X @ W1 + b1\n"
            "    H = relu(A)\n"
            "    G = softmax(H @ W2 + b2) - Y\n"
            "    GA = (G @ W2.T) * (A > 0)\n"
            "    return X.T @ GA, GA.sum(axis=0), H.T @ G, G.sum(axis=0)\n"
        ),
    ),
    (
        "q4",
        "transposed",
        (
            "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
            "    A = X @ W1 + b1\n"
            "    H = relu(A)\n"
            "    G = (softmax(H @ W2 + b2) - Y) / len(X)\n"
            "    GA = (G @ W2.T) * (A > 0)\n"
            "    return X.T @ GA, GA.sum(axis=0), G.T @ H, G.sum(axis=0)\n"
        ),
    ),
    (
        "q4",
        "wrong_shape",
        (
            "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
            "    A = X @ W1 + b1\n"
            "    H = relu(A)\n"
            "    G = (softmax(H @ W2 + b2) - Y) / len(X)\n"
            "    GA = (G @ W2.T) * (A > 0)\n"
            "    return X.T @ GA, GA, H.T @ G, G\n"
        ),
    ),
    ("q4", "timeout", "def mlp_backward(X, Y, W1, b1, W2, b2):\n    while True:\n        pass\n"),
    ("q4", "missing", "mlp_backward = None\n"),
    (
        "q4",
        "missing_relu_mask",
        (
            "def mlp_backward(X, Y, W1, b1, W2, b2):\n"
            "    A = X @ W1 + b1\n"
            "    H = relu(A)\n"
            "    G = (softmax(H @ W2 + b2) - Y) / len(X)\n"
            "    GH = G @ W2.T\n"
            "    return X.T @ GH, GH.sum(axis=0), H.T @ G, G.sum(axis=0)\n"
        ),
    ),
]
"""(question, expected tag, wrong answer): each must lose points on its question with that tag.
The demo's "ben" takes, per question, the last entry whose tag is in ``DEMO_MISTAKES``."""

DEMO_MISTAKES = ("not_stable", "transposed", "dL_dyhat", "missing_relu_mask")
"""ben: q1a's textbook sigmoid' (NaN at |x| ~ 1000), q2's dW transposed, q3 stopped at
dL/dY-hat, q4 without the ReLU mask."""

DEMO_PARTIAL = ("q1a", "q1b", "q1c", "q3")
"""dora answers these and leaves the others blank."""
