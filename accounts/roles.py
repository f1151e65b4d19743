"""The three roles and their permissions: the one place they are defined.

Roles are Django groups. Model permissions say what a role may do; ownership
(a viewer's own jobs and albums) is enforced by the querysets of each app.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"
ROLES = [VIEWER, EDITOR, ADMIN]  # lowest to highest

VIEWER_PERMISSIONS = [
    # generates images, sees and cancels own jobs, manages own albums
    "albums.view_album",
    "albums.add_album",
    "albums.change_album",
    "albums.delete_album",
    "albums.view_image",
    "albums.add_image",
    "generation.view_job",
    "generation.add_job",
    "generation.view_batch",
    "generation.view_modelversion",
    "generation.view_promptset",
    "training.view_trainingrun",
]

EDITOR_PERMISSIONS = VIEWER_PERMISSIONS + [
    # curates every album and image, manages prompt sets and LoRAs,
    # starts batches and training runs, works in the admin within these
    "albums.change_image",
    "albums.delete_image",
    "albums.view_albumimage",
    "albums.add_albumimage",
    "albums.change_albumimage",
    "albums.delete_albumimage",
    "albums.view_label",
    "albums.add_label",
    "albums.change_label",
    "albums.delete_label",
    "albums.curate_all",
    "albums.view_captionrun",
    "albums.view_scraperun",  # their own runs: ScrapeRun.objects.visible_to
    "albums.add_scraperun",
    "albums.change_scraperun",  # cancel
    "generation.change_job",
    "generation.see_all_jobs",
    "generation.add_batch",
    "generation.change_batch",
    "generation.add_promptset",
    "generation.change_promptset",
    "generation.delete_promptset",
    "generation.view_promptsetitem",
    "generation.add_promptsetitem",
    "generation.change_promptsetitem",
    "generation.delete_promptsetitem",
    "generation.view_promptsetlora",
    "generation.add_promptsetlora",
    "generation.change_promptsetlora",
    "generation.delete_promptsetlora",
    "generation.add_modelversion",
    "generation.change_modelversion",
    "training.add_trainingrun",
    "training.change_trainingrun",
    "training.see_all_runs",
]

# Admins hold every permission (permissions_for), so what neither list above names is
# theirs alone: role management (accounts, auth) and the site settings
# (generation.view_sitesettings, generation.change_sitesettings: the generation defaults
# and limits, in the admin and PATCH /api/config/).

STAFF_ROLES = {EDITOR, ADMIN}


def permissions_for(role, Permission=Permission):
    """The Permission queryset a role should hold; the admin role holds all."""
    if role == ADMIN:
        return Permission.objects.all()
    names = VIEWER_PERMISSIONS if role == VIEWER else EDITOR_PERMISSIONS
    wanted = Q()
    for name in names:
        app_label, codename = name.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(wanted)


def sync_roles(Group=Group, Permission=Permission):
    """Create the role groups and give each the permissions that exist by now.

    The data migration calls it with historical models; post_migrate with the real ones,
    so that permissions of models added later join their roles too.
    """
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*permissions_for(role, Permission))


def sync_roles_after_migrate(**kwargs):
    sync_roles()


def role_of(user):
    """The highest role a user holds, or None."""
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return None


def roles_within(user):
    """The roles at or below the user's highest (all three for a superuser, none without a
    role): what is open to one of them is open to the user (a model's `usable_by`)."""
    if user.is_superuser:
        return list(ROLES)
    role = role_of(user)
    return ROLES[: ROLES.index(role) + 1] if role else []


def set_role(user, role):
    """Give a user exactly one role (one audit row inside a transaction)."""
    user.groups.set([Group.objects.get(name=role)])
