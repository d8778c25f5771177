"""The trusted judge: grade untrusted notebooks without sharing memory with them.

The judge (this process) holds the checks and draws the instances. A sandboxed evaluator process
executes the student's cells and calls the student's functions on inputs the judge sends; it
answers with plain numbers only (``.npy`` without pickle). See ``engine.py`` for the judge side,
``evaluator.py`` for the untrusted side, ``sandbox.py`` for the isolation.
"""
