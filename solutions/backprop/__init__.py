"""Model solutions for the "Exercise 3: Backpropagation" sheet (derivations and reference code)."""
