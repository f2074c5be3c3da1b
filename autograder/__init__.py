"""Grading with nbgrader on a warm pool of sandboxed kernels.

Flask-free by design: paths and plain values in, frozen results out, so a grading host needs
neither Flask nor the LMS. It must never import flask or lms. The contract it implements is in
docs/architecture.md (`python -m autograder grade ...`).

- grade.py: the pipeline (nbgrader's sanitizing preprocessors, execution, nbgrader's scoring);
- pool.py, forkserver.py, sandbox.py: warm kernels forked in a bubblewrap sandbox;
- guard.py: what keeps learner code from silencing the tests that grade it;
- execute.py: nbclient with nbgrader's Execute settings and the guard;
- feedback.py: sanitized feedback HTML; gpu.py: GPU slots; stock.py: stock nbgrader, the reference.
"""

import sys

# nbgrader imports jupyter_server, whose event schemas make jsonschema import rfc3987_syntax,
# which compiles a grammar for 2.5 s at every start. Grading never validates IRIs: skip it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
