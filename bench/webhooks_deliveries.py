"""What bench/webhooks sends: Stripe events signed as Stripe signs them, some delivered twice.

wrk cannot compute an HMAC, so each run's deliveries are made here beforehand: one line per
delivery, `<Stripe-Signature header>\\t<JSON body>`, which the Lua script sends in order. A
share of them repeat an event delivered earlier (Stripe delivers at least once), and wrk's
Lua counts how the service answered: stored as new, or recognised as a duplicate.

Needs no Django: the bodies come from the offline sandbox's builders of Stripe objects.
"""

import json
import random
import re
import string
import time
from dataclasses import dataclass
from pathlib import Path

from payments.sandbox import objects
from payments.sandbox.webhooks import signature_header

EVENT_TYPE = "payment_intent.succeeded"
API_VERSION = "2026-07-29"
_ID_ALPHABET = string.ascii_letters + string.digits

LUA_SCRIPT = """\
-- bench/webhooks: POST each line of a deliveries file (signature TAB body), in order.
local deliveries = {}
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\\t", 1, true)
    deliveries[#deliveries + 1] = {line:sub(1, tab - 1), line:sub(tab + 1)}
  end
  stride = tonumber(args[2])
  position = thread_number + 1
  sent, new, duplicate, failed, wrapped = 0, 0, 0, 0, 0
end

local headers = {["Content-Type"] = "application/json"}
function request()
  if position > #deliveries then
    position = position - #deliveries
    wrapped = wrapped + 1
  end
  local delivery = deliveries[position]
  position = position + stride
  sent = sent + 1
  headers["Stripe-Signature"] = delivery[1]
  return wrk.format("POST", nil, headers, delivery[2])
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  elseif body:find('"duplicate":true', 1, true) then
    duplicate = duplicate + 1
  else
    new = new + 1
  end
end

function done(summary, latency, requests)
  for index, thread in ipairs(threads) do
    io.write(string.format(
      "deliveries thread=%d sent=%d new=%d duplicate=%d failed=%d wrapped=%d\\n",
      index - 1, thread:get("sent"), thread:get("new"), thread:get("duplicate"),
      thread:get("failed"), thread:get("wrapped")))
  end
end
"""
_THREAD_LINE = re.compile(
    r"^deliveries thread=(\d+) sent=(\d+) new=(\d+) duplicate=(\d+) failed=(\d+) wrapped=(\d+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Delivery:
    event_id: str
    body: bytes
    signature: str


@dataclass(frozen=True)
class Answers:
    """What wrk's threads sent in one run, and how the service answered."""

    sent_per_thread: list[int]
    new: int  # 200, "duplicate": false: stored by this request
    duplicate: int  # 200, "duplicate": true: already stored
    failed: int  # anything but 200
    wrapped: int  # times a thread ran out of deliveries and began again

    @property
    def sent(self) -> int:
        return sum(self.sent_per_thread)


def answers_parse(output: str) -> Answers:
    """Read the Lua script's per-thread counts from wrk's output."""
    lines = [tuple(int(group) for group in match.groups()) for match in _THREAD_LINE.finditer(output)]
    if not lines:
        raise RuntimeError(f"wrk printed no delivery counts:\n{output}")
    lines.sort()
    return Answers(
        sent_per_thread=[line[1] for line in lines],
        new=sum(line[2] for line in lines),
        duplicate=sum(line[3] for line in lines),
        failed=sum(line[4] for line in lines),
        wrapped=sum(line[5] for line in lines),
    )


def attempted(deliveries: list[Delivery], sent_per_thread: list[int]) -> list[Delivery]:
    """Return the deliveries wrk's threads sent, in file order (thread t sends t, t + T, ...)."""
    threads = len(sent_per_thread)
    indexes = sorted(
        (thread + step * threads) % len(deliveries)
        for thread, sent in enumerate(sent_per_thread)
        for step in range(sent)
    )
    return [deliveries[index] for index in indexes]


def lua_script_write(directory: Path) -> Path:
    """Write the Lua script that sends a deliveries file and counts the answers."""
    path = directory / "webhook_deliveries.lua"
    path.write_text(LUA_SCRIPT)
    return path


def deliveries_write(path: Path, deliveries: list[Delivery]) -> Path:
    """Write one line per delivery: the signature header, a tab, the body."""
    with path.open("wb") as file:
        for delivery in deliveries:
            file.write(delivery.signature.encode() + b"\t" + delivery.body + b"\n")
    return path


class DeliveryPlan:
    """Every delivery of one benchmark run: new events, and repeats of events sent before.

    A repeat is an event first delivered at least `gap` deliveries earlier (by then stored, in
    all likelihood; a repeat that races its first delivery is handled too). Only the events
    wrk actually sent (`mark_sent`) are repeated in later batches.
    """

    def __init__(self, *, secret: str, duplicate_share: float, gap: int, seed: int = 16) -> None:
        self.secret = secret
        self.duplicate_share = duplicate_share
        self.gap = gap
        self._rng = random.Random(seed)
        self._sent: dict[str, Delivery] = {}
        self._template = objects.payment_intent(
            created=0,
            amount=59900,
            currency="rub",
            customer=None,
            description="Cinema subscription: Premium, monthly",
            metadata={},
            setup_future_usage=None,
            payment_method=None,
            status="succeeded",
        )

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{''.join(self._rng.choices(_ID_ALPHABET, k=24))}"

    def _new_event(self, created: int) -> tuple[str, bytes]:
        """Return the id and body of a new `payment_intent.succeeded` event, as Stripe sends it."""
        intent_id = self._id("pi")
        intent = {
            **self._template,
            "id": intent_id,
            "client_secret": f"{intent_id}_secret_{self._id('s')[2:]}",
            "created": created,
            "customer": self._id("cus"),
            "payment_method": self._id("pm"),
            "latest_charge": self._id("ch"),
            "amount_received": self._template["amount"],
            "metadata": {
                "payment_id": str(self._rng.randrange(1, 10**9)),
                "subscription_id": str(self._rng.randrange(1, 10**9)),
            },
        }
        event = objects.event(
            created=created,
            type_=EVENT_TYPE,
            data_object=intent,
            api_version=API_VERSION,
            request_id=self._id("req"),
            idempotency_key=None,
        )
        event.update(id=self._id("evt"), pending_webhooks=1)
        # One line each in the deliveries file: json.dumps escapes every newline and tab.
        return event["id"], json.dumps(event).encode()

    def _signed(self, event_id: str, body: bytes, timestamp: int) -> Delivery:
        return Delivery(event_id, body, signature_header(body, self.secret, timestamp))

    def batch(self, count: int) -> list[Delivery]:
        """Return the next `count` deliveries, signed now."""
        now = int(time.time())
        earlier = list(self._sent.values())
        batch: list[Delivery] = []
        for number in range(count):
            if number >= self.gap:
                earlier.append(batch[number - self.gap])
            if earlier and self._rng.random() < self.duplicate_share:
                repeated = self._rng.choice(earlier)
                batch.append(self._signed(repeated.event_id, repeated.body, now))
            else:
                batch.append(self._signed(*self._new_event(now), now))
        return batch

    def mark_sent(self, deliveries: list[Delivery]) -> None:
        """Record deliveries wrk sent: their events may be repeated in later batches."""
        for delivery in deliveries:
            self._sent.setdefault(delivery.event_id, delivery)

    @property
    def sent_event_ids(self) -> set[str]:
        """Return the ids of every event sent so far."""
        return set(self._sent)

    def sent_events(self) -> list[Delivery]:
        """Return one delivery of each event sent so far."""
        return list(self._sent.values())


def repeats_in(deliveries: list[Delivery], seen_before: set[str]) -> int:
    """Return how many deliveries carry an event already delivered (before, or earlier in the list)."""
    seen = set(seen_before)
    repeats = 0
    for delivery in deliveries:
        if delivery.event_id in seen:
            repeats += 1
        seen.add(delivery.event_id)
    return repeats
