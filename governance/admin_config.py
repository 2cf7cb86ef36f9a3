"""Django's admin app with the portal's site as its default (see ``governance.admin_site``).

A module of its own because ``INSTALLED_APPS`` imports it before the models are ready."""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "governance.admin_site.PortalAdminSite"
