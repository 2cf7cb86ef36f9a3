"""Writes of the control catalog: what the organisation adds to it in the portal (its own
frameworks and their items, its own mappings of controls to framework items, built-in or its own)
and its own evidence thresholds. The public frameworks and their mappings are the data files
(``governance.controls.catalog``); no service changes them.

Every function takes ``actor=``: only IAM admins (a superuser counts as one; the system acting for
one may too) change the catalog, anyone else gets ``PermissionDenied``. Each validates, writes and
records its audit event in one transaction.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from governance.actors import Actor
from governance.audit import audit_record, snapshot
from governance.controls import catalog, registry
from governance.controls.models import ControlMapping, EvidenceThreshold, Framework, FrameworkItem
from governance.exceptions import Conflict, ValidationFailed
from governance.models import User
from governance.validators import SINGLE_LINE_MESSAGE, has_control_characters

# Slugs the catalog's own pages use under /frameworks/: no framework may take them.
RESERVED_SLUGS = frozenset({"manage", "new"})
TEXT_MAX_LENGTH = 5000
REASON_MAX_LENGTH = 1000
FRAMEWORK_FIELDS = ("slug", "name", "publisher", "version", "source_url", "description")
ITEM_FIELDS = ("framework", "code", "title", "description", "order")
MAPPING_FIELDS = ("control_id", "framework_slug", "item_code", "note")
THRESHOLD_FIELDS = ("figure_key", "met", "partly", "reason")


def catalog_keeper(actor: Actor | User) -> tuple[Actor, User]:
    """``actor`` and the person who answers for the change, once that person is an IAM admin
    (a read-only auditor never is); everyone else gets ``PermissionDenied``."""
    resolved = Actor.coerce(actor)
    person = resolved.on_behalf_of if resolved.is_system else resolved.user
    if person is None or not catalog.may_manage(person):
        raise PermissionDenied("Only IAM admins change the control catalog.")
    return resolved, person


def _line(value: Any, field: str, *, max_length: int, required: bool = True, what: str = "") -> str:
    """``value`` as a single line of text, stripped; an error naming ``field`` otherwise."""
    text = str(value or "").strip()
    if not text:
        if required:
            raise ValidationFailed.on(field, what or "This field is required.")
        return ""
    if len(text) > max_length:
        raise ValidationFailed.on(field, f"At most {max_length} characters.")
    if has_control_characters(text):
        raise ValidationFailed.on(field, SINGLE_LINE_MESSAGE)
    return text


def _text(value: Any, field: str, *, max_length: int = TEXT_MAX_LENGTH) -> str:
    text = str(value or "").strip()
    if len(text) > max_length:
        raise ValidationFailed.on(field, f"At most {max_length} characters.")
    return text


def _clean_slug(value: Any) -> str:
    slug = _line(value, "slug", max_length=60, what="Give the framework a short id for its address.").lower()
    if slug in catalog.builtin_slugs():
        raise ValidationFailed.on("slug", f"“{slug}” is a built-in framework's id; choose another.")
    try:
        validate_slug(slug)
    except DjangoValidationError as exc:
        raise ValidationFailed.on("slug", "Use letters, digits, hyphens and underscores only.") from exc
    if slug in RESERVED_SLUGS:
        raise ValidationFailed.on("slug", f"“{slug}” is reserved by the portal; choose another.")
    return slug


def _clean_url(value: Any) -> str:
    url = _line(value, "source_url", max_length=500, what="Give the address where the framework's text is published.")
    try:
        URLValidator(schemes=["https", "http"])(url)
    except DjangoValidationError as exc:
        raise ValidationFailed.on("source_url", "Give a web address starting with https:// (or http://).") from exc
    return url


def framework_create(
    *,
    actor: Actor | User,
    slug: str,
    name: str,
    source_url: str,
    publisher: str = "",
    version: str = "",
    description: str = "",
) -> Framework:
    """Add an organisation's own framework (``controls.framework_created``). Rules: IAM admins
    only; a slug (its address) that no built-in or own framework has and the portal does not
    reserve; a name; the web address of its text."""
    resolved, person = catalog_keeper(actor)
    framework = Framework(
        slug=_clean_slug(slug),
        name=_line(name, "name", max_length=150, what="Give the framework's name."),
        publisher=_line(publisher, "publisher", max_length=150, required=False),
        version=_line(version, "version", max_length=40, required=False),
        source_url=_clean_url(source_url),
        description=_text(description, "description"),
        created_by=person,
        created_at=timezone.now(),
    )
    with transaction.atomic():
        if Framework.objects.filter(slug=framework.slug).exists():
            raise ValidationFailed.on("slug", f"The organisation already has a framework “{framework.slug}”.")
        try:
            with transaction.atomic():
                framework.save()
        except IntegrityError as exc:
            raise Conflict("Someone added a framework with this id at the same time; choose another.") from exc
        audit_record(
            actor=resolved,
            action="controls.framework_created",
            target=framework,
            after=snapshot(framework, FRAMEWORK_FIELDS),
        )
    return framework


def framework_item_add(
    *, actor: Actor | User, framework: Framework, code: str, title: str, description: str = ""
) -> FrameworkItem:
    """Add an item to an organisation's own framework, after its last one
    (``controls.framework_item_added``). Rules: IAM admins only; a code (as the framework writes
    it) not already in the framework, whatever its case; a title. Built-in frameworks change only
    in their data file."""
    resolved, _person = catalog_keeper(actor)
    clean_code = _line(code, "code", max_length=40, what="Give the item's id as the framework writes it.")
    clean_title = _line(title, "title", max_length=300, what="Give the item's title.")
    clean_description = _text(description, "description")
    with transaction.atomic():
        locked = Framework.objects.select_for_update().filter(pk=framework.pk).first()
        if locked is None:
            raise Conflict("This framework was removed.")
        if locked.items.filter(code__iexact=clean_code).exists():
            raise ValidationFailed.on("code", f"{locked.name} already has an item “{clean_code}”.")
        last = locked.items.aggregate(last=Max("order"))["last"]
        item = FrameworkItem(
            framework=locked,
            code=clean_code,
            title=clean_title,
            description=clean_description,
            order=0 if last is None else last + 1,
        )
        try:
            with transaction.atomic():
                item.save()
        except IntegrityError as exc:
            raise Conflict("Someone added this item at the same time; reload and check.") from exc
        audit_record(
            actor=resolved,
            action="controls.framework_item_added",
            target=item,
            after={**snapshot(item, ITEM_FIELDS), "framework_slug": locked.slug},
        )
    return item


def mapping_add(
    *, actor: Actor | User, control_id: str, framework_slug: str, item_code: str, note: str = ""
) -> ControlMapping:
    """Map a control to a framework item, built-in or the organisation's own
    (``controls.mapping_added``). Rules: IAM admins only; a registered control; an existing
    framework and item of it; not already mapped (in the data file or by the organisation)."""
    resolved, person = catalog_keeper(actor)
    control_id = str(control_id or "").strip()
    if registry.control(control_id) is None:
        raise ValidationFailed.on("control_id", "Choose one of the portal's controls.")
    framework_slug = str(framework_slug or "").strip()
    info = catalog.framework(framework_slug) if framework_slug else None
    if info is None:
        raise ValidationFailed.on("framework_slug", "Choose a framework of the catalog.")
    item_code = str(item_code or "").strip()
    if info.item(item_code) is None:
        raise ValidationFailed.on("item_code", f"{info.name} has no item “{item_code}”.")
    clean_note = _text(note, "note", max_length=REASON_MAX_LENGTH)
    if (framework_slug, item_code) in catalog.builtin_mappings().get(control_id, set()):
        raise ValidationFailed.on("item_code", f"The catalog already maps this control to {item_code}.")
    mapping = ControlMapping(
        control_id=control_id,
        framework_slug=framework_slug,
        item_code=item_code,
        note=clean_note,
        created_by=person,
        created_at=timezone.now(),
    )
    with transaction.atomic():
        if ControlMapping.objects.filter(
            control_id=control_id, framework_slug=framework_slug, item_code=item_code
        ).exists():
            raise ValidationFailed.on("item_code", f"This control is already mapped to {item_code}.")
        try:
            with transaction.atomic():
                mapping.save()
        except IntegrityError as exc:
            raise Conflict("Someone added this mapping at the same time.") from exc
        audit_record(
            actor=resolved,
            action="controls.mapping_added",
            target=mapping,
            after=snapshot(mapping, MAPPING_FIELDS),
        )
    return mapping


def mapping_remove(*, actor: Actor | User, mapping: ControlMapping, reason: str = "") -> None:
    """Remove one of the organisation's own mappings (``controls.mapping_removed``). IAM admins
    only; the data file's mappings are not rows and change only in the file."""
    resolved, _person = catalog_keeper(actor)
    clean_reason = _text(reason, "reason", max_length=REASON_MAX_LENGTH)
    with transaction.atomic():
        current = ControlMapping.objects.select_for_update().filter(pk=mapping.pk).first()
        if current is None:
            raise Conflict("This mapping was already removed.")
        before = snapshot(current, MAPPING_FIELDS)
        target_id, target_repr = str(current.pk), str(current)
        current.delete()
        audit_record(
            actor=resolved,
            action="controls.mapping_removed",
            target_type="controls.controlmapping",
            target_id=target_id,
            target_repr=target_repr,
            before=before,
            reason=clean_reason,
        )


def control_figure(figure_key: str) -> tuple[registry.Control, registry.Figure]:
    """The registered control and the figure of its evidence that ``figure_key`` names
    (``"<control id>.<name>"``); an error naming ``figure_key`` otherwise. Measures the control
    once (its evidence runs a fixed number of queries)."""
    control_id = str(figure_key or "").partition(".")[0]
    control = registry.control(control_id)
    if control is not None:
        for figure in control.evidence():
            if figure.key == figure_key:
                return control, figure
    raise ValidationFailed.on("figure_key", "Choose a figure of one of the portal's controls.")


def _number(value: Any, field: str, unit: str) -> float:
    """A threshold's number as a float within what ``unit`` allows."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed.on(field, "Give a number.") from exc
    if not math.isfinite(number):
        raise ValidationFailed.on(field, "Give a finite number.")
    if unit == "%" and not 0 <= number <= 100:
        raise ValidationFailed.on(field, "A share is between 0 and 100 %.")
    if number < 0:
        raise ValidationFailed.on(field, "Give a number of zero or more.")
    return number


def _clean_threshold(figure: registry.Figure, met: Any, partly: Any) -> registry.Threshold:
    """The threshold as numbers the figure's unit allows, with the partly-met bound on the weak
    side of the met bound (below it when higher is better, above it when lower is)."""
    if met is None or met == "":
        raise ValidationFailed.on("met", "Give the value the figure must reach to be met.")
    clean_met = _number(met, "met", figure.unit)
    clean_partly = None if partly is None or partly == "" else _number(partly, "partly", figure.unit)
    if clean_partly is not None:
        if figure.better == registry.HIGHER and clean_partly >= clean_met:
            raise ValidationFailed.on(
                "partly", "Higher is better here: the partly-met bound must be below the met bound."
            )
        if figure.better == registry.LOWER and clean_partly <= clean_met:
            raise ValidationFailed.on(
                "partly", "Lower is better here: the partly-met bound must be above the met bound."
            )
    return registry.Threshold(met=clean_met, partly=clean_partly)


def threshold_set(
    *, actor: Actor | User, figure_key: str, met: Any, partly: Any = None, reason: str
) -> EvidenceThreshold:
    """Set the organisation's threshold for one evidence figure, replacing its default or the
    threshold set before (``controls.threshold_set``). Rules: IAM admins only; a figure of a
    registered control; numbers the figure's unit allows (a share within 0–100 %, a count, hours
    or days of zero or more); a partly-met bound, if any, on the weak side of the met bound; a
    reason (auditors read why the organisation judges differently). Setting what is already set
    writes nothing."""
    resolved, person = catalog_keeper(actor)
    _control, figure = control_figure(figure_key)
    threshold = _clean_threshold(figure, met, partly)
    clean_reason = _line(reason, "reason", max_length=REASON_MAX_LENGTH, what="Say why the organisation sets it.")
    with transaction.atomic():
        row = EvidenceThreshold.objects.select_for_update().filter(figure_key=figure.key).first()
        if row is not None and (row.met, row.partly, row.reason) == (threshold.met, threshold.partly, clean_reason):
            return row
        before = snapshot(row, THRESHOLD_FIELDS) if row is not None else None
        if row is None:
            row = EvidenceThreshold(figure_key=figure.key)
        row.met, row.partly, row.reason = threshold.met, threshold.partly, clean_reason
        row.updated_by, row.updated_at = person, timezone.now()
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError as exc:
            raise Conflict("Someone set this threshold at the same time; reload and check.") from exc
        audit_record(
            actor=resolved,
            action="controls.threshold_set",
            target=row,
            before=before or {"default": True, "met": figure.threshold.met, "partly": figure.threshold.partly},
            after=snapshot(row, THRESHOLD_FIELDS),
            reason=clean_reason,
        )
    return row


def threshold_clear(*, actor: Actor | User, figure_key: str, reason: str = "") -> None:
    """Remove the organisation's threshold for one figure: its default applies again
    (``controls.threshold_cleared``). IAM admins only; there must be one to remove."""
    resolved, _person = catalog_keeper(actor)
    clean_reason = _line(reason, "reason", max_length=REASON_MAX_LENGTH, required=False)
    with transaction.atomic():
        row = EvidenceThreshold.objects.select_for_update().filter(figure_key=str(figure_key or "")).first()
        if row is None:
            raise Conflict("The organisation sets no threshold for this figure: its default applies.")
        before = snapshot(row, THRESHOLD_FIELDS)
        target_id, target_repr = str(row.pk), str(row)
        row.delete()
        audit_record(
            actor=resolved,
            action="controls.threshold_cleared",
            target_type="controls.evidencethreshold",
            target_id=target_id,
            target_repr=target_repr,
            before=before,
            reason=clean_reason,
        )
