"""Settings for bench/soak: production-like, with a billing clock the soak moves and a faster beat.

The soak and every process it starts (gunicorn's two workers, two Celery workers, beat) run
under this module. Like `bench.settings` it reads the throwaway database from
BENCH_DATABASE_URL; the soak passes its private Redis (CELERY_BROKER_URL), the Stripe sandbox
(STRIPE_API_BASE), the billing clock's file and the receiver of events (EVENT_ENDPOINTS)
through the environment too.
"""

from bench.settings import *  # noqa: F403
from bench.settings import CELERY_BEAT_SCHEDULE, env

# The soak moves the billing clock a period on at a time, so that renewals come due.
BILLING_CLOCK_FILE = env("BILLING_CLOCK_FILE", default="")

# A month of the soak lasts minutes: beat's frequent jobs run as often as they must for what
# faults left undone (a lost task, a lost answer) to be put right before the clock moves on.
# The renewals' job keeps its minute, as the "already queued" marks it leaves are kept in each
# worker's memory: a worker that replaced a killed one has none, and would queue every due
# renewal again at each run. The soak runs that job itself when it moves the clock.
SOAK_JOB_SECONDS = {
    "expire-ended-subscriptions": 15.0,
    "reconcile-pending-payments": 20.0,
    "reconcile-missed-events": 20.0,
    "reconcile-unbooked-charges": 30.0,
    "dispatch-events": 2.0,
    "dispatch-notices": 5.0,
}
CELERY_BEAT_SCHEDULE = {
    name: {**job, "schedule": SOAK_JOB_SECONDS[name]} if name in SOAK_JOB_SECONDS else job
    for name, job in CELERY_BEAT_SCHEDULE.items()
}
