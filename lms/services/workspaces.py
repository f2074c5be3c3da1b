"""Learners' lab workspaces: the folder a learner's lab (jupyter-server) works in.

Each learner has one folder, the storage's workspaces/<user id>/ (lms.storage), with a folder per
assignment (<course>/<assignment>/) that starts as a copy of the assignment's release
(notebooks and data) the first time the lab opens it, and is then the learner's: opening it
again never overwrites their work, and a newer release only adds files they do not have.

The learner's code writes in this folder (from a sandboxed kernel), so the LMS treats what it
finds there as untrusted: it never follows a link out of the folder, reads only regular files,
and caps their size; a notebook taken from it for submission passes the same checks as an
upload (lms.services.submissions).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _

from lms.models import Assignment, Cohort, User, utcnow
from lms.services import ServiceError, submissions
from lms.storage import storage


class WorkspaceError(ServiceError):
    pass


@dataclass(frozen=True)
class Workspace:
    root: Path  # the learner's whole workspace: what their lab server serves
    folder: Path  # this assignment's folder in it
    notebooks: list[str]  # the assignment's notebook file names, in order

    @property
    def relative(self) -> str:
        """The assignment folder as the lab sees it (relative to the workspace root)."""
        return self.folder.relative_to(self.root).as_posix()


def root_of(user: User) -> Path:
    return storage().local_folder(f"workspaces/{user.id}")


def folder_of(user: User, assignment: Assignment) -> Path:
    return root_of(user) / assignment.course.slug / assignment.slug


def open_workspace(user: User, assignment: Assignment) -> Workspace:
    """The learner's folder for the assignment, with every file of the current release that
    it does not hold yet (the first time: all of them). Existing files are never touched."""
    # Releases are made by `flask lms release` (nbgrader, never in the web process): an
    # assignment without one cannot be opened yet.
    release = assignment.current_release
    if release is None:
        raise WorkspaceError(_("This assignment is not released yet."))
    folder = folder_of(user, assignment)
    _make_dirs(root_of(user), folder)
    for name in storage().list(release.path):
        target = folder / name
        if not os.path.lexists(target):
            _make_dirs(folder, target.parent)
            _write_new(storage().read(f"{release.path}/{name}"), target)
            _adopt(target, root_of(user))
    return Workspace(root_of(user), folder, [f"{nb.name}.ipynb" for nb in assignment.notebooks])


def reset(user: User, assignment: Assignment, notebook: str, now: datetime | None = None) -> Path:
    """Put the released notebook back in the learner's folder. Their copy is kept beside it,
    renamed "<name>.before-reset-<UTC time>.ipynb" ("...-2.ipynb" if that name is taken);
    returns that path."""
    workspace = open_workspace(user, assignment)
    if notebook not in workspace.notebooks:
        raise WorkspaceError(_("%(name)s is not a notebook of this assignment.", name=notebook))
    release = assignment.current_release
    assert release is not None  # open_workspace refuses an unreleased assignment
    current = workspace.folder / notebook
    stamp = (now or utcnow()).strftime("%Y%m%d-%H%M%S")
    kept = current.with_name(f"{current.stem}.before-reset-{stamp}.ipynb")
    taken = 1
    while os.path.lexists(kept):  # reset again within the second: never over the first copy
        taken += 1
        kept = current.with_name(f"{current.stem}.before-reset-{stamp}-{taken}.ipynb")
    if os.path.lexists(current):
        os.replace(current, kept)  # a link is renamed as the link, never followed
    _write_new(storage().read(f"{release.path}/{notebook}"), current)
    _adopt(current, root_of(user))
    return kept


def submit(
    user: User, assignment: Assignment, cohort: Cohort, *, key: str | None = None
) -> submissions.Outcome:
    """The saved notebooks of the learner's folder as a new submission, through the same
    rules as an upload (checks, deadlines, one attempt per retry)."""
    folder = folder_of(user, assignment)
    uploads = [
        submissions.Upload(f"{nb.name}.ipynb", read_regular_file(folder / f"{nb.name}.ipynb"))
        for nb in assignment.notebooks
    ]
    return submissions.submit(user, assignment, cohort, uploads, key=key, via="lab")


def read_regular_file(path: Path) -> bytes:
    """The bytes of a regular file no larger than LMS_MAX_UPLOAD_MB, opened without following
    a link; a clear WorkspaceError otherwise."""
    limit = int(current_app.config["MAX_UPLOAD_MB"]) * 1024 * 1024
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise WorkspaceError(
            _("%(name)s is not in your lab folder: save it there first.", name=path.name)
        ) from None
    except OSError as e:
        if e.errno == errno.ELOOP:  # a symbolic link
            raise WorkspaceError(_("%(name)s is not a regular file.", name=path.name)) from None
        raise
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise WorkspaceError(_("%(name)s is not a regular file.", name=path.name))
        if info.st_size > limit:
            raise WorkspaceError(
                _(
                    "%(name)s is larger than %(mb)s MB.",
                    name=path.name,
                    mb=current_app.config["MAX_UPLOAD_MB"],
                )
            )
        return f.read(limit + 1)[:limit]


def _make_dirs(base: Path, target: Path) -> None:
    """Create target (under base) as real folders; refuse a link or file in the way."""
    base.mkdir(parents=True, exist_ok=True)
    current = base
    for part in target.relative_to(base).parts:
        current = current / part
        if os.path.islink(current) or (current.exists() and not current.is_dir()):
            raise WorkspaceError(
                _("%(name)s in your lab folder is in the way: rename it.", name=current.name)
            )
        if not current.exists():
            current.mkdir()
            _adopt(current, base)


def _adopt(path: Path, root: Path) -> None:
    """What the LMS writes in a workspace belongs to whoever owns the workspace: its lab
    server's own uid once the lab hub has started it (as root), so the running lab can keep
    saving it. Never through a link."""
    if os.geteuid() != 0:
        return
    info = os.stat(root, follow_symlinks=False)
    os.chown(path, info.st_uid, info.st_gid, follow_symlinks=False)


def _write_new(data: bytes, target: Path) -> None:
    """Write a release file to a path that must not exist yet (O_EXCL: never through a link
    the learner left there)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
