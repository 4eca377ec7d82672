"""The challenge broker: worker threads block on codes, captchas and approvals; the loop answers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import stat
import threading
import time

import pyotp
import pytest

from connectors.base import ApprovalRequest, CaptchaRequest, CodeRequest
from gmid.errors import ChallengeExpired
from gmid.events import EventBus
from gmid.portals.challenges.broker import ChallengeBroker
from gmid.portals.challenges.challenge import totp_for


@pytest.fixture
async def bus():
    bus = EventBus()
    bus.bind(asyncio.get_running_loop())
    return bus


@pytest.fixture
def broker(bus, tmp_path):
    broker = ChallengeBroker(bus, image_dir=tmp_path / "challenges")
    yield broker
    broker.cancel()  # no worker thread may outlive its test


async def wait_pending(broker: ChallengeBroker, count: int = 1):
    """Wait until `count` challenges are pending and return them."""
    for _ in range(500):
        pending = broker.pending()
        if len(pending) >= count:
            return pending
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} challenge(s) never became pending")


async def events(bus: EventBus) -> list[dict]:
    """Return the events published so far (worker threads deliver them through the loop)."""
    await asyncio.sleep(0.02)
    return list(bus.recent)


def reference_totp(key: bytes, at: float) -> str:
    """RFC 6238 with SHA-1, 30 s, 6 digits, straight from the RFC: the yardstick for totp_for."""
    digest = hmac.new(key, int(at // 30).to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


async def test_code_answered_by_id_reaches_the_worker(broker, bus):
    request = CodeRequest("Enter the code we sent to +49 *** 12", medium="sms")
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "telekom", request))
    [challenge] = await wait_pending(broker)
    assert (challenge.portal, challenge.kind, challenge.medium) == ("telekom", "code", "sms")
    data = challenge.to_dict()
    assert 590 <= data["seconds_left"] <= 600  # ten minutes by default
    json.dumps(data)

    assert broker.answer(challenge.id, "  481 516 ") is challenge
    assert await worker == "481516"
    assert broker.pending() == []

    published = await events(bus)
    assert [e["type"] for e in published] == ["challenge.pending", "challenge.answered"]
    assert published[0]["data"]["id"] == challenge.id
    assert published[0]["data"]["prompt"] == request.prompt
    # the data only: event timestamps may contain any digits
    assert "481516" not in json.dumps([e["data"] for e in published])
    assert "481 516" not in json.dumps([e["data"] for e in published])


async def test_code_answered_by_portal_name(broker, bus):
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "stadtwerke", CodeRequest("Code")))
    await wait_pending(broker)
    broker.answer("stadtwerke", "CODE-77")
    assert await worker == "CODE-77"
    assert "CODE-77" not in json.dumps(await events(bus))


async def test_several_portals_wait_at_once(broker):
    first = asyncio.create_task(asyncio.to_thread(broker.ask, "a", CodeRequest("A?")))
    await wait_pending(broker, 1)
    second = asyncio.create_task(asyncio.to_thread(broker.ask, "b", CodeRequest("B?")))
    pending = await wait_pending(broker, 2)
    assert [c.portal for c in pending] == ["a", "b"]  # oldest first
    broker.answer("b", "2")
    broker.answer("a", "1")
    assert (await first, await second) == ("1", "2")


async def test_unanswered_code_expires(broker, bus):
    worker = asyncio.create_task(
        asyncio.to_thread(broker.ask, "telekom", CodeRequest("Code"), expiry=0.3)
    )
    await wait_pending(broker)
    started = time.monotonic()
    with pytest.raises(ChallengeExpired, match=r"no code entered for telekom within 0\.3 s"):
        await worker
    assert time.monotonic() - started < 2
    assert broker.pending() == []
    published = await events(bus)
    assert [e["type"] for e in published] == ["challenge.pending", "challenge.expired"]
    assert published[1]["data"]["reason"] == "expired"
    with pytest.raises(LookupError):
        broker.answer("telekom", "123456")  # too late: nothing to answer


async def test_cancel_unblocks_waiters(broker, bus):
    a = asyncio.create_task(asyncio.to_thread(broker.ask, "a", CodeRequest("A?")))
    b = asyncio.create_task(asyncio.to_thread(broker.ask, "b", CodeRequest("B?")))
    await wait_pending(broker, 2)

    assert broker.cancel("a") == 1
    with pytest.raises(ChallengeExpired, match="cancelled"):
        await a
    assert [c.portal for c in broker.pending()] == ["b"]

    assert broker.cancel() == 1
    with pytest.raises(ChallengeExpired):
        await b
    assert broker.cancel() == 0
    reasons = [e["data"]["reason"] for e in await events(bus) if e["type"] == "challenge.expired"]
    assert reasons == ["cancelled", "cancelled"]


async def test_totp_answers_at_once_without_a_challenge(bus, tmp_path):
    notified = []
    broker = ChallengeBroker(bus, image_dir=tmp_path, notify=notified.append)
    secret = pyotp.random_base32()
    printed = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)).lower()

    before = pyotp.TOTP(secret).now()
    code = await asyncio.to_thread(
        broker.ask, "bank", CodeRequest("Authenticator code", medium="app"), totp=totp_for(printed)
    )
    after = pyotp.TOTP(secret).now()

    assert code in {before, after}
    assert broker.pending() == []
    assert await events(bus) == []
    assert notified == []


def test_totp_accepts_the_short_secrets_portals_hand_out():
    secret = "JBSW Y3DP EHPK 3PXP"  # 80 bits, as many portals still print
    before = time.time()
    code = totp_for(secret)()
    after = time.time()
    key = b"Hello!\xde\xad\xbe\xef"  # that secret, decoded
    assert code in {reference_totp(key, before), reference_totp(key, after)}


@pytest.mark.parametrize("secret", ["not base32!", "ABC", "   "])
def test_malformed_totp_secret_is_refused_without_echoing_it(secret):
    with pytest.raises(ValueError) as caught:
        totp_for(secret)
    if secret.strip():
        assert secret not in str(caught.value)


async def test_a_totp_code_refused_as_just_used_is_followed_by_the_next_windows(broker):
    """Portals take each code once: the code a login used a moment ago is refused. The next
    window's code is tried, once; a second refusal goes to a human."""
    windows = {"now": "111111"}

    def totp():
        return windows["now"]

    first = await asyncio.to_thread(broker.ask, "bank", CodeRequest("Code"), totp=totp)
    assert first == "111111"

    refused = CodeRequest("Code", retry_message="Code already used")
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "bank", refused, totp=totp))
    await asyncio.sleep(1.2)  # still the same window: nothing answered, nobody asked
    assert not worker.done() and broker.pending() == []
    windows["now"] = "222222"  # the next 30 seconds begin
    assert await asyncio.wait_for(worker, 5) == "222222"

    # refused again: not a third code from the secret, a human
    again = CodeRequest("Code", retry_message="Wrong code, try again")
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "bank", again, totp=totp))
    [challenge] = await wait_pending(broker)
    assert challenge.retry_message == "Wrong code, try again"
    broker.answer("bank", "999999")
    assert await worker == "999999"


async def test_refused_totp_code_in_a_new_window_is_computed_again(broker):
    codes = iter(["111111", "222222"])

    def next_window():
        return next(codes)

    assert await asyncio.to_thread(broker.ask, "bank", CodeRequest("C"), totp=next_window) == (
        "111111"
    )
    retry = CodeRequest("C", retry_message="Code expired")
    assert await asyncio.to_thread(broker.ask, "bank", retry, totp=next_window) == "222222"
    assert broker.pending() == []


async def test_totp_does_not_answer_a_code_sent_by_sms(broker):
    request = CodeRequest("We sent you an SMS", medium="sms")
    worker = asyncio.create_task(
        asyncio.to_thread(broker.ask, "bank", request, totp=lambda: "111111")
    )
    await wait_pending(broker)
    broker.answer("bank", "424242")
    assert await worker == "424242"


async def test_approval_resolves_when_the_poll_says_so(broker, bus):
    polls = []

    def poll():
        polls.append(time.monotonic())
        return len(polls) == 3

    request = ApprovalRequest("Confirm the login in the app")
    worker = asyncio.create_task(
        asyncio.to_thread(broker.wait_approval, "bank", request, poll, interval=0.05)
    )
    await wait_pending(broker)
    await worker
    assert len(polls) == 3
    assert broker.pending() == []
    published = await events(bus)
    assert [e["type"] for e in published] == ["challenge.pending", "challenge.answered"]
    assert published[0]["data"]["kind"] == "approval"


async def test_approval_expires(broker):
    polls = []

    def poll():
        polls.append(1)
        return False

    with pytest.raises(ChallengeExpired, match=r"not approved within 0\.3 s"):
        await asyncio.to_thread(
            broker.wait_approval,
            "bank",
            ApprovalRequest("Confirm"),
            poll,
            interval=0.05,
            expiry=0.3,
        )
    assert len(polls) >= 3
    assert broker.pending() == []


async def test_approval_cancelled_by_the_user(broker):
    request = ApprovalRequest("Confirm")
    worker = asyncio.create_task(
        asyncio.to_thread(broker.wait_approval, "bank", request, lambda: False, interval=30)
    )
    await wait_pending(broker)
    started = time.monotonic()
    broker.answer("bank", "Cancel")
    with pytest.raises(ChallengeExpired, match="cancelled"):
        await worker
    assert time.monotonic() - started < 2


async def test_any_other_answer_to_an_approval_polls_at_once(broker):
    polls = []

    def poll():
        polls.append(1)
        return True

    worker = asyncio.create_task(
        asyncio.to_thread(
            broker.wait_approval, "bank", ApprovalRequest("Confirm"), poll, interval=30
        )
    )
    [challenge] = await wait_pending(broker)
    broker.answer(challenge.id, "done")
    await asyncio.wait_for(worker, 2)
    assert polls == [1]


async def test_poll_error_propagates_and_removes_the_challenge(broker, bus):
    def poll():
        raise ConnectionError("portal went away")

    with pytest.raises(ConnectionError):
        await asyncio.to_thread(
            broker.wait_approval, "bank", ApprovalRequest("Confirm"), poll, interval=0.01
        )
    assert broker.pending() == []
    published = await events(bus)
    assert published[-1]["type"] == "challenge.expired"
    assert published[-1]["data"]["reason"] == "error"


async def test_captcha_image_is_private_and_removed_afterwards(broker, tmp_path):
    image = b"\x89PNG\r\n\x1a\n fake but bytes"
    request = CaptchaRequest(image=image, media_type="image/png")
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "shop", request))
    [challenge] = await wait_pending(broker)

    path = tmp_path / "challenges" / f"{challenge.id}.png"
    assert challenge.image_path == str(path)
    assert path.read_bytes() == image
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = challenge.to_dict()
    assert (data["kind"], data["media_type"], data["image_path"]) == (
        "captcha",
        "image/png",
        str(path),
    )
    assert data["medium"] == ""

    broker.answer(challenge.id, " xK4 p ")
    assert await worker == "xK4 p"  # a captcha keeps its inner spaces
    assert not path.exists()


async def test_captcha_image_removed_on_expiry(broker, tmp_path):
    request = CaptchaRequest(image=b"GIF89a", media_type="image/gif")
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "shop", request, expiry=0.2))
    await wait_pending(broker)
    with pytest.raises(ChallengeExpired, match="captcha"):
        await worker
    assert list((tmp_path / "challenges").iterdir()) == []


async def test_answer_errors(broker):
    with pytest.raises(LookupError, match="no pending challenge for nowhere"):
        broker.answer("nowhere", "1")

    one = asyncio.create_task(asyncio.to_thread(broker.ask, "bank", CodeRequest("1?")))
    two = asyncio.create_task(asyncio.to_thread(broker.ask, "bank", CodeRequest("2?")))
    first, second = await wait_pending(broker, 2)
    with pytest.raises(LookupError, match="bank has 2 pending challenges: give the id"):
        broker.answer("bank", "1")
    with pytest.raises(ValueError, match="empty"):
        broker.answer(first.id, "   ")

    broker.answer(first.id, "1")
    broker.answer(second.id, "2")
    assert {await one, await two} == {"1", "2"}


async def test_notify_once_per_challenge_and_a_failing_notify_is_harmless(bus, tmp_path):
    calls = []
    called = threading.Event()

    def notify(challenge):
        calls.append(challenge.id)
        called.set()
        raise RuntimeError("the notification service is down")

    broker = ChallengeBroker(bus, image_dir=tmp_path, notify=notify)
    worker = asyncio.create_task(asyncio.to_thread(broker.ask, "bank", CodeRequest("Code")))
    [challenge] = await wait_pending(broker)
    assert await asyncio.to_thread(called.wait, 5)
    broker.answer("bank", "123456")
    assert await worker == "123456"
    assert calls == [challenge.id]
