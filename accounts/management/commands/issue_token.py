"""Print a viewer token signed as the cinema's auth service would sign it (demos, tests)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.tokens import TokenError, issue_token


class Command(BaseCommand):
    help = "Print a JWT for USER_ID, signed with AUTH_JWT_SECRET (HS256)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user_id", help="The cinema user id (the token's `sub`).")
        parser.add_argument("--email", default="", help="The email claim.")
        parser.add_argument("--ttl", type=int, default=3600, help="Lifetime in seconds.")
        parser.add_argument(
            "--locale", default="", help="The locale claim, e.g. ru: the language of the viewer's emails."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["ttl"] <= 0:
            raise CommandError("--ttl must be a positive number of seconds.")
        try:
            token = issue_token(
                user_id=options["user_id"],
                email=options["email"],
                ttl_seconds=options["ttl"],
                locale=options["locale"],
            )
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
