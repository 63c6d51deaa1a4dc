"""What a driver reads on My Page and "I lost my phone" over HTTP (no browser; SQLite and
PostgreSQL): a cancelled lease does not ask the driver to sync for a key that will never
come, and the lost-phone action revokes that phone's keys (into the lock's signed revocation
update, carried by any phone) and its tokens at once, leaving the driver's other phone and
other drivers alone. The browser flow is tests/web/test_mypage.py."""

from __future__ import annotations

import pytest
from kagiya.sdk.signed import verify_revocation_update
from kagiya.server.client import ApiProblem

from tests.server.conftest import World
from tests.server.test_api import anchors
from tests.server.test_mypage_account import Driver

DAY = 86400


def test_a_cancelled_lease_says_no_more_keys_not_sync(world: World) -> None:
    op = world.operator()
    uid, _lid, rid, phone = world.setup_key(op)
    driver = Driver(world, uid)
    _s, html = driver.get("/my")
    assert "none yet — sync the phone" in html  # before the first sync: true
    phone.sync()
    _s, html = driver.get("/my")
    assert "valid until" in html
    op.cancel_key_request(rid)
    _s, html = driver.get("/my")
    assert 'data-testid="no-more-keys"' in html and "none yet — sync the phone" not in html


def test_lost_phone_revokes_its_keys_and_tokens_at_once(world: World) -> None:
    op = world.operator()
    uid, lid, _rid, lost = world.setup_key(op)
    kept = world.phone(op, uid)  # the driver's second phone
    lost_key, kept_key = lost.sync().keys[0], kept.sync().keys[0]
    other_uid = op.create_user()["user_id"]
    now = int(world.clock())
    op.create_key_request(other_uid, lid, now, now + 5 * DAY, ["doors"])
    other = world.phone(op, other_uid)
    other.sync()
    driver = Driver(world, uid)
    # another driver cannot report this driver's phone
    status, _t, _l = Driver(world, other_uid).post(f"/my/phones/{lost.phone_id}/lost")
    assert status == 404
    status, html, _l = driver.post(f"/my/phones/{lost.phone_id}/lost")
    assert status == 200 and 'data-testid="lost-done"' in html and lid in html
    # its tokens are gone: the lost phone cannot sync or refresh
    with pytest.raises(ApiProblem):
        lost.sync()
    with pytest.raises(ApiProblem):
        lost.refresh_token(now=int(world.clock()))
    # its key is in the lock's signed revocation update, which any phone carries; the
    # driver's other phone keeps its own key
    for ph in (kept, other):
        sync = ph.sync()
        upd = next(r for r in sync.revocations if r.lock_id == lid)
        entries = [e[0] for e in verify_revocation_update(upd.update, anchors(sync), lid,
                                                          current_version=0).entries]
        assert lost_key.key_id in entries and kept_key.key_id not in entries
    assert [k.key_id for k in kept.sync().keys] == [kept_key.key_id]
    _s, page = driver.get("/my")
    assert lost.phone_id not in page and kept.phone_id in page
    actions = [(a["action"], a["target"]) for a in op._request("GET", "/v1/audit")["items"]]
    assert ("phone.lost", lost.phone_id) in actions
    # a second report of the same phone finds nothing
    status, _t, _l = driver.post(f"/my/phones/{lost.phone_id}/lost")
    assert status == 404
