import pytest

# Backend-neutral (conftest.py): a browser walk; the views it drives have their own tests on both
# databases.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


def test_it_signs_in_through_the_sign_in_page_and_greets_the_user(sign_in_page, make_user):
    user = make_user("bea", "viewer", first_name="Bea", last_name="Arthur")
    page = sign_in_page(user)
    assert page.locator("h1").inner_text() == "Welcome, Bea Arthur"
    assert "Bea Arthur" in page.locator("header").inner_text()
