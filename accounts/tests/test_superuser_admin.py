"""What in the admin only superusers may do: django-q2's schedules and tasks (code
execution on the workers), and making, changing or deleting a superuser."""

import pytest
from django.contrib.auth import get_user_model
from django_q.models import Failure, Schedule

pytestmark = pytest.mark.django_db

SCHEDULE = {"name": "pwn", "func": "os.system", "args": "'touch /tmp/pwned'",
            "schedule_type": "O", "repeats": "-1", "cluster": "", "intended_date_kind": "",
            "next_run_0": "2030-01-01", "next_run_1": "00:00:00"}


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-42-root!")


def test_the_admin_role_cannot_schedule_or_resubmit_tasks(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/django_q/schedule/").status_code == 200  # it may look
    assert client.get("/admin/django_q/schedule/add/").status_code == 403
    assert client.post("/admin/django_q/schedule/add/", SCHEDULE).status_code == 403
    assert not Schedule.objects.filter(name="pwn").exists()

    existing = Schedule.objects.create(name="tidy", func="math.floor", args="1")
    response = client.post(f"/admin/django_q/schedule/{existing.pk}/change/",
                           {**SCHEDULE, "name": "tidy"})
    assert response.status_code == 403
    existing.refresh_from_db()
    assert existing.func == "math.floor"
    assert client.post(f"/admin/django_q/schedule/{existing.pk}/delete/",
                       {"post": "yes"}).status_code == 403
    assert Schedule.objects.filter(pk=existing.pk).exists()

    failed = Failure.objects.create(id="a" * 32, name="failed", func="os.system",
                                    args=("true",), started="2030-01-01T00:00Z",
                                    stopped="2030-01-01T00:00Z", success=False)
    response = client.post("/admin/django_q/failure/",
                           {"action": "resubmit_task", "_selected_action": [failed.pk]})
    assert Failure.objects.filter(pk=failed.pk).exists()  # not resubmitted (and deleted)
    assert "resubmit_task" not in client.get("/admin/django_q/failure/").content.decode()


def test_a_superuser_can_schedule_tasks(client, superuser):
    client.force_login(superuser)
    response = client.post("/admin/django_q/schedule/add/", {**SCHEDULE, "func": "math.floor",
                                                              "args": "1"})
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert Schedule.objects.filter(name="pwn", func="math.floor").exists()


def test_the_admin_role_cannot_make_itself_or_anyone_a_superuser(client, admin_user, viewer,
                                                                 superuser):
    client.force_login(admin_user)
    for user in (admin_user, viewer):
        form = client.get(f"/admin/accounts/user/{user.pk}/change/")
        assert form.status_code == 200
        assert 'name="is_superuser"' not in form.content.decode()
        client.post(f"/admin/accounts/user/{user.pk}/change/", {
            "username": user.username, "email": user.email, "is_active": "on",
            "is_staff": "on", "is_superuser": "on", "date_joined_0": "2030-01-01",
            "date_joined_1": "00:00:00", "role_changes-TOTAL_FORMS": "0",
            "role_changes-INITIAL_FORMS": "0",
            "groups": list(user.groups.values_list("pk", flat=True))})
        user.refresh_from_db()
        assert not user.is_superuser
    # Nor take over a superuser's account: its password, its email, or delete it.
    for url in (f"/admin/accounts/user/{superuser.pk}/password/",
                f"/admin/accounts/user/{superuser.pk}/delete/"):
        assert client.post(url, {"password1": "taken-over-42!", "password2": "taken-over-42!",
                                 "post": "yes"}).status_code == 403
    response = client.post(f"/admin/accounts/user/{superuser.pk}/change/",
                           {"username": "root", "email": "mine@example.com"})
    assert response.status_code == 403
    superuser.refresh_from_db()
    assert superuser.email == "root@example.com" and superuser.check_password("pw-42-root!")
