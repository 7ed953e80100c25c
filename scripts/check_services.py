"""Say in one line, before the test suite starts, if PostgreSQL or Redis cannot be reached."""

import os
import socket
import sys
from urllib.parse import urlparse

import psycopg2

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing")
REDIS_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def postgres_problem() -> str | None:
    url = urlparse(DATABASE_URL)
    try:
        # The test database is created by the suite; the server's own database answers.
        psycopg2.connect(
            host=url.hostname,
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0]
        return f"PostgreSQL is not reachable at {url.hostname}:{url.port or 5432} ({first_line})"
    return None


def redis_problem() -> str | None:
    url = urlparse(REDIS_URL)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                return f"Redis at {host}:{port} did not answer PING"
    except OSError as exc:
        return f"Redis is not reachable at {host}:{port} ({exc.strerror or exc})"
    return None


def main() -> int:
    problems = [p for p in (postgres_problem(), redis_problem()) if p]
    for problem in problems:
        print(f"make test: {problem}. Start it and run again.", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
