"""The portal's signing keys: RFC 7638 kids, private parts encrypted at rest (and still readable
after SECRET_KEY rotates with a fallback), loud when unreadable, and rotated with overlap."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from governance import scheduling
from governance.exceptions import NotAllowed
from governance.models import AuditEvent, User
from runtime import checks, keys, tokens
from runtime.models import KeyState, SigningKey
from runtime.services.keys import signing_keys_bootstrap, signing_keys_reencrypt, signing_keys_rotate
from runtime.tasks import signing_keys_rotate_due

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

# RFC 7638 section 3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
RFC7638_KEY = {
    "kty": "RSA",
    "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
        "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnY"
        "b9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw"
        "0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    ),
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": settings.RUNTIME_ISSUER,
        "aud": "urn:test",
        "sub": "integration:1",
        "client_id": "integration:1",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _current(algorithm: str = "ES256") -> SigningKey:
    return SigningKey.objects.get(algorithm=algorithm, state=KeyState.CURRENT)


def _published_kids() -> set[str]:
    return {row.kid for row in keys.published_rows()}


def _readable_check() -> list[Any]:
    return checks.signing_keys_readable_check(databases=["default"])


# --- Thumbprints and encryption at rest ------------------------------------------------------------


def test_thumbprint_matches_the_rfc_7638_example() -> None:
    assert keys.thumbprint(RFC7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_generated_key_is_named_by_its_thumbprint_and_stored_encrypted(algorithm: str) -> None:
    generated = keys.generate(algorithm)
    assert generated.kid == keys.thumbprint(generated.public_jwk)
    assert generated.public_jwk["alg"] == algorithm and generated.public_jwk["use"] == "sig"
    assert "d" not in generated.public_jwk and "p" not in generated.public_jwk
    assert "PRIVATE KEY" not in generated.private_key_encrypted
    row = SigningKey(kid=generated.kid, algorithm=algorithm, private_key_encrypted=generated.private_key_encrypted)
    assert keys.private_key(row) is not None


def test_secret_key_rotation_with_the_old_key_as_fallback_keeps_signing(db: Any, settings: Any) -> None:
    settings.SECRET_KEY = "old-secret-" + "x" * 50
    token = tokens.mint(_claims())
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-" + "y" * 50, ["old-secret-" + "x" * 50]
    keys.clear_caches()
    assert tokens.verify(tokens.mint(_claims()))["sub"] == "integration:1"
    assert tokens.verify(token)
    assert _readable_check() == []


def test_secret_key_rotation_without_fallback_is_a_check_error_and_a_refusal(db: Any, settings: Any) -> None:
    settings.SECRET_KEY = "old-secret-" + "x" * 50
    tokens.mint(_claims())
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-" + "y" * 50, []
    keys.clear_caches()
    errors = _readable_check()
    assert {error.id for error in errors} == {"runtime.E001"}
    assert _current().kid in " ".join(error.msg for error in errors)
    with pytest.raises(keys.SigningKeyUnavailable, match="cannot be decrypted"):
        tokens.mint(_claims())
    # Never silently replaced: still the same two keys.
    assert SigningKey.objects.count() == 2


def test_reencrypt_moves_every_key_to_the_new_secret_key(db: Any, settings: Any, iam_admin: User) -> None:
    old, new = "old-secret-" + "x" * 50, "new-secret-" + "y" * 50
    settings.SECRET_KEY = old
    tokens.mint(_claims())
    tokens.mint(_claims(), algorithm="RS256")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = new, [old]
    assert signing_keys_reencrypt(actor=iam_admin) == 4
    settings.SECRET_KEY_FALLBACKS = []
    keys.clear_caches()
    assert _readable_check() == []
    assert tokens.verify(tokens.mint(_claims(), algorithm="RS256"))
    event = AuditEvent.objects.get(action="signing_key.reencrypted")
    assert event.owner == iam_admin and event.after is not None and len(event.after["kids"]) == 4


def test_explicit_encryption_keys_rotate_first_encrypts_all_decrypt(db: Any, settings: Any, iam_admin: User) -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.RUNTIME_KEY_ENCRYPTION_KEYS = [first]
    tokens.mint(_claims())
    settings.RUNTIME_KEY_ENCRYPTION_KEYS = [second, first]
    keys.clear_caches()
    assert tokens.verify(tokens.mint(_claims()))
    signing_keys_reencrypt(actor=iam_admin)
    settings.RUNTIME_KEY_ENCRYPTION_KEYS = [second]
    keys.clear_caches()
    assert tokens.verify(tokens.mint(_claims()))
    settings.RUNTIME_KEY_ENCRYPTION_KEYS = [first]
    keys.clear_caches()
    assert {error.id for error in _readable_check()} == {"runtime.E001"}
    with pytest.raises(keys.SigningKeyUnavailable):
        tokens.mint(_claims())


def test_reencrypt_refuses_when_a_key_is_unreadable_and_changes_nothing(
    db: Any, settings: Any, iam_admin: User
) -> None:
    settings.RUNTIME_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    tokens.mint(_claims())
    before = dict(SigningKey.objects.values_list("kid", "private_key_encrypted"))
    settings.RUNTIME_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(Exception, match="cannot be decrypted"):
        signing_keys_reencrypt(actor=iam_admin)
    assert dict(SigningKey.objects.values_list("kid", "private_key_encrypted")) == before


def test_a_malformed_encryption_key_is_a_check_error(settings: Any) -> None:
    settings.RUNTIME_KEY_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    assert [error.id for error in checks.encryption_keys_check()] == ["runtime.E002"]


def test_the_readable_check_reads_the_database_only_when_asked(db: Any, settings: Any) -> None:
    tokens.mint(_claims())
    settings.SECRET_KEY = "another-" + "z" * 50
    assert checks.signing_keys_readable_check(databases=None) == []
    assert checks.signing_keys_readable_check(databases=["default"])


# --- First keys ------------------------------------------------------------------------------------


def test_first_keys_publish_a_next_key_that_does_not_sign_yet(db: Any) -> None:
    token = tokens.mint(_claims())
    following = SigningKey.objects.get(state=KeyState.NEXT)
    assert following.sign_after == following.created_at + timedelta(seconds=settings.RUNTIME_JWKS_CACHE_SECONDS)
    assert following.kid in _published_kids()
    assert tokens.verify(token) and keys.signing_key("ES256").kid == _current().kid != following.kid


def test_a_second_bootstrap_racing_the_first_reads_the_winner(db: Any, iam_admin: User) -> None:
    first = signing_keys_bootstrap(algorithm="ES256")
    assert signing_keys_bootstrap(algorithm="ES256").pk == first.pk
    assert SigningKey.objects.filter(algorithm="ES256").count() == 2
    event = AuditEvent.objects.get(action="signing_key.created")
    assert event.owner == iam_admin and event.actor_kind == "system"


# --- Rotation --------------------------------------------------------------------------------------


def _rotate_at(moment: datetime, actor: Any, **options: Any) -> Any:
    with time_machine.travel(moment, tick=False):
        return signing_keys_rotate(actor=actor, **options)


def test_rotation_is_not_due_before_the_rotation_days(db: Any, iam_admin: User) -> None:
    with time_machine.travel(T0, tick=False):
        tokens.mint(_claims())
    kid = _current().kid
    [result] = _rotate_at(T0 + timedelta(days=settings.RUNTIME_KEY_ROTATION_DAYS - 1), iam_admin, algorithm="ES256")
    assert not result.promoted and _current().kid == kid
    assert not AuditEvent.objects.filter(action="signing_key.rotated").exists()


def test_due_rotation_promotes_next_and_keeps_the_old_key_published_until_its_tokens_expire(
    db: Any, iam_admin: User, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with time_machine.travel(T0, tick=False):
        # A token that would outlive its key: the key's removal is what ends it.
        old_token = tokens.mint(_claims(exp=int(T0.timestamp()) + 60 * 86400))
    old_kid, next_kid = _current().kid, SigningKey.objects.get(state=KeyState.NEXT).kid
    rotated_at = T0 + timedelta(days=settings.RUNTIME_KEY_ROTATION_DAYS)
    with django_capture_on_commit_callbacks(execute=True):
        [result] = _rotate_at(rotated_at, iam_admin, algorithm="ES256")
    assert result.promoted and _current().kid == next_kid
    previous = SigningKey.objects.get(kid=old_kid)
    overlap = settings.RUNTIME_TOKEN_MAX_SECONDS + settings.RUNTIME_JWKS_CACHE_SECONDS + keys.CURRENT_KEY_CACHE_SECONDS
    assert previous.state == KeyState.PREVIOUS
    assert previous.remove_after == rotated_at + timedelta(seconds=overlap)
    new_next = SigningKey.objects.get(state=KeyState.NEXT)
    assert new_next.sign_after == rotated_at + timedelta(seconds=settings.RUNTIME_JWKS_CACHE_SECONDS)

    with time_machine.travel(rotated_at + timedelta(seconds=overlap - 1), tick=False):
        assert _published_kids() == {old_kid, next_kid, new_next.kid}
        assert tokens.verify(old_token)["jti"]
        assert keys.signing_key("ES256").kid == next_kid
    with time_machine.travel(rotated_at + timedelta(seconds=overlap), tick=False):
        assert old_kid not in _published_kids()
        with pytest.raises(tokens.InvalidToken, match="publishes"):
            tokens.verify(old_token)

    [later] = _rotate_at(rotated_at + timedelta(seconds=overlap), iam_admin, algorithm="ES256")
    assert later.retired == [old_kid] and not later.promoted
    previous.refresh_from_db()
    assert previous.state == KeyState.RETIRED and previous.private_key_encrypted == ""
    rotated = AuditEvent.objects.get(action="signing_key.rotated")
    assert rotated.owner == iam_admin and rotated.before == {"current": old_kid}
    assert AuditEvent.objects.filter(action="signing_key.retired", target_id=old_kid).count() == 1


def test_forced_rotation_waits_until_the_next_key_has_been_published_a_cache_lifetime(db: Any, iam_admin: User) -> None:
    with time_machine.travel(T0, tick=False):
        tokens.mint(_claims())
    kid = _current().kid
    [early] = _rotate_at(T0 + timedelta(seconds=10), iam_admin, force=True, algorithm="ES256")
    assert not early.promoted and "not been published" in early.waiting and _current().kid == kid
    [done] = _rotate_at(T0 + timedelta(seconds=settings.RUNTIME_JWKS_CACHE_SECONDS), iam_admin, force=True)
    assert done.promoted and _current().kid != kid


def test_only_iam_admins_or_the_system_rotate(db: Any, owner: User) -> None:
    with pytest.raises(NotAllowed):
        signing_keys_rotate(actor=owner)
    with pytest.raises(NotAllowed):
        signing_keys_reencrypt(actor=owner)


def test_the_daily_task_rotates_when_due_and_is_idempotent(db: Any, iam_admin: User) -> None:
    with time_machine.travel(T0, tick=False):
        tokens.mint(_claims())
    with time_machine.travel(T0 + timedelta(days=settings.RUNTIME_KEY_ROTATION_DAYS), tick=False):
        assert signing_keys_rotate_due() == 1
        assert signing_keys_rotate_due() == 0
    event = AuditEvent.objects.get(action="signing_key.rotated")
    assert event.actor_kind == "system" and event.owner == iam_admin
    assert SigningKey.objects.filter(state=KeyState.PREVIOUS).count() == 1


def test_the_daily_task_changes_nothing_without_anyone_to_answer_for_it(db: Any) -> None:
    with time_machine.travel(T0, tick=False):
        tokens.mint(_claims())
    with time_machine.travel(T0 + timedelta(days=90), tick=False):
        assert signing_keys_rotate_due() == 0
    assert not SigningKey.objects.filter(state=KeyState.PREVIOUS).exists()


def test_the_rotation_is_scheduled_daily() -> None:
    task = next(task for task in scheduling.registered() if task.name == "runtime.signing_keys_rotate")
    assert task.func == "runtime.tasks.signing_keys_rotate_due"
    assert task.func in scheduling.allowed_task_functions()
    assert task.cron.endswith("* * *")


def test_the_command_forces_a_rotation_once_the_next_key_may_sign(db: Any, iam_admin: User) -> None:
    with time_machine.travel(T0, tick=False):
        tokens.mint(_claims())
    kid = _current().kid
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False), pytest.raises(CommandError, match="published"):
        call_command("rotate_signing_keys", "--algorithm", "ES256")
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        call_command("rotate_signing_keys", "--algorithm", "ES256", "--by", iam_admin.username)
    assert _current().kid != kid
    assert AuditEvent.objects.get(action="signing_key.rotated").owner == iam_admin


def test_the_command_reencrypts(db: Any, settings: Any, iam_admin: User) -> None:
    old = settings.SECRET_KEY
    tokens.mint(_claims())
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "rotated-" + "q" * 50, [old]
    call_command("rotate_signing_keys", "--reencrypt")
    settings.SECRET_KEY_FALLBACKS = []
    assert _readable_check() == []


def test_the_command_refuses_someone_who_is_not_an_iam_admin(db: Any, owner: User) -> None:
    with pytest.raises(CommandError, match="not an active IAM admin"):
        call_command("rotate_signing_keys", "--by", owner.username)


def test_now_is_used_for_key_times(db: Any) -> None:
    with time_machine.travel(T0, tick=False):
        tokens.mint(_claims())
        assert _current().created_at == timezone.now()
