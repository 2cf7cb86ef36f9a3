"""The control catalog in the header's Oversight menu, for those who read it (IAM admins,
reviewers and auditors), registered from ``ControlsConfig.ready``."""

from __future__ import annotations

from governance import portal
from governance.controls.catalog import may_see


def register() -> None:
    portal.register_nav(
        portal.NavEntry(label="Controls", url_name="controls-list", order=88, visible=may_see, group=portal.OVERSIGHT)
    )
    portal.register_nav(
        portal.NavEntry(
            label="Frameworks", url_name="framework-list", order=89, visible=may_see, group=portal.OVERSIGHT
        )
    )
