"""The demo organisation. ``manage.py seed_demo`` runs the kernel's seeder (people and roles) and
then every app's seeder, in order; apps register theirs in ``AppConfig.ready``. Each seeder must
be idempotent: running the command twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password

from governance.actors import Actor
from governance.models import User
from governance.roles import Pool, Role

DEMO_PASSWORD = "demo"


@dataclass(frozen=True)
class Seeder:
    name: str
    order: int
    run: Callable[[], None]


_SEEDERS: dict[str, Seeder] = {}


def register(name: str, order: int, run: Callable[[], None]) -> None:
    _SEEDERS[name] = Seeder(name=name, order=order, run=run)


def seeders() -> list[Seeder]:
    return sorted(_SEEDERS.values(), key=lambda s: (s.order, s.name))


# username, first, last, department, manager, roles
DEMO_PEOPLE: list[tuple[str, str, str, str, str, list[str]]] = [
    ("ivan", "Ivan", "Ivanov", "Identity & Access Management", "", [Role.IAM_ADMIN]),
    ("audrey", "Audrey", "Auden", "Internal Audit", "", [Role.AUDITOR]),
    ("rita", "Rita", "Reyes", "Identity & Access Management", "ivan", [Role.REVIEWER, Pool.IAM_REVIEWERS]),
    ("raj", "Raj", "Rao", "Identity & Access Management", "ivan", [Role.REVIEWER, Pool.IAM_REVIEWERS]),
    ("sofia", "Sofia", "Santos", "Security", "ivan", [Role.REVIEWER, Pool.SECURITY_REVIEWERS]),
    ("omar", "Omar", "Osei", "Data Platform", "ivan", [Role.REVIEWER]),
    ("mark", "Mark", "Meyer", "Sales", "", [Role.BUSINESS_USER]),
    ("alice", "Alice", "Archer", "Sales", "mark", [Role.BUSINESS_USER]),
    ("bob", "Bob", "Baker", "Customer Support", "mark", [Role.BUSINESS_USER]),
]


def seed_people() -> None:
    from governance.services import user_set_roles  # services import models; keep this module light

    users: dict[str, User] = {}
    for username, first, last, dept, _manager, role_list in DEMO_PEOPLE:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@example.com",
                "department": dept,
                # The admin is where IAM admins manage people and auditors read everything.
                "is_staff": Role.IAM_ADMIN in role_list or Role.AUDITOR in role_list,
                # Created with it (a password set later is audited as a change, and the demo
                # password is too weak for user_set_password's validators).
                "password": make_password(DEMO_PASSWORD),
            },
        )
        if created:
            # Through the service, so the demo trail starts with who got which role (audited);
            # only on creation, so a demo user's roles changed by hand survive a re-seed.
            user_set_roles(actor=Actor.system(on_behalf_of=None), user=user, roles=role_list, reason="demo data")
        users[username] = user
    for username, *_rest in DEMO_PEOPLE:
        manager_name = next(p[4] for p in DEMO_PEOPLE if p[0] == username)
        if manager_name and users[username].manager_id is None:
            users[username].manager = users[manager_name]
            users[username].save(update_fields=["manager"])


register("people", 0, seed_people)
