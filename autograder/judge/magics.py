"""IPython's cell transformer for the evaluators (``%magic``, ``!cmd`` and ``?`` lines to Python
calls on the stub shell).

Apart from ``evaluator.py`` so that only the evaluators' template process imports IPython (it
preloads this module, see ``engine.warm_context``): the judge's own process never needs it, and
importing it took a quarter of ``grade``'s start-up before the first result.
"""

from __future__ import annotations

try:
    from IPython.core.inputtransformer2 import TransformerManager

    TRANSFORMER: TransformerManager | None = TransformerManager()
except ImportError:  # pragma: no cover - IPython comes with otter-grader
    TRANSFORMER = None
