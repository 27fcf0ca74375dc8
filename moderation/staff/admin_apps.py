"""Django admin's app config with the desk's admin site as the default site.

It lives apart from moderation/apps.py because an apps module with several AppConfig classes
loses its automatic default, and the site itself imports models, which an app config may not.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class DeskAdminConfig(AdminConfig):
    default_site = "moderation.staff.admin_site.DeskAdminSite"
