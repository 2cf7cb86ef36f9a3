"""The runtime's pages (under ``/runtime/``)."""

app_name = "runtime"

urlpatterns: list = []
