"""Domain services: module-level verbs, each public one a transaction ending in commit.

Views, the CLI and the queue worker all go through these, so each rule lives once.
"""


class ServiceError(Exception):
    """A domain rule was broken; the message is shown to the user as it is."""
