"""Sign-in and sign-out with the desk's own look; Django's auth views do the work."""

from __future__ import annotations

from django.contrib.auth import views as auth_views

login = auth_views.LoginView.as_view(template_name="moderation/login.html", redirect_authenticated_user=True)
# LogoutView accepts POST only, so a link or an <img> elsewhere cannot sign a moderator out.
logout = auth_views.LogoutView.as_view()
