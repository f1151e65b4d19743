import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_it_lists_every_setting_read_from_the_environment_in_env_example():
    settings = (ROOT / "imagineer" / "settings.py").read_text()
    read = set(re.findall(r'env(?:_bool|_int|_list)?\("([A-Z][A-Z0-9_]+)"', settings))
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(),
                            re.MULTILINE))
    assert read, "settings.py reads its settings with env(...)"
    assert read - listed == set(), "settings missing from .env.example"
    assert listed - read == set(), ".env.example lists settings that nothing reads"


def test_it_keeps_comments_off_the_lines_of_empty_values():
    # Docker Compose reads `DJANGO_SECRET_KEY=   # note` as the secret key "# note".
    text = (ROOT / ".env.example").read_text()
    assert re.findall(r"^([A-Z][A-Z0-9_]+)=[ \t]*#", text, re.MULTILINE) == []
