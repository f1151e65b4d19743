"""Python's garbage collector in the web process: the objects of start-up (every module,
class and function Django, DRF and the apps import: about 130,000) frozen after the first
request, so that the collector's full passes stop walking them.

A full pass walks every object the collector tracks. It runs when the objects that
survived the younger generations grow by a quarter of the old ones, which a request that
builds many objects at once (the jobs list: 50 jobs, each serialized with its LoRAs,
images and settings) brings about every few requests; each such request then waited for a
walk of all of start-up's objects: /api/jobs/ p95 70 ms against a p50 of 23 ms on
PostgreSQL at a million images (docs/performance.md). Frozen, they are left out of every
pass (`gc.freeze`); what start-up built stays for the life of the process anyway.
Connected by accounts.apps; worker processes serve no requests and are left as they are.
"""

import gc

from django.core.signals import request_finished


def freeze_after_first_request(sender, **kwargs):
    """Collect what the first request left, then freeze what remains (once a process: by
    then the URLconf, the views and the serializers are imported)."""
    request_finished.disconnect(freeze_after_first_request, dispatch_uid=DISPATCH_UID)
    gc.collect()
    gc.freeze()


DISPATCH_UID = "core.collector.freeze_after_first_request"


def connect():
    request_finished.connect(freeze_after_first_request, dispatch_uid=DISPATCH_UID)
