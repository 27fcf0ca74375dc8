from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client


def test_login_page_renders_with_the_desk_look(client: Client, db: None) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Sign in to the abuse desk" in response.content
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_login_signs_in_and_redirects_to_the_queue(client: Client, moderator: User) -> None:
    response = client.post("/login/", {"username": "alice", "password": "alice-password"})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_with_a_wrong_password_rerenders_with_200(client: Client, moderator: User) -> None:
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_logout_rejects_get(as_moderator: Client) -> None:
    assert as_moderator.get("/logout/").status_code == 405


def test_logout_signs_out_on_post(as_moderator: Client) -> None:
    as_moderator.post("/logout/")
    assert as_moderator.get("/").status_code == 302
