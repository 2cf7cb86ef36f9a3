"""The runtime's background work (django-q2): sealing the token log into the audit chain and
feeding usage back to the grants, and rotating signing keys."""


def signing_keys_rotate_due() -> int:
    """Daily: rotate every algorithm whose current signing key is RUNTIME_KEY_ROTATION_DAYS old,
    retire superseded keys whose tokens have all expired, and keep a next key published. The
    portal acts for the longest-standing active IAM admin; with nobody to answer for it, nothing
    changes (and it says so in the log). Idempotent: a second run the same day changes nothing.
    Returns how many algorithms were rotated."""
    import logging

    from governance.actors import Actor
    from governance.context import task_context
    from runtime.services.keys import portal_owner, signing_keys_rotate

    owner = portal_owner()
    if owner is None:
        logging.getLogger(__name__).warning(
            "Signing keys not rotated: the portal has no active IAM admin to answer for it."
        )
        return 0
    actor = Actor.system(on_behalf_of=owner)
    with task_context(user=actor.user):
        results = signing_keys_rotate(actor=actor)
    return sum(1 for result in results if result.promoted)


def token_log_seal() -> int:
    """Every minute: seal the token events written since the last run into batches, each one
    audit event, and feed their usage back to grants and workload bindings (``runtime.log``).
    Idempotent: a run twice, or killed half-way and run again, seals and counts each event once.
    Returns how many events were sealed."""
    from governance.actors import system_user
    from governance.context import task_context
    from runtime import log

    with task_context(user=system_user()):
        return sum(batch.count for batch in log.seal())


def policy_log_seal() -> int:
    """Every minute: seal the policy decisions written since the last run into batches, each one
    audit event (``runtime.policy.log``). A task of its own, not a step of ``token_log_seal``:
    a tampered entry stops its own log's sealer loudly and must not hold up the other log.
    Idempotent. Returns how many decisions were sealed."""
    from governance.actors import system_user
    from governance.context import task_context
    from runtime.policy import log as decision_log

    with task_context(user=system_user()):
        return sum(batch.count for batch in decision_log.seal())


def policy_decisions_purge() -> int:
    """Daily: remove the sealed decision batches older than RUNTIME_DECISION_RETENTION_DAYS and
    the entity snapshots nothing refers to any more, each purge audited (``runtime.policy.log``).
    Idempotent: a second run the same day removes nothing. Returns how many decisions went."""
    from governance.actors import system_user
    from governance.context import task_context
    from runtime.policy import log as decision_log

    with task_context(user=system_user()):
        return decision_log.purge().decisions


def policy_replay_run(replay_id: int) -> str:
    """Queued by ``replay_start``: re-decide the decision log with the candidate version and
    store the report (``runtime.services.replays``). Safe to run again: it starts over and
    overwrites the report; a replay already done is left alone. Returns the replay's status."""
    from governance.actors import system_user
    from governance.context import task_context
    from runtime.services.replays import replay_run

    with task_context(user=system_user()):
        replay = replay_run(replay_id=replay_id)
    return replay.status if replay is not None else "skipped"
