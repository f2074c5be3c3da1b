"""Learners' labs: per-learner jupyter-servers on their workspaces (issue 7, in progress)."""
