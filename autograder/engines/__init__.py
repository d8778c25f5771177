"""Grading engines. Each turns one submission into one result dict, never raising."""
