"""Model solutions, one folder per assignment pack (never shipped to students)."""
