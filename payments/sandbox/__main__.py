"""Run the sandbox as a process: `python -m payments.sandbox --port 12111 ...`."""

import argparse
import contextlib
import logging
import signal
import sys
import threading
from types import FrameType

from payments.sandbox.app import Sandbox, SandboxRefused, ensure_not_production
from payments.sandbox.context import DEFAULT_API_VERSION, SandboxConfig

logger = logging.getLogger("payments.sandbox")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(
        prog="python -m payments.sandbox",
        description="Offline Stripe-compatible sandbox of the billing service (development and tests only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=12111, help="port to listen on (default 12111; 0 = any)")
    parser.add_argument("--webhook-url", default=None, help="where to POST signed events (none: keep them)")
    parser.add_argument("--webhook-secret", default="whsec_sandbox", help="signing secret (whsec_...)")
    parser.add_argument("--state", default=None, help="SQLite file to keep objects in (default: memory)")
    parser.add_argument("--public-url", default=None, help="address viewers reach the sandbox by")
    parser.add_argument("--api-version", default=DEFAULT_API_VERSION, help="api_version stamped on events")
    parser.add_argument("--webhook-retry-base", type=float, default=1.0, help="first retry delay, seconds")
    parser.add_argument("--webhook-retry-cap", type=float, default=60.0, help="longest retry delay, seconds")
    parser.add_argument("--webhook-max-attempts", type=int, default=10, help="attempts before giving up")
    parser.add_argument(
        "--webhook-timeout", type=float, default=10.0, help="seconds to wait for the receiver"
    )
    parser.add_argument(
        "--clock-file",
        default=None,
        help="the billing clock's file (BILLING_CLOCK_FILE) whose time `created` stamps follow",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the sandbox and serve until interrupted."""
    try:
        ensure_not_production()
    except SandboxRefused as exc:
        sys.exit(str(exc))
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = SandboxConfig(
        public_url=(args.public_url or "").rstrip("/"),
        api_version=args.api_version,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_retry_base=args.webhook_retry_base,
        webhook_retry_cap=args.webhook_retry_cap,
        webhook_max_attempts=args.webhook_max_attempts,
        webhook_timeout=args.webhook_timeout,
        clock_file=args.clock_file or None,
    )
    try:
        sandbox = Sandbox(host=args.host, port=args.port, state_path=args.state, config=config)
    except OSError as exc:
        sys.exit(f"The Stripe sandbox cannot listen on {args.host}:{args.port}: {exc}")

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to notice, so it must not run in the serving thread.
        threading.Thread(target=sandbox.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    logger.info(
        "Stripe sandbox on %s (state: %s; webhooks: %s)",
        sandbox.base_url,
        args.state or "memory",
        args.webhook_url or "none",
    )
    # Ctrl-C ends serve_forever, which closes the state on its way out.
    with contextlib.suppress(KeyboardInterrupt):
        sandbox.serve_forever()


if __name__ == "__main__":
    main()
