"""The admin site never goes around the services: it reads, and its actions call them.

Privileges (superuser, staff, groups, permissions), activation and passwords change only through
audited services; no admin page lets a non-superuser change them for anyone, crafted form fields
are ignored, every change the admin still makes is audited, superusers are made only at the
command line, and django-q2 runs only the project's own task functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from multiprocessing import Value
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone
from django_q import monitor as q_monitor
from django_q import scheduler as q_scheduler
from django_q import worker as q_worker
from django_q.brokers import get_broker
from django_q.models import Failure, OrmQ, Schedule, Success
from django_q.queues import Queue
from django_q.signing import SignedPackage
from django_q.tasks import async_task
from simple_history.admin import SimpleHistoryAdmin

from governance import services
from governance.exceptions import NotAllowed
from governance.models import ApiToken, AuditEvent, User
from governance.roles import Pool, Role
from governance.scheduling import TaskRefused, allowed_task_functions, registered

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Lantern-Orbit-Quarry-42"

# What a hostile IAM admin adds to any admin form: superuser, staff, every group and permission,
# no "is_active" (an unticked box: deactivate), and a password in every shape Django's forms take.
CRAFTED: dict[str, Any] = {
    "is_superuser": "on",
    "is_staff": "on",
    "password": "md5$crafted$0123456789abcdef",
    "password1": NEW_PASSWORD,
    "password2": NEW_PASSWORD,
    "usable_password": "true",
}


def _crafted() -> dict[str, Any]:
    return {
        **CRAFTED,
        "groups": [str(pk) for pk in Group.objects.values_list("pk", flat=True)],
        "user_permissions": [str(pk) for pk in Permission.objects.values_list("pk", flat=True)],
    }


def _privileges() -> dict[int, tuple[Any, ...]]:
    """Everything about every account that only the services may change."""
    return {
        u.pk: (
            u.is_superuser,
            u.is_staff,
            u.is_active,
            u.password,
            frozenset(g.pk for g in u.groups.all()),
            frozenset(p.pk for p in u.user_permissions.all()),
        )
        for u in User.objects.prefetch_related("groups", "user_permissions")
    }


def _form_payload(response: Any) -> dict[str, Any]:
    """What a browser would send back from the admin form in ``response``: every editable field
    with its current value, inline formsets included."""
    context = response.context
    adminform = context.get("adminform") if context is not None else None
    if adminform is None:
        return {}
    data: dict[str, Any] = {}
    form_list = [adminform.form]
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        data.update({f"{formset.prefix}-{key}": value for key, value in formset.management_form.initial.items()})
        form_list.extend(formset.forms)
    for form in form_list:
        for bound in form:
            if bound.field.disabled:
                continue
            widget, value = bound.field.widget, bound.value()
            if isinstance(widget, forms.MultiWidget):
                parts = widget.decompress(value)
                assert parts is not None
                for i, part in enumerate(parts):
                    data[f"{bound.html_name}_{i}"] = widget.widgets[i].format_value(part) or ""
            elif isinstance(widget, forms.CheckboxInput):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            else:
                data[bound.html_name] = "" if value is None else str(value)
    return data


def _rows(model: type[Model]) -> list[dict[str, Any]]:
    return list(model._default_manager.order_by("pk").values())


@pytest.fixture
def target(make_user: Callable[..., User]) -> User:
    """An ordinary person, the other end of every attempt."""
    return make_user("target", Role.BUSINESS_USER)


@pytest.fixture
def root(make_user: Callable[..., User]) -> User:
    return make_user("root", is_staff=True, is_superuser=True)


# --- Every admin page, walked ------------------------------------------------------------------------


def test_no_admin_page_lets_an_iam_admin_change_privileges_activation_groups_or_passwords(
    client: Any, demo_org: None, iam_admin: User, target: User
) -> None:
    """Every registered admin, as a staff IAM admin (not a superuser): its add form, the change
    form of a row, the history "revert" form of that row and, for people, the password page, each
    posted back as a browser would with the crafted privilege fields added. No account's
    privileges, activation, groups, permissions or password change, and whatever row an admin
    page does change comes with its audit event."""
    client.force_login(iam_admin)
    before = _privileges()
    walked: set[type[Model]] = set()
    unaudited: list[str] = []

    def post(model: type[Model], url: str, data: dict[str, Any]) -> None:
        rows = _rows(model)
        last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        client.post(url, data)
        walked.add(model)
        changed = _rows(model) != rows
        if changed and not AuditEvent.objects.filter(id__gt=last_event, target_type=model._meta.label_lower).exists():
            unaudited.append(url)

    for model, model_admin in admin.site._registry.items():
        base = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        add_url = reverse(f"{base}_add")
        post(model, add_url, {**_form_payload(client.get(add_url)), "username": "crafted-newcomer", **_crafted()})
        rows = [target, iam_admin] if model is User else list(model._default_manager.order_by("pk")[:1])
        for obj in rows:
            change_url = reverse(f"{base}_change", args=[obj.pk])
            post(model, change_url, {**_form_payload(client.get(change_url)), **_crafted()})
            if isinstance(model_admin, SimpleHistoryAdmin):
                # A SimpleHistoryAdmin model has a history manager; the registry types it as a bare Model.
                first = obj.history.order_by("history_id").first()  # type: ignore[attr-defined]
                if first is not None:
                    url = reverse(f"{base}_simple_history", args=[obj.pk, first.history_id])
                    post(model, url, {**_form_payload(client.get(url)), **_crafted()})
            if model is User:
                post(model, reverse("admin:auth_user_password_change", args=[obj.pk]), _crafted())

    assert walked == set(admin.site._registry)
    after = _privileges()
    assert {pk: after[pk] for pk in before} == before
    for newcomer in User.objects.exclude(pk__in=before):  # accounts the add forms made
        assert after[newcomer.pk][:2] == (False, False) and not newcomer.has_usable_password()
        assert after[newcomer.pk][4:] == (frozenset(), frozenset())
    assert unaudited == []


# --- The user form ------------------------------------------------------------------------------------


def test_crafted_privilege_fields_in_the_user_form_are_ignored(client: Any, iam_admin: User, target: User) -> None:
    client.force_login(iam_admin)
    before = _privileges()
    for person in (target, iam_admin):
        url = f"/admin/governance/user/{person.pk}/change/"
        response = client.post(url, {**_form_payload(client.get(url)), **_crafted()})
        assert response.status_code == 302, response.content.decode()[:2000]
    assert _privileges() == before


def test_profile_changes_in_the_admin_are_audited_through_the_service(
    client: Any, iam_admin: User, target: User, make_user: Callable[..., User]
) -> None:
    boss = make_user("boss", Role.BUSINESS_USER)
    client.force_login(iam_admin)
    url = f"/admin/governance/user/{target.pk}/change/"
    payload = {**_form_payload(client.get(url)), "department": "Finance", "manager": str(boss.pk)}
    assert client.post(url, payload).status_code == 302
    target.refresh_from_db()
    assert (target.department, target.manager) == ("Finance", boss)
    event = AuditEvent.objects.get(action="user.profile_changed", target_id=str(target.pk))
    assert event.actor == iam_admin
    assert event.before == {"department": "", "manager": None}
    assert event.after == {"department": "Finance", "manager": boss.pk}


def test_even_a_superuser_cannot_make_a_superuser_in_the_admin(client: Any, root: User, target: User) -> None:
    client.force_login(root)
    url = f"/admin/governance/user/{target.pk}/change/"
    response = client.get(url)
    assert "is_superuser" in response.context["adminform"].readonly_fields
    assert client.post(url, {**_form_payload(response), "is_superuser": "on"}).status_code == 302
    target.refresh_from_db()
    assert not target.is_superuser


def test_admin_site_access_is_given_by_a_superuser_through_the_audited_service(
    client: Any, root: User, iam_admin: User, target: User
) -> None:
    client.force_login(root)
    url = f"/admin/governance/user/{target.pk}/change/"
    assert client.post(url, {**_form_payload(client.get(url)), "is_staff": "on"}).status_code == 302
    target.refresh_from_db()
    assert target.is_staff
    event = AuditEvent.objects.get(action="user.staff_changed", target_id=str(target.pk))
    assert (event.actor, event.after) == (root, {"is_staff": True})
    # The rule holds whoever calls: an IAM admin may not give it, not even to himself.
    with pytest.raises(NotAllowed):
        services.user_set_staff(actor=iam_admin, user=target, is_staff=False)


def test_accounts_made_in_the_admin_have_no_password_or_privileges_and_are_audited(
    client: Any, iam_admin: User
) -> None:
    client.force_login(iam_admin)
    payload = {"username": "newcomer", "email": "newcomer@example.com", "department": "Sales", **_crafted()}
    assert client.post("/admin/governance/user/add/", payload).status_code == 302
    newcomer = User.objects.get(username="newcomer")
    assert not (newcomer.is_superuser or newcomer.is_staff or newcomer.has_usable_password())
    assert not newcomer.groups.exists() and not newcomer.user_permissions.exists()
    event = AuditEvent.objects.get(action="user.created", target_id=str(newcomer.pk))
    assert event.after is not None
    assert event.actor == iam_admin and event.after["department"] == "Sales"


def test_an_account_name_taken_in_another_case_is_a_field_error_that_keeps_the_input(
    client: Any, iam_admin: User, target: User
) -> None:
    client.force_login(iam_admin)
    payload = {"username": target.username.upper(), "department": "Typed"}
    response = client.post("/admin/governance/user/add/", payload)
    assert response.status_code == 200
    assert "username" in response.context["adminform"].form.errors
    assert 'value="Typed"' in response.content.decode()
    assert not User.objects.filter(username=target.username.upper()).exists()


@pytest.mark.parametrize(
    "call",
    [
        lambda actor, user: services.user_create(actor=actor, username="newcomer"),
        lambda actor, user: services.user_update_profile(actor=actor, user=user, changes={"department": "X"}),
        lambda actor, user: services.user_deactivate(actor=actor, user=user, reason="Left"),
    ],
    ids=["create", "update_profile", "deactivate"],
)
def test_only_iam_admins_create_change_or_deactivate_accounts(
    call: Callable[[User, User], object], make_user: Callable[..., User], target: User
) -> None:
    business_user = make_user("someone", Role.BUSINESS_USER)
    before = AuditEvent.objects.count()
    with pytest.raises(NotAllowed):
        call(business_user, target)
    target.refresh_from_db()
    assert (target.department, target.is_active) == ("", True)
    assert not User.objects.filter(username="newcomer").exists()
    assert AuditEvent.objects.count() == before


def test_accounts_cannot_be_deleted_in_the_admin_even_by_a_superuser(client: Any, root: User, target: User) -> None:
    client.force_login(root)
    assert client.post(f"/admin/governance/user/{target.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(
        "/admin/governance/user/", {"action": "delete_selected", "_selected_action": [target.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)
    assert User.objects.filter(pk=target.pk).exists()


def test_history_pages_never_revert_a_row(client: Any, iam_admin: User, target: User) -> None:
    target.department = "Finance"  # a second version of the row, so there is an older one
    target.save()
    first = target.history.order_by("history_id").first()
    client.force_login(iam_admin)
    url = f"/admin/governance/user/{target.pk}/history/{first.history_id}/"
    assert client.get(url).status_code == 200  # readable
    response = client.post(url, {**_form_payload(client.get(url)), **_crafted()})
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.department == "Finance" and not target.is_superuser


# --- Roles and activation: admin actions calling the services ---------------------------------


def test_set_roles_action_asks_for_roles_and_a_reason_then_audits_each_change(
    client: Any, iam_admin: User, target: User
) -> None:
    client.force_login(iam_admin)
    selected = {"action": "set_roles", "_selected_action": [target.pk]}
    page = client.post("/admin/governance/user/", selected)
    assert page.status_code == 200 and 'name="apply"' in page.content.decode()
    refused = client.post("/admin/governance/user/", {**selected, "apply": "1", "roles": [Role.REVIEWER]})
    assert refused.status_code == 200  # no reason: the page again, nothing changed
    assert set(target.groups.values_list("name", flat=True)) == {Role.BUSINESS_USER}
    response = client.post(
        "/admin/governance/user/",
        {**selected, "apply": "1", "roles": [Role.REVIEWER, Pool.IAM_REVIEWERS], "reason": "Joins the IAM team"},
    )
    assert response.status_code == 302
    assert set(target.groups.values_list("name", flat=True)) == {Role.REVIEWER, Pool.IAM_REVIEWERS}
    event = AuditEvent.objects.get(action="user.roles_changed", target_id=str(target.pk))
    assert (event.actor, event.reason) == (iam_admin, "Joins the IAM team")
    assert event.after == {"roles": sorted([Role.REVIEWER, Pool.IAM_REVIEWERS])}


def test_deactivation_from_the_admin_happens_only_through_the_audited_action(
    client: Any, iam_admin: User, target: User
) -> None:
    token, _key = services.api_token_issue(actor=iam_admin, user=target, name="laptop")
    client.force_login(iam_admin)
    url = f"/admin/governance/user/{target.pk}/change/"
    payload = {k: v for k, v in _form_payload(client.get(url)).items() if k != "is_active"}
    client.post(url, payload)  # the box unticked: ignored
    target.refresh_from_db()
    assert target.is_active
    response = client.post("/admin/governance/user/", {"action": "deactivate_users", "_selected_action": [target.pk]})
    assert response.status_code == 302
    target.refresh_from_db()
    assert not target.is_active
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    event = AuditEvent.objects.get(action="user.deactivated", target_id=str(target.pk))
    assert event.actor == iam_admin


def test_choosing_oneself_as_manager_in_the_admin_is_a_field_error_that_keeps_the_input(
    client: Any, iam_admin: User, target: User
) -> None:
    client.force_login(iam_admin)
    url = f"/admin/governance/user/{target.pk}/change/"
    payload = {**_form_payload(client.get(url)), "department": "Typed", "manager": str(target.pk)}
    response = client.post(url, payload)
    assert response.status_code == 200
    assert "manager" in response.context["adminform"].form.errors
    assert 'value="Typed"' in response.content.decode()
    target.refresh_from_db()
    assert (target.department, target.manager) == ("", None)


def test_tokens_are_revoked_in_the_admin_only_by_those_who_may_change_them(
    client: Any, iam_admin: User, target: User, make_user: Callable[..., User]
) -> None:
    token, _key = services.api_token_issue(actor=iam_admin, user=target, name="laptop")
    reader = make_user("reader", Role.REVIEWER, is_staff=True)  # may view tokens, not change them
    assert reader.has_perm("governance.view_apitoken") and not reader.has_perm("governance.change_apitoken")
    action = {"action": "revoke_tokens", "_selected_action": [token.pk]}
    client.force_login(reader)
    client.post("/admin/governance/apitoken/", action)
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    client.force_login(iam_admin)
    assert client.post("/admin/governance/apitoken/", action).status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert AuditEvent.objects.filter(action="api_token.revoked", target_id=str(token.pk), actor=iam_admin).exists()


# --- Passwords -------------------------------------------------------------------------------------


def test_password_page_answers_403_to_non_superusers(client: Any, iam_admin: User, target: User) -> None:
    before = _privileges()
    client.force_login(iam_admin)
    for person in (target, iam_admin):
        url = f"/admin/governance/user/{person.pk}/password/"
        assert client.get(url).status_code == 403
        assert client.post(url, _crafted()).status_code == 403
    assert _privileges() == before
    # The rule lives in the service, whoever calls it.
    with pytest.raises(NotAllowed):
        services.user_set_password(actor=iam_admin, user=target, raw_password=NEW_PASSWORD)


def test_a_superuser_password_reset_in_the_admin_is_audited_once(client: Any, root: User, target: User) -> None:
    client.force_login(root)
    url = f"/admin/governance/user/{target.pk}/password/"
    response = client.post(url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(action="user.password_set", target_id=str(target.pk))
    assert (event.actor, event.owner) == (root, target)
    assert event.after == {"password_sign_in": True}
    assert NEW_PASSWORD not in str(event.before) + str(event.after) + event.reason
    # Turning password sign-in off (single sign-on only) is a password change too.
    response = client.post(url, {"usable_password": "false", "unset-password": "1"})
    assert response.status_code == 302
    target.refresh_from_db()
    assert not target.has_usable_password()
    latest = AuditEvent.objects.filter(action="user.password_set", target_id=str(target.pk)).order_by("-id")[0]
    assert latest.after == {"password_sign_in": False}


def test_own_password_change_in_the_admin_is_audited_and_keeps_the_session(client: Any, iam_admin: User) -> None:
    client.force_login(iam_admin)
    response = client.post(
        "/admin/password_change/",
        {"old_password": "pw", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    iam_admin.refresh_from_db()
    assert iam_admin.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(action="user.password_set", target_id=str(iam_admin.pk))
    assert event.actor == iam_admin and event.reason == "Own password changed in the admin"
    assert client.get("/admin/").status_code == 200  # still signed in


def test_passwords_set_around_the_services_are_audited(target: User, monkeypatch: pytest.MonkeyPatch) -> None:
    """``manage.py changepassword`` and code calling ``set_password`` are recorded as well."""
    monkeypatch.setattr(
        "django.contrib.auth.management.commands.changepassword.getpass.getpass", lambda *a, **k: NEW_PASSWORD
    )
    call_command("changepassword", "target")
    event = AuditEvent.objects.get(action="user.password_set", target_id=str(target.pk))
    assert event.actor_kind == "system" and event.owner == target
    assert "command line" in event.reason
    target.refresh_from_db()
    target.set_password("another-" + NEW_PASSWORD)
    target.save()
    assert AuditEvent.objects.filter(action="user.password_set", target_id=str(target.pk)).count() == 2


# --- Superusers -------------------------------------------------------------------------------------


def test_superusers_are_made_at_the_command_line_and_that_is_audited(
    roles: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)
    call_command("createsuperuser", interactive=False, username="root2", email="root2@example.com", verbosity=0)
    root2 = User.objects.get(username="root2")
    event = AuditEvent.objects.get(action="user.superuser_created", target_id=str(root2.pk))
    assert event.actor_kind == "system" and event.owner == root2
    # Made a superuser some other way (a shell): recorded too.
    person = User.objects.create_user("promoted", password=None)
    person.is_superuser = True
    person.save()
    assert AuditEvent.objects.filter(action="user.superuser_granted", target_id=str(person.pk)).exists()


def test_every_superuser_sign_in_is_audited(client: Any, root: User, iam_admin: User) -> None:
    assert client.post("/admin/login/?next=/admin/", {"username": "root", "password": "pw"}).status_code == 302
    event = AuditEvent.objects.get(action="user.superuser_login")
    assert (event.actor, event.target_id, event.owner) == (root, str(root.pk), root)
    client.logout()
    assert client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "pw"}).status_code == 302
    assert AuditEvent.objects.filter(action="user.superuser_login").count() == 1  # not for staff


# --- Background tasks -------------------------------------------------------------------------------


def test_task_and_schedule_pages_are_read_only_even_for_a_superuser(client: Any, root: User) -> None:
    schedule = Schedule.objects.create(
        name="read-only-check", func="governance.tasks.ping", schedule_type=Schedule.ONCE
    )
    client.force_login(root)
    assert client.get("/admin/django_q/schedule/add/").status_code == 403
    url = f"/admin/django_q/schedule/{schedule.pk}/change/"
    assert client.get(url).status_code == 200  # readable
    response = client.post(url, {"name": "read-only-check", "func": "subprocess.getoutput", "schedule_type": "O"})
    assert response.status_code == 403
    assert client.post(f"/admin/django_q/schedule/{schedule.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Schedule.objects.get(pk=schedule.pk).func == "governance.tasks.ping"
    for model in (Schedule, Success, Failure, OrmQ):  # no "resubmit", no bulk delete
        if not admin.site.is_registered(model):
            continue  # django-q2 shows its queue only with the ORM broker
        changelist = client.get(f"/admin/django_q/{model._meta.model_name}/")
        assert changelist.status_code == 200
        assert not changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request), model
    # Role groups get their permissions from code, and single sign-on links are not edited here.
    group = Group.objects.get(name=Role.IAM_ADMIN)
    assert client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "iam_admin"}).status_code == 403
    assert client.get("/admin/social_django/usersocialauth/add/").status_code == 403


@pytest.fixture
def worker_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """One scheduler pass onto the ORM broker, then django-q2's own worker and monitor functions
    in this process. (Their connection housekeeping would close the test's transaction.)"""
    for module in (q_scheduler, q_worker, q_monitor):
        monkeypatch.setattr(module, "close_old_django_connections", lambda: None)

    def run() -> None:
        broker = get_broker()
        q_scheduler.scheduler(broker=broker)
        tasks, results = Queue(), Queue()
        for _ in range(broker.queue_size()):
            for _ack, payload in broker.dequeue() or []:
                tasks.put(SignedPackage.loads(payload))
        tasks.put("STOP")
        q_worker.worker(tasks, results, Value("f", -1))
        results.put("STOP")
        q_monitor.monitor(results, broker=broker)

    yield run


def _due(name: str, func: str, args: str = "", hook: str | None = None) -> Schedule:
    # Only this schedule is due (the apps' own ones are pushed into the future for this test).
    Schedule.objects.update(next_run=timezone.now() + timedelta(days=1))
    return Schedule.objects.create(
        name=name,
        func=func,
        args=args,
        hook=hook,
        schedule_type=Schedule.ONCE,
        next_run=timezone.now() - timedelta(seconds=1),
        repeats=1,
    )


def test_a_schedule_naming_a_function_outside_the_allow_list_is_refused_by_the_worker(
    worker_in_process: Callable[[], None], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    _due("sneaky", "subprocess.getoutput", args=repr(f"touch {marker}"))
    worker_in_process()
    assert not marker.exists()
    failure = Failure.objects.get(func="subprocess.getoutput")
    assert "TaskRefused" in failure.result and "not one of the portal's task functions" in failure.result
    assert "Refused to run task" in caplog.text
    # A result hook is a function call too.
    _due("sneaky-hook", "governance.tasks.ping", hook="subprocess.getoutput")
    worker_in_process()
    refused = Failure.objects.get(func="governance.tasks.ping")
    assert "result hook 'subprocess.getoutput'" in refused.result and refused.hook is None
    # Run synchronously, the refusal is raised to the caller.
    with pytest.raises(TaskRefused):
        async_task("os.getcwd", sync=True)


def test_the_projects_own_tasks_still_run_through_the_worker(worker_in_process: Callable[[], None]) -> None:
    _due("ping", "governance.tasks.ping", args="'through the worker'")
    worker_in_process()
    assert Success.objects.get(func="governance.tasks.ping").result == "through the worker"


def test_the_allow_list_is_the_task_modules_and_the_registered_periodic_tasks() -> None:
    allowed = allowed_task_functions()
    assert {task.func for task in registered()} <= allowed
    assert "approvals.campaigns.tasks.campaign_run_scheduled" in allowed  # campaign definitions' schedules
    assert "governance.tasks.outbox_deliver" in allowed  # enqueued by the outbox
    # Not the helpers a task module imports, nor anything else importable.
    assert "governance.tasks.services" not in allowed
    assert not any(name.startswith(("subprocess.", "os.", "builtins.")) for name in allowed)
