"""Grading with nbgrader on a warm pool of sandboxed kernels.

Flask-free by design: paths and plain values in, frozen results out, so a grading host needs
neither Flask nor the LMS. It must never import flask or lms. The contract it implements is in
ARCHITECTURE.md (`python -m autograder grade ...`); the package is filled in by the autograder
issue and is empty until then.
"""
