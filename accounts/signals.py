"""Audit trail of role changes, sign-in and lockout logging, and the default role."""

import logging
import threading

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from .middleware import client_address, current_request, request_user
from .models import RoleChange
from .roles import STAFF_ROLES, VIEWER

User = get_user_model()
security_log = logging.getLogger("security")

# Roles as they stood before a group change began. Within one request every change
# to a user's roles makes one audit row (the admin's groups.set() removes, then adds);
# outside a request (shell, scripts) each change makes its own row.
_outside_request = threading.local()


def _roles(user_id):
    return sorted(Group.objects.filter(user__id=user_id).values_list("name", flat=True))


def _pending():
    request = current_request.get()
    if request is not None:
        return request.__dict__.setdefault("_role_changes", {})
    if not hasattr(_outside_request, "changes"):
        _outside_request.changes = {}
    return _outside_request.changes


@receiver(m2m_changed, sender=User.groups.through)
def record_role_change(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("pre_add", "pre_remove", "pre_clear", "post_add", "post_remove",
                      "post_clear"):
        return
    if not reverse:
        user_ids = [instance.pk]
    elif pk_set:  # group.user_set.add(...): the users are in pk_set
        user_ids = list(pk_set)
    else:
        user_ids = list(instance.user_set.values_list("id", flat=True))
    pending = _pending()
    for user_id in user_ids:
        if action.startswith("pre_"):
            pending.setdefault(user_id, {"before": _roles(user_id), "row": None})
        else:
            _write_role_change(user_id, pending)


def _write_role_change(user_id, pending):
    change = pending[user_id] if current_request.get() is not None else pending.pop(user_id)
    before, after = change["before"], _roles(user_id)
    row = change["row"]
    if row is not None and before == after:  # changed back within the request
        row.delete()
        change["row"] = None
    elif row is not None:
        row.roles_after = after
        row.save(update_fields=["roles_after"])
    elif before != after:
        change["row"] = RoleChange.objects.create(
            user_id=user_id, roles_before=before, roles_after=after, changed_by=request_user()
        )
    # Editors and admins work in the admin: keep the staff flag in step with roles.
    is_staff = bool(STAFF_ROLES & set(after))
    User.objects.filter(pk=user_id, is_superuser=False).update(is_staff=is_staff)
    security_log.info(
        "role change",
        extra={
            "event": "role_change",
            "user_id": user_id,
            "roles_before": before,
            "roles_after": after,
            "changed_by": getattr(request_user(), "pk", None),
        },
    )


@receiver(post_save, sender=User)
def give_new_users_the_viewer_role(sender, instance, created, raw, **kwargs):
    if created and not raw:
        group = Group.objects.filter(name=VIEWER).first()
        if group is not None:
            instance.groups.add(group)


@receiver(user_logged_in)
def log_sign_in(sender, request, user, **kwargs):
    security_log.info(
        "sign-in",
        extra={"event": "sign_in", "user_id": user.pk, "address": client_address(request)},
    )


@receiver(user_login_failed)
def log_failed_sign_in(sender, credentials, request=None, **kwargs):
    # credentials are already scrubbed of the password by Django; log the name only.
    who = credentials.get("email") or credentials.get("username") or ""
    security_log.warning(
        "failed sign-in",
        extra={
            "event": "sign_in_failed",
            "account": who,
            "address": client_address(request) if request is not None else "",
        },
    )


@receiver(user_locked_out)
def log_lockout(sender, request, username, ip_address, **kwargs):
    # Sent when the limit is reached, and again for each attempt refused while locked out.
    security_log.warning(
        "sign-in locked out",
        extra={"event": "sign_in_locked_out", "account": username, "address": ip_address},
    )
