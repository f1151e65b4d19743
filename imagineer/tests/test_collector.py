"""The web process freezes its start-up objects after its first request (core.collector),
so that the garbage collector's full passes stop walking them."""

import gc

import pytest
from django.core.signals import request_finished

from core import collector

pytestmark = pytest.mark.django_db


def test_the_first_request_freezes_what_start_up_built_and_only_once(client):
    assert client.get("/accounts/login/").status_code == 200
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # Django's, DRF's and the apps' modules, classes and functions
    assert not request_finished.disconnect(dispatch_uid=collector.DISPATCH_UID)  # gone
    assert client.get("/accounts/login/").status_code == 200
    assert gc.get_freeze_count() <= frozen  # not frozen again (frozen objects may die)
    garbage = [[]]
    garbage[0].append(garbage)  # a cycle made after the freeze: still collected
    del garbage
    assert gc.collect() >= 2
