"""Model solutions for the "Exercise 2: Math Primer" sheet (derivations and reference code)."""
