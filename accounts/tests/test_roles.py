import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from accounts.roles import (
    ADMIN,
    EDITOR,
    EDITOR_PERMISSIONS,
    ROLES,
    VIEWER,
    VIEWER_PERMISSIONS,
)

pytestmark = pytest.mark.django_db


def test_it_creates_the_three_role_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def existing(names):
    """The listed permissions whose models exist by now (later apps add models)."""
    present = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.all()}
    return [name for name in names if name in present]


@pytest.mark.parametrize(
    "role, allowed, denied",
    [
        (VIEWER, VIEWER_PERMISSIONS, ["accounts.change_user", "auth.change_group"]),
        (EDITOR, EDITOR_PERMISSIONS, ["accounts.change_user", "auth.change_group",
                                      "accounts.delete_user"]),
        (ADMIN, ["accounts.change_user", "auth.change_group", "accounts.view_rolechange",
                 "django_q.delete_schedule"], []),
    ],
)
def test_it_gives_each_role_its_permissions(make_user, role, allowed, denied):
    user = make_user(f"user-{role}", role)
    user = get_user_model().objects.get(pk=user.pk)  # fresh permission cache
    for perm in existing(allowed):
        assert user.has_perm(perm), f"{role} should have {perm}"
    for perm in denied:
        assert not user.has_perm(perm), f"{role} should not have {perm}"


def test_it_orders_role_permissions_viewer_within_editor_within_admin():
    viewer = set(Group.objects.get(name=VIEWER).permissions.all())
    editor = set(Group.objects.get(name=EDITOR).permissions.all())
    admin = set(Group.objects.get(name=ADMIN).permissions.all())
    assert viewer <= editor <= admin
    assert editor != admin


def test_it_makes_editors_and_admins_staff_and_viewers_not(make_user):
    assert not make_user("v", VIEWER).is_staff
    assert make_user("e", EDITOR).is_staff
    assert make_user("a", ADMIN).is_staff


def test_it_gives_new_sign_ups_the_viewer_role():
    user = get_user_model().objects.create_user("newbie", "newbie@example.com", "pw-12345678x")
    assert user.role == VIEWER


def test_it_gives_new_sign_ups_through_the_sign_up_page_the_viewer_role(client, settings):
    # The sign-up page's own form (by invitation: test_signup_policy.py).
    settings.IMAGINEER_SIGNUP = "open"
    response = client.post(
        "/accounts/signup/",
        {
            "email": "fresh@example.com",
            "password1": "a-long-pw-9876",
            "password2": "a-long-pw-9876",
        },
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(email="fresh@example.com")
    assert user.role == VIEWER
