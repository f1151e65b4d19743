import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# .env.example ends with the variables that docker-compose.yml reads, not settings.py.
COMPOSE_SECTION = "# --- Docker Compose"


def listed(text):
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))


def env_example():
    """(the settings part, the Docker Compose part) of .env.example."""
    settings_part, marker, compose_part = (ROOT / ".env.example").read_text().partition(
        COMPOSE_SECTION)
    assert marker, f".env.example has a {COMPOSE_SECTION!r} section"
    return settings_part, compose_part


def test_it_lists_every_setting_read_from_the_environment_in_env_example():
    settings = (ROOT / "imagineer" / "settings.py").read_text()
    read = set(re.findall(r'env(?:_bool|_int|_list|_fraction|_rate)?\("([A-Z][A-Z0-9_]+)"',
                          settings))
    settings_listed = listed(env_example()[0])
    assert read, "settings.py reads its settings with env(...)"
    assert read - settings_listed == set(), "settings missing from .env.example"
    assert settings_listed - read == set(), ".env.example lists settings that nothing reads"


def test_it_lists_every_variable_of_docker_compose_in_env_example():
    settings_part, compose_part = env_example()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    compose_listed = listed(compose_part)
    assert {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD"} <= used
    assert used - listed(settings_part) - compose_listed == set(), \
        "docker-compose.yml reads variables that .env.example does not list"
    assert compose_listed - used == set(), \
        "the Docker Compose section lists variables that docker-compose.yml does not read"


def test_it_keeps_comments_off_the_lines_of_empty_values():
    # Docker Compose reads `DJANGO_SECRET_KEY=   # note` as the secret key "# note".
    text = (ROOT / ".env.example").read_text()
    assert re.findall(r"^([A-Z][A-Z0-9_]+)=[ \t]*#", text, re.MULTILINE) == []
