"""Autograding kit for the "Exercise 2: Math Primer" sheet, built on Otter-Grader.

This package is kept import-light on purpose: `autograder.checks` is shipped inside the student
notebook folder and the Otter autograder zip, where only numpy (and sympy) are guaranteed.
"""
