"""Fixtures for the project's tests: the tiny demo model, shared with generation's tests."""

from generation.tests import conftest as generation_fixtures

demo_model_dir = generation_fixtures.demo_model_dir
demo_base = generation_fixtures.demo_base
demo_loras = generation_fixtures.demo_loras
quick_job = generation_fixtures.quick_job
