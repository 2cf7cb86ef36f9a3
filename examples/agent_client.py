#!/usr/bin/env python3
"""An AI agent's side of the runtime plane, with the standard library only.

The agent never holds a long-lived secret for the data it reaches. It holds a token from its own
workload identity (a Kubernetes service-account token, a SPIFFE JWT-SVID, a GitHub Actions OIDC
token...), trades it at the portal's token endpoint (OAuth 2.0 token exchange, RFC 8693) for an
access token of at most 15 minutes, for exactly the scopes it was approved for on one resource
system, and calls that system with it. A refusal comes back as an OAuth error with a reason a
person can act on (``invalid_scope: ...``, ``access_denied: ... elevation request #12 ...``).

Against ``make run`` and ``examples/resource_server.py``::

    WORKLOAD=$(.venv/bin/python manage.py demo_workload_token "Sales Email Assistant")
    python examples/agent_client.py --portal http://127.0.0.1:8000 --workload-token "$WORKLOAD" \\
        --audience urn:ai-governance:system:salesforce --scope salesforce:api \\
        --task "Summarise this week's opportunities" --call http://127.0.0.1:8790/records
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class ExchangeRefused(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description = error, description


def _post_form(url: str, fields: dict[str, str], timeout: float) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def token_endpoint(portal: str, timeout: float = 5.0) -> str:
    url = f"{portal.rstrip('/')}/.well-known/oauth-authorization-server"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(json.loads(response.read())["token_endpoint"])


def exchange(
    portal: str,
    *,
    workload_token: str,
    audience: str,
    scope: str = "",
    task: str = "",
    user_token: str = "",
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Trade the workload token for an access token to ``audience``. With ``user_token`` the
    agent acts for that user: the user's token is the subject and the workload token the actor."""
    fields = {"grant_type": TOKEN_EXCHANGE, "audience": audience}
    if user_token:
        fields |= {"subject_token": user_token, "subject_token_type": ACCESS_TOKEN_TYPE}
        fields |= {"actor_token": workload_token, "actor_token_type": JWT_TOKEN_TYPE}
    else:
        fields |= {"subject_token": workload_token, "subject_token_type": JWT_TOKEN_TYPE}
    if scope:
        fields["scope"] = scope
    if task:
        fields["task"] = task
    status, body = _post_form(token_endpoint(portal, timeout), fields, timeout)
    if status != 200:
        raise ExchangeRefused(str(body.get("error", status)), str(body.get("error_description", "")))
    return dict(body)


def call(url: str, access_token: str, *, method: str = "GET", timeout: float = 5.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    request.add_header("Authorization", f"Bearer {access_token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portal", default="http://127.0.0.1:8000")
    parser.add_argument("--workload-token", required=True)
    parser.add_argument("--user-token", default="", help="Act for this user (the integration must act for users).")
    parser.add_argument("--audience", required=True, help="The resource system (its audience or code).")
    parser.add_argument("--scope", default="", help="Space-separated scope codes (default: all it holds there).")
    parser.add_argument("--task", default="", help="What the token is for (recorded).")
    parser.add_argument("--call", default="", help="A resource server URL to call with the token.")
    parser.add_argument("--method", default="GET", choices=["GET", "POST"])
    args = parser.parse_args(argv)
    try:
        answer = exchange(
            args.portal,
            workload_token=args.workload_token,
            audience=args.audience,
            scope=args.scope,
            task=args.task,
            user_token=args.user_token,
        )
    except ExchangeRefused as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 1
    print(f"Got a token for {answer['expires_in']} s with scope: {answer.get('scope', '')}")
    if args.call:
        status, body = call(args.call, answer["access_token"], method=args.method)
        print(f"{args.method} {args.call} -> {status} {json.dumps(body)}")
        return 0 if status == 200 else 1
    print(answer["access_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
