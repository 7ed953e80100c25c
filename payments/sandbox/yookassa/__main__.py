"""Run the YooKassa sandbox as a process: `python -m payments.sandbox.yookassa --port 12112 ...`."""

import argparse
import contextlib
import logging
import signal
import sys
import threading
from types import FrameType

from payments.sandbox.app import SandboxRefused, ensure_not_production
from payments.sandbox.yookassa.app import DEFAULT_PORT, DEFAULT_SECRET_KEY, DEFAULT_SHOP_ID, YooKassaSandbox

logger = logging.getLogger("payments.sandbox.yookassa")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(
        prog="python -m payments.sandbox.yookassa",
        description="Offline YooKassa sandbox of the billing service (development and tests only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any)"
    )
    parser.add_argument("--shop-id", default=DEFAULT_SHOP_ID, help="the shop id HTTP Basic must name")
    parser.add_argument(
        "--secret-key", default=DEFAULT_SECRET_KEY, help="the secret key HTTP Basic must carry"
    )
    parser.add_argument("--webhook-url", default=None, help="where to POST notifications (none: keep none)")
    parser.add_argument("--public-url", default=None, help="address viewers reach the sandbox by")
    parser.add_argument("--webhook-retry-base", type=float, default=1.0, help="first retry delay, seconds")
    parser.add_argument("--webhook-retry-cap", type=float, default=60.0, help="longest retry delay, seconds")
    parser.add_argument("--webhook-max-attempts", type=int, default=10, help="attempts before giving up")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Start the sandbox and serve until interrupted."""
    try:
        ensure_not_production()
    except SandboxRefused as exc:
        sys.exit(str(exc).replace("Stripe", "YooKassa"))
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        sandbox = YooKassaSandbox(
            host=args.host,
            port=args.port,
            shop_id=args.shop_id,
            secret_key=args.secret_key,
            public_url=args.public_url,
            webhook_url=args.webhook_url,
            webhook_retry_base=args.webhook_retry_base,
            webhook_retry_cap=args.webhook_retry_cap,
            webhook_max_attempts=args.webhook_max_attempts,
        )
    except OSError as exc:
        sys.exit(f"The YooKassa sandbox cannot listen on {args.host}:{args.port}: {exc}")

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=sandbox.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    logger.info("YooKassa sandbox on %s (webhooks: %s)", sandbox.base_url, args.webhook_url or "none")
    with contextlib.suppress(KeyboardInterrupt):
        sandbox.serve_forever()


if __name__ == "__main__":
    main()
