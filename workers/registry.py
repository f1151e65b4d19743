"""What each app asks of the workers, registered by the app itself in its
AppConfig.ready(), so that no list in one place names every app:

- `housekeeping(step)`: a step of the one-minute housekeeping (reclaim the work of dead
  workers, give queued work a task when none waits, forget workers long gone). One
  django-q2 schedule, "housekeeping" on the default cluster (workers migration 0002),
  runs `run_housekeeping`: every step in the order registered (the order of
  INSTALLED_APPS); a step that fails is logged and the others still run.
- `at_worker_start(hook)`: called as each worker process of any cluster starts
  (django-q2's post_spawn, connected once, here), through `leases.at_spawn`: on a fresh
  database connection, closed after; a hook that fails is logged and the others still run.

A step or a hook is a callable or the dotted path of one, imported when it runs: the web
process, which registers generation's hooks too, must not import torch.
"""

import logging

from django.utils.module_loading import import_string

from .leases import at_spawn

log = logging.getLogger(__name__)

_steps = []
_hooks = []


def housekeeping(step):
    """Run `step` (a callable or its dotted path) in every housekeeping, once."""
    if step not in _steps:
        _steps.append(step)


def at_worker_start(hook):
    """Call `hook` (a callable or its dotted path) as each worker process starts, once."""
    if hook not in _hooks:
        _hooks.append(hook)


def _resolve(target):
    return import_string(target) if isinstance(target, str) else target


def run_housekeeping():
    """Every minute (the "housekeeping" schedule): each registered step."""
    failed = []
    for step in _steps:
        try:
            _resolve(step)()
        except Exception:  # the database may be restarting: the next minute tries again
            log.exception("housekeeping step failed", extra={"step": str(step)})
            failed.append(str(step))
    return f"housekeeping: {len(_steps) - len(failed)} steps ran" + (
        f", failed: {', '.join(failed)}" if failed else "")


def worker_started(sender=None, **kwargs):
    """django-q2's post_spawn: each registered hook, on a fresh connection."""
    for hook in _hooks:
        try:
            task = _resolve(hook)
        except ImportError:
            log.exception("worker start hook %s cannot be imported", hook)
            continue
        at_spawn(task)
