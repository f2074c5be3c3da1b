"""The guard's trusted core: it runs in a thread of its own inside a grading kernel.

This module is never imported by name: autograder.guard loads a private copy of it (not in
sys.modules, with a private copy of the builtins taken before any learner code ran), so that no
name it looks up can be rebound by learner code. Its objects are reachable only from the guard's
own thread (whose frames learner code cannot list: sys._current_frames and the gc module's
object walks are refused by the guard's audit hook) and from closures of that hook.

What it does, in order, whenever the kernel's main thread asks (autograder.guard explains why):
builtins first, then the namespaces of the kernel's own packages (IPython, ipykernel, traitlets,
zmq, asyncio...) are put back as they were before learner code ran, using only identity checks
and C-level writes; only then is any of their Python code used. Replaced objects are kept in a
graveyard that the main thread empties, so that no learner finalizer runs in this thread.

Over 400 lines on purpose: it is loaded as one private copy (above) and may import nothing
that learner code could reach.
"""

from __future__ import annotations

import _thread
import json as _json_module
import signal
from _ast import (
    Call,
    Expr,
    Interactive,
    Load,
    Module,
    Name,
)
from _hashlib import hmac_digest
from collections.abc import Iterable
from functools import partial
from hashlib import sha256
from itertools import chain
from marshal import dumps as marshal_dumps
from operator import attrgetter, is_, methodcaller
from signal import SIGINT, default_int_handler, getsignal
from signal import signal as set_signal
from sys import (
    _current_frames,
    getprofile,
    getswitchinterval,
    gettrace,
    setprofile,
    setswitchinterval,
    settrace,
)
from types import (
    BuiltinFunctionType,
    CodeType,
    FunctionType,
    MethodType,
    ModuleType,
)
from typing import Any

_dumps = _json_module.dumps
_VALUES = methodcaller("values")
_GET_CODE = attrgetter("__code__")
_GET_DEFAULTS = attrgetter("__defaults__")
_GET_KWDEFAULTS = attrgetter("__kwdefaults__")
_MISSING = object()
# A class's MRO read through type's own descriptor: never a metaclass's attribute hook.
_MRO = type.__dict__["__mro__"].__get__
PyCF_ONLY_AST = 0x400
PyCF_ALLOW_TOP_LEVEL_AWAIT = 0x2000
# __future__ features a compiler remembers once a cell used them (codeop's _features).
FUTURE_FLAGS = 0x20000 | 0x40000 | 0x80000 | 0x100000 | 0x200000 | 0x400000 | 0x1000000
# Swapped by ipykernel for every request (stdin forwarding): not a trick.
VOLATILE_BUILTINS = frozenset({"input", "raw_input"})
# The kernel's own packages: put back before any of their code runs in this thread.
CORE_PACKAGES = (
    "IPython", "ipykernel", "jupyter_client", "zmq", "traitlets", "tornado", "comm",
    "asyncio", "ast", "codeop", "types", "inspect", "traceback", "linecache", "os", "posix",
    "signal", "threading", "io", "json", "hmac", "hashlib", "warnings", "unittest", "math",
    "functools", "operator", "contextlib", "importlib", "abc", "copy", "re", "collections",
    "weakref", "queue", "selectors", "socket", "matplotlib_inline",
)  # fmt: skip
# Callback modules allowed to stay registered on IPython events while a test runs.
TRUSTED_CALLBACK_PREFIXES = ("IPython.", "ipykernel.", "matplotlib_inline.", "ipywidgets.")
MAX_CHANGES = 20
PRE_RUN_EVENTS = ("pre_execute", "pre_run_cell")


def _watched_value(value: Any) -> bool:
    """Functions, classes and modules: what a trick replaces (data changes legitimately)."""
    return callable(value) or isinstance(value, ModuleType | classmethod | staticmethod)


class _Space:
    """One module's or class's namespace: all its values (fast check) and the watched ones."""

    __slots__ = ("owner", "name", "is_class", "space", "values", "keys", "watched")

    def __init__(self, owner: Any, name: str) -> None:
        self.owner = owner
        self.name = name
        self.is_class = type(owner) is not ModuleType
        self.space = vars(owner)  # a live view for a class
        self.values = tuple(self.space.values())
        self.keys = frozenset(self.space.keys())
        self.watched = {
            key: value
            for key, value in list(self.space.items())
            if _watched_value(value) and key not in ("__dict__", "__weakref__", "__doc__")
        }

    def unchanged(self) -> bool:
        """Nothing at all changed: one C loop over the values, the common case."""
        return len(self.space) == len(self.values) and all(
            map(is_, self.space.values(), self.values)
        )

    def replaced(self) -> list[str]:
        """Watched attributes that now hold another object (a deleted one fails by itself)."""
        space = self.space
        return [key for key, value in self.watched.items() if space.get(key, value) is not value]

    def added(self) -> list[str]:
        """Names a class did not have that shadow an inherited one, or special methods (a new
        __getattribute__, say). Modules legitimately gain names (submodules imported later)."""
        if not self.is_class:
            return []
        keys = self.keys
        new = [key for key in list(self.space.keys()) if key not in keys]
        if not new:
            return []
        bases = _MRO(self.owner)[1:]
        space = self.space
        found = []
        for key in new:
            value = space.get(key)
            if not (_is_callable(value) or hasattr(type(value), "__get__")):
                continue  # data (a singleton's _instance, a cache): not a way to run code
            if (key[:2] == "__" and key[-2:] == "__") or any(key in vars(b) for b in bases):
                found.append(key)
        return found

    def rebaseline(self) -> None:
        """Data changed, nothing watched did: take the new values for the fast check."""
        self.values = tuple(self.space.values())


class _Functions:
    """A package's functions and their code, defaults and keyword defaults."""

    __slots__ = ("functions", "codes", "defaults", "kwdefaults")

    def __init__(self, functions: list[FunctionType]) -> None:
        self.functions = tuple(functions)
        self.codes = tuple(f.__code__ for f in functions)
        self.defaults = tuple(f.__defaults__ for f in functions)
        self.kwdefaults = tuple(f.__kwdefaults__ for f in functions)

    def changed(self) -> bool:
        return not (
            all(map(is_, map(_GET_CODE, self.functions), self.codes))
            and all(map(is_, map(_GET_DEFAULTS, self.functions), self.defaults))
            and all(map(is_, map(_GET_KWDEFAULTS, self.functions), self.kwdefaults))
        )


def _function(value: Any) -> FunctionType | None:
    kind = type(value)
    if kind is classmethod or kind is staticmethod:
        value = value.__func__
    return value if type(value) is FunctionType else None


class Snapshot:
    """References to the functions, classes and modules of every loaded module, by package.

    A check pays one identity comparison per value (a C loop) for the packages it covers; only
    a namespace in which something changed is looked at in Python. Function code swaps are
    seen by the audit hook (they raise `object.__setattr__`), so function objects are only
    compared when one happened.
    """

    def __init__(self, modules: dict[str, Any]) -> None:
        self.modules = modules  # sys.modules itself
        self.spaces: dict[str, list[_Space]] = {}
        self.flat: dict[str, tuple[tuple[Any, ...], tuple[int, ...], tuple[Any, ...]]] = {}
        self.functions: dict[str, _Functions] = {}
        self.seen_modules: set[str] = set()
        self.static: frozenset[str] = frozenset()

    def add_loaded_modules(self) -> None:
        for name, module in list(self.modules.items()):
            if name in self.seen_modules or type(module) is not ModuleType:
                continue
            self.seen_modules.add(name)
            package = name.partition(".")[0]
            self.flat.pop(package, None)
            spaces = self.spaces.setdefault(package, [])
            functions = list(self.functions[package].functions) if package in self.functions else []
            for owner, owner_name in ((module, name), *self._classes_of(module, name)):
                space = _Space(owner, owner_name)
                spaces.append(space)
                functions += [f for f in map(_function, space.watched.values()) if f is not None]
            self.functions[package] = _Functions(functions)
        self.flat.clear()

    def _flat(self, package: str) -> tuple[tuple[Any, ...], tuple[int, ...], tuple[Any, ...]]:
        flat = self.flat.get(package)
        if flat is None:
            spaces = tuple(s.space for s in self.spaces.get(package, ()))
            values = tuple(chain.from_iterable(map(_VALUES, spaces)))
            flat = self.flat[package] = (spaces, tuple(map(len, spaces)), values)
        return flat

    def build_flat(self) -> None:
        for package in self.spaces:
            self._flat(package)

    def package_unchanged(self, package: str) -> bool:
        """Nothing in any namespace of the package changed: C loops only."""
        spaces, sizes, values = self._flat(package)
        return tuple(map(len, spaces)) == sizes and all(
            map(is_, chain.from_iterable(map(_VALUES, spaces)), values)
        )

    @staticmethod
    def _classes_of(module: ModuleType, name: str) -> list[tuple[type, str]]:
        found = []
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__dict__.get("__module__") == name:
                found.append((value, f"{name}.{value.__qualname__}"))
        return found

    def refresh(self) -> None:
        """Take the current values as the reference (no learner code has run yet): the kernel's
        own start-up legitimately replaces a few things (ipykernel patches IPython's Pdb)."""
        for package, spaces in self.spaces.items():
            if package in self.static or self.package_unchanged(package):
                continue
            self.flat.pop(package, None)
            for space in spaces:
                if not space.unchanged():
                    for name in space.replaced():
                        space.watched[name] = space.space[name]
                    space.keys = frozenset(space.space.keys())
                    space.rebaseline()

    def check(
        self,
        packages: Iterable[str],
        grave: list[Any],
        functions: bool,
        core: bool,
    ) -> list[str]:
        """Put back every replaced function, class or module of these packages (and remove
        what a class gained); say what changed. `core`: the kernel's own packages, for which a
        library's own re-wrapping is not expected."""
        changed: list[str] = []
        for package in packages:
            if not functions and self.package_unchanged(package):
                continue
            self.flat.pop(package, None)
            for space in self.spaces.get(package, ()):
                if space.unchanged():
                    continue
                for name in space.replaced():
                    current = space.space.get(name, _MISSING)
                    if not core and _library_own(current, package, self.modules):
                        # The library re-wrapped its own function (torch's Optimizer.step
                        # profiling hook, torch.manual_seed): the new value is the reference.
                        space.watched[name] = current
                        continue
                    changed.append(f"{space.name}.{name} was replaced")
                    grave.append(current)
                    _put_back(space, name, space.watched[name])
                for name in space.added():
                    added = space.space.get(name)
                    if not core and _library_own(added, package, self.modules):
                        continue  # the library completing its own class (torch does)
                    changed.append(f"{space.name}.{name} was added")
                    grave.append(added)
                    _take_away(space, name)
                space.keys = frozenset(space.space.keys())
                space.rebaseline()
            self._flat(package)  # rebuilt from the restored state
            group = self.functions.get(package)
            if not functions or group is None or not group.changed():
                continue
            for function, code, defaults, kwdefaults in zip(
                group.functions, group.codes, group.defaults, group.kwdefaults, strict=True
            ):
                state = (function.__code__, function.__defaults__, function.__kwdefaults__)
                if all(map(is_, state, (code, defaults, kwdefaults))):
                    continue
                changed.append(f"{function.__qualname__} has changed code")
                grave.append(state)
                function.__code__ = code
                function.__defaults__ = defaults
                function.__kwdefaults__ = kwdefaults
        return changed


def _put_back(space: _Space, name: str, value: Any) -> None:
    if space.is_class:
        type.__setattr__(space.owner, name, value)  # never a metaclass's own __setattr__
    else:
        space.space[name] = value


def _take_away(space: _Space, name: str) -> None:
    try:
        if space.is_class:
            type.__delattr__(space.owner, name)
        else:
            del space.space[name]
    except (AttributeError, KeyError, TypeError):
        pass


def _library_own(value: Any, package: str, modules: dict[str, Any]) -> bool:
    """A value the package itself defined in its installed files, not code from a cell.
    Only plain functions, builtins and classes are looked at (their attributes are C-level
    fields), so no learner-defined attribute lookup runs here."""
    kind = type(value)
    if kind is partial:  # torch sets functools.partial objects on its own classes
        return _library_own(value.func, package, modules)
    if kind is FunctionType:
        module = value.__module__
        wrapped = value.__dict__.get("__wrapped__", value)
        code = wrapped.__code__ if type(wrapped) is FunctionType else None
    elif kind is BuiltinFunctionType:
        module, code = value.__module__, None
    elif kind is type:
        module, code = value.__dict__.get("__module__"), None
    else:
        return False
    if type(module) is not str or module.partition(".")[0] != package:
        return False
    if code is None:
        return True  # a C function or class of the package: cells cannot make those
    loaded = modules.get(module)
    origin = loaded.__dict__.get("__file__") if type(loaded) is ModuleType else None
    return type(origin) is str and code.co_filename.startswith(origin.rsplit("/", 2)[0])


class Machinery:
    """The shell's machinery as it was before any learner code ran, and its restoration."""

    def __init__(self, shell: Any, kernel: Any, builtins_dict: dict[str, Any]) -> None:
        import sys
        import threading

        self.shell = shell
        self.kernel = kernel
        self.sysdict = vars(sys)
        self.threading_gettrace = threading.gettrace
        self.threading_getprofile = threading.getprofile
        self.threading_settrace = threading.settrace
        self.threading_setprofile = threading.setprofile
        with shell.builtin_trap:
            self.builtins = {
                name: value
                for name, value in builtins_dict.items()
                if name not in VOLATILE_BUILTINS
            }
        self.builtins_dict = builtins_dict
        self.builtins_items = tuple(self.builtins.items())
        # Builtins IPython's builtin trap adds only while a cell runs (get_ipython, exit...):
        # absent between cells, which is not a change.
        self.trap_names = frozenset(getattr(shell.builtin_trap, "auto_builtins", {}))
        manager = shell.input_transformer_manager
        self.attributes: list[tuple[Any, str, Any]] = []
        for owner, names in self._watched(shell, kernel):
            for name in names:
                if hasattr(owner, name):
                    self.attributes.append((owner, name, getattr(owner, name)))
        self.lists = [
            (manager.cleanup_transforms, list(manager.cleanup_transforms)),
            (manager.line_transforms, list(manager.line_transforms)),
            (manager.token_transformers, list(manager.token_transformers)),
            (shell.ast_transformers, list(shell.ast_transformers)),
            (shell.input_transformers_post, list(shell.input_transformers_post)),
        ]
        self.shadowable = [
            shell, kernel, kernel.session, shell.displayhook, shell.display_pub, manager,
            shell.compile, shell.events, shell.InteractiveTB, shell.SyntaxTB,
            sys.stdout, sys.stderr, kernel.iopub_thread, shell.history_manager,
        ]  # fmt: skip
        # Methods legitimately set on instances by their own classes (OutStream.write, ...).
        self.overrides = {
            (id(obj), name): value
            for obj in self.shadowable
            for name, value in getattr(obj, "__dict__", {}).items()
            if callable(getattr(type(obj), name, None)) and callable(value)
        }
        self.events = {name: list(cbs) for name, cbs in shell.events.callbacks.items()}
        # sys.modules as imported before learner code: a fake module put in its place would be
        # what a test's own `import` gets.
        self.module_names = tuple(n for n, m in sys.modules.items() if m is not None)
        self.modules = tuple(sys.modules[n] for n in self.module_names)
        self.sys_hooks: dict[str, tuple[Any, ...]] = {
            "excepthook": (sys.excepthook, shell.excepthook),
            "displayhook": (sys.displayhook, shell.displayhook),
            "stdout": (sys.stdout,),
            "stderr": (sys.stderr,),
            "modules": (sys.modules,),
            "meta_path": (sys.meta_path,),
            "path_hooks": (sys.path_hooks,),
            "audit": (sys.audit,),
            "unraisablehook": (sys.unraisablehook,),
            "breakpointhook": (sys.breakpointhook,),
        }
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        self.asyncgen_hooks = tuple(sys.get_asyncgen_hooks())
        self.get_asyncgen_hooks = sys.get_asyncgen_hooks
        self.set_asyncgen_hooks = sys.set_asyncgen_hooks
        import gc

        self.gc_callbacks = gc.callbacks  # the list itself, and what is in it
        self.gc_callbacks_before = list(gc.callbacks)
        del gc
        # Every Python-level signal handler as the kernel set it: a learner's handler would run
        # learner code at any moment of a test.
        self.signals = {
            number: getsignal(number)
            for number in signal.valid_signals()
            if number not in (signal.SIGKILL, signal.SIGSTOP)
        }
        self.interactivity = shell.ast_node_interactivity
        self.tee_code = _tee_code()

    @staticmethod
    def _watched(shell: Any, kernel: Any) -> list[tuple[Any, tuple[str, ...]]]:
        return [
            (shell, ("displayhook", "display_pub", "display_trap", "builtin_trap", "compile",
                     "events", "input_transformer_manager", "InteractiveTB", "SyntaxTB",
                     "custom_exceptions", "CustomTB", "user_ns", "user_global_ns", "kernel",
                     "ast_transformers", "input_transformers_post", "display_formatter",
                     "history_manager")),
            (kernel, ("session", "iopub_socket", "iopub_thread", "shell", "shell_stream",
                      "control_stream", "shell_handlers")),
            (kernel.session, ("key", "auth", "pack", "unpack", "digest_mod", "signature_scheme")),
            (shell.displayhook, ("pub_socket", "session")),
            (shell.display_pub, ("pub_socket", "session")),
        ]  # fmt: skip

    def builtins_changes(self, grave: list[Any]) -> list[str]:
        """Builtins first, using no builtin: the rest of the kernel's code relies on them."""
        changes = []
        current = self.builtins_dict
        for name, value in self.builtins_items:
            found = current.get(name, _MISSING)
            if found is _MISSING and name in self.trap_names:
                continue
            if found is not value:
                changes.append(f"builtins.{name} was replaced")
                grave.append(found)
                current[name] = value
        return changes

    def changes(self, grave: list[Any]) -> list[str]:
        """Everything but builtins and package namespaces, put back; what was changed."""
        changes = []
        modules: Any = self.sysdict.get("modules")
        if modules is not self.sys_hooks["modules"][0]:
            changes.append("sys.modules was replaced")
            grave.append(modules)
            self.sysdict["modules"] = modules = self.sys_hooks["modules"][0]
        found_modules = map(modules.get, self.module_names)
        if not all(map(is_, found_modules, self.modules)):
            for name, module in zip(self.module_names, self.modules, strict=True):
                found = modules.get(name)
                if found is not None and found is not module:
                    changes.append(f"sys.modules[{name!r}] was replaced")
                    grave.append(found)
                    modules[name] = module
        hook_lists: tuple[tuple[str, list[Any]], ...] = (
            ("meta_path", self.meta_path),
            ("path_hooks", self.path_hooks),
        )
        for name, original in hook_lists:
            current: Any = self.sysdict.get(name)
            if type(current) is not list or not _same_items(current, original):
                changes.append(f"sys.{name} was changed")
                grave.append(list(current) if type(current) is list else current)
                if type(current) is list:
                    current[:] = original
        if not _same_items(self.gc_callbacks, self.gc_callbacks_before):
            changes.append("a gc callback was registered")
            grave.append(list(self.gc_callbacks))
            self.gc_callbacks[:] = self.gc_callbacks_before
        hooks = self.get_asyncgen_hooks()
        if hooks[0] is not self.asyncgen_hooks[0] or hooks[1] is not self.asyncgen_hooks[1]:
            changes.append("the async generator hooks were replaced")
            grave.append(hooks)
            self.set_asyncgen_hooks(*self.asyncgen_hooks)
        for number, handler_before in self.signals.items():
            handler: Any = getsignal(number)
            if handler is not handler_before and not (
                number == SIGINT and handler is default_int_handler
            ):
                changes.append(f"a handler for signal {number} was set")
                grave.append(handler)
                try:
                    set_signal(number, handler_before if handler_before is not None else 0)
                except (OSError, TypeError, ValueError):
                    pass
        for owner, name, value in self.attributes:
            found = getattr(owner, name, _MISSING)
            if found is not value:
                changes.append(f"{type(owner).__name__}.{name} was replaced")
                grave.append(found)
                _set(owner, name, value)
        for target, original in self.lists:
            if not _same_items(target, original):
                changes.append("input/AST transformers were changed")
                grave.append(list(target))
                target[:] = original
        for obj in self.shadowable:
            own = _instance_dict(obj)
            for name, value in list(own.items()):
                if not (callable(getattr(type(obj), name, None)) and _is_callable(value)):
                    continue
                original = self.overrides.get((id(obj), name), _MISSING)
                if original is value or self._trusted_override(obj, name, value):
                    continue
                changes.append(f"{type(obj).__name__}.{name} was overridden on the instance")
                grave.append(value)
                if original is _MISSING:
                    del own[name]
                else:
                    own[name] = original
        for name, allowed in self.sys_hooks.items():
            current = self.sysdict.get(name, _MISSING)
            if not any(current is a or _same_method(current, a) for a in allowed):
                changes.append(f"sys.{name} was replaced")
                grave.append(current)
                self.sysdict[name] = allowed[-1]
        if self.shell.ast_node_interactivity != self.interactivity:
            changes.append("the shell's ast_node_interactivity was changed")
            self.shell.ast_node_interactivity = self.interactivity
        if gettrace() is not None or getprofile() is not None:
            changes.append("a trace or profile hook was set")
            settrace(None)
            setprofile(None)
        if self.threading_gettrace() is not None or self.threading_getprofile() is not None:
            changes.append("a thread trace or profile hook was set")
            self.threading_settrace(None)
            self.threading_setprofile(None)
        return changes

    def event_callbacks(self, grave: list[Any]) -> list[str]:
        """Learner callbacks on IPython's pre-run events are taken off while a test runs (they
        would run learner code just before it). Those after a cell run after the test's
        done-call: they cannot change its verdict, and libraries use them (matplotlib)."""
        changes = []
        for name, cbs in self.shell.events.callbacks.items():
            if name not in PRE_RUN_EVENTS:
                continue
            original = self.events.get(name, [])
            kept = [cb for cb in cbs if _contains(original, cb) or _trusted_callback(cb)]
            if len(kept) < len(cbs):
                grave.append(list(cbs))
                changes.append(f"learner code registered a {name} callback (not run for tests)")
                cbs[:] = kept
        return changes

    def _trusted_override(self, obj: Any, name: str, value: Any) -> bool:
        """IPython's own stream tee, or the object's own method put back on it after the tee."""
        if type(value) is MethodType:
            return value.__self__ is obj and value.__func__ is getattr(type(obj), name, None)
        if type(value) is FunctionType:
            return self.tee_code is not None and value.__code__ is self.tee_code
        return False

    def packages_used(self, source: str) -> set[str]:
        """Top-level packages of the modules and functions a test cell names."""
        packages = set(CORE_PACKAGES)
        try:
            tree = compile(source, "<test>", "exec", PyCF_ONLY_AST, True)
        except (SyntaxError, ValueError):
            return packages  # IPython syntax (magics): only the core is checked
        user_ns = self.shell.user_ns
        for node in _walk(tree):
            kind = type(node).__name__
            if kind == "Name" and node.id in user_ns:
                value = user_ns[node.id]
                module = _module_name(value)
                if module is not None:
                    packages.add(module.partition(".")[0])
                if type(value) is ModuleType:
                    name = value.__dict__.get("__name__")
                    if self.sysdict["modules"].get(name) is not value:
                        packages.add(f"!fake module {node.id}")
            elif kind == "Import":
                packages.update(a.name.partition(".")[0] for a in node.names)
            elif kind == "ImportFrom" and node.module:
                packages.add(node.module.partition(".")[0])
        return packages


def _walk(tree: Any) -> list[Any]:
    """Every node of an AST (ast.walk's job, without the ast module's Python code)."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        for field in node._fields:
            value = getattr(node, field, None)
            if type(value) is list:
                todo.extend(v for v in value if hasattr(v, "_fields"))
            elif hasattr(value, "_fields"):
                todo.append(value)
    return found


def _module_name(value: Any) -> str | None:
    kind = type(value)
    if kind is ModuleType:
        name = value.__dict__.get("__name__")
    elif kind is FunctionType or kind is BuiltinFunctionType:
        name = value.__module__
    elif kind is type:
        name = value.__dict__.get("__module__")
    elif kind is MethodType:
        return _module_name(value.__func__)
    else:
        name = type(value).__dict__.get("__module__") if type(type(value)) is type else None
    return name if type(name) is str else None


def _same_items(found: Any, expected: list[Any]) -> bool:
    return type(found) is list and len(found) == len(expected) and all(map(is_, found, expected))


def _contains(items: list[Any], item: Any) -> bool:
    return any(map(is_, items, [item] * len(items)))


def _same_method(current: Any, expected: Any) -> bool:
    """Bound methods are made anew on each access: same function, same object."""
    return (
        type(current) is MethodType
        and type(expected) is MethodType
        and current.__func__ is expected.__func__
        and current.__self__ is expected.__self__
    )


def _is_callable(value: Any) -> bool:
    kind = type(value)
    return (
        kind is FunctionType
        or kind is MethodType
        or kind is BuiltinFunctionType
        or (callable(value))
    )


def _instance_dict(obj: Any) -> dict[str, Any]:
    found = obj.__dict__ if hasattr(type(obj), "__dict__") else {}
    return found if type(found) is dict else {}


def _set(owner: Any, attr: str, value: Any) -> None:
    """Put an attribute back without running observers: a trait's value directly."""
    own = _instance_dict(owner)
    traits = own.get("_trait_values")
    try:
        if type(traits) is dict and attr in traits:
            traits[attr] = value
        elif attr in own:
            own[attr] = value
        else:
            setattr(owner, attr, value)
    except (AttributeError, TypeError):
        pass


def _trusted_callback(callback: Any) -> bool:
    module = _module_name(callback)
    return module is not None and module.startswith(TRUSTED_CALLBACK_PREFIXES)


def _tee_code() -> CodeType | None:
    """The code of the `write` that IPython's run_cell sets on sys.stdout/stderr while it runs."""
    from IPython.core.interactiveshell import InteractiveShell

    tee = getattr(InteractiveShell._tee, "__wrapped__", InteractiveShell._tee)
    for const in tee.__code__.co_consts:
        if type(const) is CodeType and const.co_name == "write":
            return const
    return None


# --- the test's own run ------------------------------------------------------------------------


class TestRun:
    """What the guard knows of the test being run."""

    __slots__ = (
        "nonce", "source", "hidden", "scrubbed", "cell_name", "begin_frame", "dispatch_frame",
        "parent", "before", "during", "packages", "cell_frame", "nodes_frame", "expected",
        "executed", "last_code", "last_frame", "done", "value", "last_expr",
    )  # fmt: skip

    def __init__(self, nonce: str, source: str, hidden: bool) -> None:
        self.nonce = nonce
        self.source = source
        self.hidden = hidden
        self.scrubbed = 0  # copies of its source taken out of the kernel's history
        self.cell_name: str | None = None  # IPython's file name for its cell
        self.begin_frame: Any = None
        self.dispatch_frame: Any = None
        self.parent: Any = None
        self.before: list[str] = []
        self.during: list[str] = []
        self.packages: set[str] = set()
        self.cell_frame: Any = None  # run_cell_async of the test's cell
        self.nodes_frame: Any = None  # its run_ast_nodes
        self.expected: list[bytes] = []  # each statement's code, compiled before any ran
        self.executed = 0
        self.last_code: Any = None
        self.last_frame: Any = None
        self.done = False
        self.value: float | None = None
        self.last_expr = False


class Codes:
    """The code objects of the genuine functions a test's run goes through."""

    def __init__(self, **codes: CodeType) -> None:
        self.handler = codes["handler"]
        self.done = codes["done"]
        self.transformer = codes["transformer"]
        self.hook = codes["hook"]
        self.dispatch = codes["dispatch"]
        self.run_cell_async = codes["run_cell_async"]
        self.transform_ast = codes["transform_ast"]
        self.run_ast_nodes = codes["run_ast_nodes"]
        self.run_code = codes["run_code"]


class Core:
    """The guard's state and verdicts; every method runs in the guard's own thread."""

    def __init__(
        self,
        snapshot: Snapshot,
        machinery: Machinery,
        codes: Codes,
        report_fd: int,
        main_thread: int,
        swaps: list[int],
        sentinel: Any,
        attempts: list[str],
        swapped: list[Any],
    ) -> None:
        import os

        self.snapshot = snapshot
        self.machinery = machinery
        self.codes = codes
        self.report_fd = report_fd
        self.write = os.write
        self.urandom = os.urandom
        self.main_thread = main_thread
        self.swaps = swaps  # [count] of function state swaps seen by the audit hook
        self.sentinel = sentinel  # the AST transformer that ends a test with a done-call
        self.attempts = attempts  # audit events the hook refused to learner code
        self.swapped: list[Any] = swapped  # functions whose code or defaults were set
        self.test: TestRun | None = None
        self.active = bytearray(1)  # shared with the audit hook: statements are reported
        self.key = b""
        self.rogue = 0  # requests that did not come from the genuine places
        del os

    # The main thread's stack, as seen from here ------------------------------------------------

    def main_frames(self) -> list[Any]:
        """The main thread's frames, innermost first (it is blocked in the audit hook)."""
        frame = _current_frames().get(self.main_thread)
        frames: list[Any] = []
        while frame is not None and len(frames) < 400:
            frames.append(frame)
            frame = frame.f_back
        return frames

    def learner_threads(self) -> int:
        """Threads other than the main one now running a notebook's own code (a cell's function,
        or code made with exec): such a thread could change what a test sees while it runs."""
        cells = self.machinery.shell.compile._filename_map
        found = 0
        frame: Any
        for ident, frame in _current_frames().items():
            if ident == self.main_thread or ident == _thread.get_ident():
                continue
            depth = 0
            while frame is not None and depth < 200:
                name = frame.f_code.co_filename
                if name in cells or (name[:1] == "<" and name[:7] != "<frozen"):
                    found += 1
                    break
                frame = frame.f_back
                depth += 1
        return found

    def hello(self) -> None:
        """The report key, sent to the fork server before any learner code ran."""
        self.key = self.urandom(32)
        self._send({"hello": self.key.hex()})

    def _send(self, message: dict[str, Any]) -> None:
        line = (_dumps(message, sort_keys=True) + "\n").encode()
        view = memoryview(line)
        while view:
            written = self.write(self.report_fd, view)
            view = view[written:]

    # Requests ---------------------------------------------------------------------------------

    def handle(self, event: str, args: tuple[Any, ...], reply: Any, grave: list[Any]) -> None:
        frames = self.main_frames()
        if len(frames) < 2 or frames[0].f_code is not self.codes.hook:
            self.rogue += 1
            return
        waiting = frames[0].f_locals  # the hook's own call: what it asked, and its lock
        if (
            waiting.get("event") is not event
            or waiting.get("args") is not args
            or waiting.get("lock") is not reply
        ):
            self.rogue += 1
            return
        caller = frames[1]
        if event == "exec":
            self.statement(caller, frames, args, grave)
            return
        if len(args) < 1 or type(args[0]) is not str:
            self.rogue += 1
            return
        step = args[0]
        if step == "begin" and caller.f_code is self.codes.handler:
            self.begin(caller, frames, grave)
        elif step == "ast" and caller.f_code is self.codes.transformer and len(args) > 1:
            self.transform(frames, args[1], grave)
        elif step == "done" and caller.f_code is self.codes.done:
            self.finish_statements(frames, args[1] if len(args) > 1 else None, grave)
        elif step == "end" and caller.f_code is self.codes.handler:
            self.end(caller, grave)
        else:
            self.rogue += 1

    def begin(self, handler: Any, frames: list[Any], grave: list[Any]) -> None:
        dispatch = handler.f_back
        if self.test is not None or dispatch is None or dispatch.f_code is not self.codes.dispatch:
            self.rogue += 1
            return
        parent = handler.f_locals.get("parent")
        content = parent.get("content") if type(parent) is dict else None
        if type(content) is not dict:
            self.rogue += 1
            return
        nonce, source = content.get("nonce"), content.get("code")
        if type(nonce) is not str or type(source) is not str or not 8 <= len(nonce) <= 64:
            self.rogue += 1
            return
        test = TestRun(nonce, source, content.get("hidden") is True)
        test.begin_frame, test.dispatch_frame, test.parent = handler, dispatch, parent
        machinery = self.machinery
        before = machinery.builtins_changes(grave)
        before += self.snapshot.check(CORE_PACKAGES, grave, functions=self.swaps[0] > 0, core=True)
        before += machinery.changes(grave)
        test.packages = machinery.packages_used(source)
        before += [f"{p[1:]} is not the imported module" for p in test.packages if p[0] == "!"]
        before += self.snapshot.check(
            sorted(p for p in test.packages if p[0] != "!" and p not in CORE_PACKAGES),
            grave,
            functions=self.swaps[0] > 0,
            core=False,
        )
        before += machinery.event_callbacks(grave)
        before += self._refused()
        del self.swapped[:]  # what happened before the test was checked just above
        if self.learner_threads():
            test.during.append("a thread running the notebook's code was alive during the test")
        self.swaps[0] = 0
        # The sentinel is the only AST transformer while the test's cell is compiled.
        machinery.shell.ast_transformers.append(self.sentinel)
        test.before = before
        self.test = test
        self.active[0] = 1

    def transform(self, frames: list[Any], tree: Any, grave: list[Any]) -> None:
        """The test's cell, parsed by IPython: end it with the done-call, and compile every
        statement now, before any of them runs (learner code may alter the tree later)."""
        test = self.test
        transform = frames[2] if len(frames) > 2 else None
        cell = transform.f_back if transform is not None else None
        if (
            test is None
            or transform is None
            or transform.f_code is not self.codes.transform_ast
            or cell is None
            or cell.f_code is not self.codes.run_cell_async
            or type(tree) is not Module
            or not self._below(cell, test.begin_frame)
        ):
            self.rogue += 1
            return
        names = cell.f_locals
        if names.get("raw_cell") is not test.source:
            if names.get("raw_cell") != test.source:
                self.rogue += 1
                return
        cell_name = names.get("cell_name")
        if type(cell_name) is not str:
            self.rogue += 1
            return
        test.cell_frame = cell
        test.cell_name = cell_name
        self._drop_sentinel()
        body = tree.body
        last = body[-1] if body else None
        if type(last) is Expr:
            test.last_expr = True
            last.value = _located(
                Call(_located(Name(DONE_NAME, Load()), last), [last.value], []), last
            )
        else:
            call = Call(Name(DONE_NAME, Load()), [], [])
            sentinel = Expr(call)
            line = (last.end_lineno or last.lineno) if last is not None else 1
            for item in (sentinel, call, call.func):
                item.lineno = item.end_lineno = line
                item.col_offset = item.end_col_offset = 0
            body.append(sentinel)
        compiler = self.machinery.shell.compile
        flags = compiler.flags
        if self.machinery.shell.autoawait:
            flags |= PyCF_ALLOW_TOP_LEVEL_AWAIT
        expected = []
        for index, node in enumerate(body):
            single = index == len(body) - 1
            mod = Interactive([node]) if single else Module([node], [])
            try:
                code = compile(mod, cell_name, "single" if single else "exec", flags, True)
            except Exception:  # noqa: BLE001 - IPython will show the learner the same error
                expected.append(b"")
                continue
            flags |= code.co_flags & FUTURE_FLAGS
            expected.append(marshal_dumps(code))
        test.expected = expected
        if test.hidden:
            removed = self._scrub(cell_name, names.get("cell"), test.source)
            test.scrubbed = sum(1 for r in removed if r is not None)
            grave.extend(removed)

    def statement(
        self, run_code: Any, frames: list[Any], args: tuple[Any, ...], grave: list[Any]
    ) -> None:
        """One statement of the test's cell starts: it must be the next one compiled above,
        run by IPython's own run_code for the test's own cell."""
        test = self.test
        if test is None or test.cell_frame is None or test.done:
            return
        if run_code.f_code is not self.codes.run_code:
            return  # an exec of some library: not a statement of the cell
        nodes = run_code.f_back
        if nodes is None or nodes.f_code is not self.codes.run_ast_nodes:
            return
        if test.nodes_frame is None:
            if nodes.f_back is not test.cell_frame:
                return  # a cell run inside the test (a magic): not the test's own statements
            test.nodes_frame = nodes
        elif nodes is not test.nodes_frame:
            return
        code = args[0] if args else None
        index = test.executed
        try:
            same = (
                type(code) is CodeType
                and index < len(test.expected)
                and marshal_dumps(code) == test.expected[index]
            )
        except ValueError:
            same = False
        if not same:
            test.during.append("different code ran in place of the test")
        test.executed = index + 1
        test.last_code = code
        test.last_frame = run_code

    def finish_statements(self, frames: list[Any], value: Any, grave: list[Any]) -> None:
        """The done-call at the end of the test's last statement: every statement ran."""
        test = self.test
        statement = frames[2] if len(frames) > 2 else None
        if (
            test is None
            or test.done
            or statement is None
            or statement.f_code is not test.last_code
            or statement.f_back is not test.last_frame
            or test.executed != len(test.expected)
        ):
            self.rogue += 1
            return
        test.done = True
        test.value = _number(value) if test.last_expr else None
        test.during += self.check_now(grave)

    def check_now(self, grave: list[Any]) -> list[str]:
        test = self.test
        assert test is not None
        machinery = self.machinery
        changes = machinery.builtins_changes(grave)
        swapped = self.swaps[0] > 0
        changes += self.snapshot.check(CORE_PACKAGES, grave, functions=swapped, core=True)
        changes += machinery.changes(grave)
        changes += self.snapshot.check(
            sorted(p for p in test.packages if p[0] != "!" and p not in CORE_PACKAGES),
            grave,
            functions=swapped,
            core=False,
        )
        changes += self._swapped_here()
        self.swaps[0] = 0
        if self.learner_threads():
            changes.append("a thread running the notebook's code was alive during the test")
        return changes

    def end(self, handler: Any, grave: list[Any]) -> None:
        test = self.test
        if test is None or handler is not test.begin_frame:
            self.rogue += 1
            return
        self.test = None
        self.active[0] = 0
        self._drop_sentinel()
        # The verdict was fixed at the done-call, after the same checks; whatever changes
        # from here on is found and put back before the next test.
        during = test.during
        before = test.before + self._refused()
        rogue, self.rogue = self.rogue, 0
        body = {
            "nonce": test.nonce,
            "source": sha256(test.source.encode()).hexdigest(),
            "completed": test.done,
            "statements": test.executed,
            "value": test.value,
            "last_expr": test.last_expr,
            "before": sorted(set(before))[:MAX_CHANGES],
            "during": sorted(set(during))[:MAX_CHANGES],
            "rogue": rogue,
            "scrubbed": test.scrubbed,
        }
        payload = _dumps(body, sort_keys=True)
        mac = hmac_digest(self.key, payload.encode(), "sha256").hex()
        self._send({"body": payload, "mac": mac})

    def _swapped_here(self) -> list[str]:
        """Functions of the test's own cell whose code or defaults were changed while it ran
        (the kernel's and the libraries' are put back by the snapshot's check)."""
        test = self.test
        found = []
        cell = test.cell_name if test is not None else None
        for function in self.swapped:
            if type(function) is FunctionType and function.__code__.co_filename == cell:
                found.append(f"{function.__qualname__} of the test changed code")
        del self.swapped[:]
        return found

    def _refused(self) -> list[str]:
        """What the audit hook refused learner code since the last look (a tampering attempt
        that failed: flagged, and the test it preceded runs as usual)."""
        found = sorted(set(self.attempts))
        del self.attempts[:]
        return [f"learner code tried {event} (refused)" for event in found]

    def _drop_sentinel(self) -> None:
        transformers = self.machinery.shell.ast_transformers
        while _contains(transformers, self.sentinel):
            for index, item in enumerate(transformers):
                if item is self.sentinel:
                    del transformers[index]
                    break

    @staticmethod
    def _below(frame: Any, ancestor: Any) -> bool:
        while frame is not None:
            if frame is ancestor:
                return True
            frame = frame.f_back
        return False

    def _scrub(self, cell_name: str, cell: Any, raw: str) -> list[Any]:
        """A test with hidden parts leaves no copy of its source where later cells could read
        it: IPython's input history, its In/_i variables and the line cache."""
        import linecache

        texts = [t.rstrip("\n") for t in (cell, raw) if type(t) is str and t.strip()]
        shell = self.machinery.shell
        removed: list[Any] = [linecache.cache.pop(cell_name, None)]
        history = shell.history_manager
        # The history's own copies, which IPython hands on as _i, _ii, _iii at the next cell.
        for name in ("_i00", "_i", "_ii", "_iii"):
            value = getattr(history, name, None)
            if type(value) is str and value in texts:
                removed.append(value)
                setattr(history, name, "")
        for name in ("input_hist_parsed", "input_hist_raw"):
            entries = getattr(history, name, None)
            if type(entries) is list:
                for index, entry in enumerate(entries):
                    if type(entry) is str and entry in texts:
                        removed.append(entry)
                        entries[index] = ""
        user_ns = shell.user_ns
        for name in list(user_ns):
            if name[:2] != "_i":
                continue
            value = user_ns.get(name)
            if type(value) is str and value in texts:
                removed.append(value)
                user_ns[name] = ""
        del linecache
        return removed


DONE_NAME = "__autograder_done__"


def _located(node: Any, like: Any) -> Any:
    for field in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
        setattr(node, field, getattr(like, field, None) or 0)
    return node


def _number(value: Any) -> float | None:
    """The test's displayed value when its text is a plain number (exact int or float, whose
    repr nbgrader's partial credit parses); None for anything else (a bool, a numpy scalar...)."""
    kind = type(value)
    if kind is int or kind is float:
        return float(value)
    return None


def serve(core: Core, requests: Any, graveyard: list[Any]) -> None:
    """The guard thread: one request at a time, with the GIL held until it is answered (the
    switch interval is raised meanwhile, so no other thread's code runs in between)."""
    get = requests.get
    while True:
        event, args, reply = get()
        saved = getswitchinterval()
        setswitchinterval(1000.0)
        grave: list[Any] = []
        try:
            core.handle(event, args, reply, grave)
        except BaseException as error:  # noqa: BLE001 - the guard must outlive any one request
            if core.test is not None:
                core.test.during.append(f"the guard failed: {type(error).__name__}")
        finally:
            graveyard.append(grave)
            setswitchinterval(saved)
            del event, args
            reply.release()
            del reply


def start(core: Core, requests: Any) -> tuple[int, list[Any]]:
    """Start the guard thread; (its thread id, the graveyard the main thread empties)."""
    graveyard: list[Any] = []
    ready = _thread.allocate_lock()
    ready.acquire()
    ident: list[int] = []

    def run() -> None:
        ident.append(_thread.get_ident())
        ready.release()
        serve(core, requests, graveyard)

    _thread.start_new_thread(run, ())
    ready.acquire()
    return ident[0], graveyard
