"""``python -m autograder``."""

from .cli import main

main(prog_name="python -m autograder")
