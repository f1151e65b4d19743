import pytest
from django.contrib.auth.models import Group

from accounts.models import RoleChange
from imagineer.testing import manage

pytestmark = pytest.mark.django_db


def test_it_records_a_role_change_made_in_the_admin(client, admin_user, viewer):
    client.force_login(admin_user)
    before = RoleChange.objects.filter(user=viewer).count()
    editor_group = Group.objects.get(name="editor")
    response = client.post(
        f"/admin/accounts/user/{viewer.pk}/change/",
        {
            "username": viewer.username,
            "email": viewer.email,
            "is_active": "on",
            "groups": [editor_group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "role_changes-TOTAL_FORMS": "0",
            "role_changes-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    changes = RoleChange.objects.filter(user=viewer)
    assert changes.count() == before + 1  # one row for the whole edit, not remove + add
    change = changes.first()
    assert change.roles_before == ["viewer"]
    assert change.roles_after == ["editor"]
    assert change.changed_by == admin_user
    viewer.refresh_from_db()
    assert viewer.is_staff


def test_it_records_a_role_change_made_in_the_shell(viewer, transactional_db):
    code = (
        "from django.contrib.auth.models import Group;"
        "from accounts.models import User;"
        f"User.objects.get(pk={viewer.pk}).groups.add(Group.objects.get(name='admin'))"
    )
    result = manage("shell", "-c", code)
    assert result.returncode == 0, result.stderr
    change = RoleChange.objects.filter(user=viewer).first()
    assert change.roles_before == ["viewer"]
    assert change.roles_after == ["admin", "viewer"]
    assert change.changed_by is None


def test_it_records_a_change_made_from_the_group_side(viewer):
    Group.objects.get(name="editor").user_set.add(viewer)
    change = RoleChange.objects.filter(user=viewer).first()
    assert change.roles_after == ["editor", "viewer"]


def test_it_shows_the_audit_trail_read_only_in_the_admin(client, admin_user, viewer):
    client.force_login(admin_user)
    change = RoleChange.objects.filter(user=viewer).first()
    assert client.get("/admin/accounts/rolechange/").status_code == 200
    assert client.get("/admin/accounts/rolechange/add/").status_code == 403
    response = client.post(f"/admin/accounts/rolechange/{change.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert RoleChange.objects.filter(pk=change.pk).exists()
