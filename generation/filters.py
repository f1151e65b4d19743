"""The query filters of the jobs and models lists (core.filters' rules)."""

import django_filters

from core.filters import IdFilter, choice_filter

from .models import Job, ModelVersion, Status


class JobFilter(django_filters.FilterSet):
    status = choice_filter(Status.values)
    batch = IdFilter(field_name="batch_id", label="Only this batch's jobs.")
    owner = IdFilter(field_name="owner_id", label="Only this user's jobs (a user id).")

    class Meta:
        model = Job
        fields = []


class ModelVersionFilter(django_filters.FilterSet):
    kind = choice_filter(ModelVersion.Kind.values)

    class Meta:
        model = ModelVersion
        fields = []
