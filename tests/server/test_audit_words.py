"""The console's audit log in words (server/web/audit_words.py): every action the server
records has words in both languages, and the page shows who (a staff member by name) and
what in the reader's language with the stored code beside it."""

from __future__ import annotations

import re
from pathlib import Path

from kagiya.sdk.i18n import language
from kagiya.server.web import audit_words, contract_end

from tests.server.conftest import World
from tests.server.test_console import Browser, invite

SERVER = Path(__file__).resolve().parents[2] / "server"
_OBJECTS = sorted({a.split(".", 1)[0] for a in audit_words.known_actions()})
_LITERAL = re.compile(r'"((?:' + "|".join(map(re.escape, _OBJECTS)) + r')\.[a-z.-]+)"')
_NOT_ACTIONS = {"privacy.read", "privacy.write", "logs.read", "audit.read"}  # abilities


def test_every_recorded_action_has_words() -> None:
    found = {m for f in SERVER.rglob("*.py") if f.name != "audit_words.py"
             for m in _LITERAL.findall(f.read_text(encoding="utf-8"))}
    assert found, "the scan found no action"
    assert found - _NOT_ACTIONS - audit_words.known_actions() == set()
    for action in audit_words.known_actions():
        with language("ja"):
            ja = audit_words.action_words(action)
        with language("en"):
            en = audit_words.action_words(action)
        assert action != en != ja, action


def test_every_kind_of_actor_has_words() -> None:
    actors = ("operator:op_1", "console:op_1:staff7", "installer:op_1:it_1", "phone:ph_1",
              "user:U1", contract_end.ACTOR, "admin", "uplink", "lifecycle")
    for actor in actors:
        for lang in ("ja", "en"):
            with language(lang):
                who = audit_words.actor_words(actor, {7: "Sato"})
            assert who.words != actor and ":" not in who.words, (actor, lang)


def test_the_story_s_actions_in_words_with_staff_names(world: World) -> None:
    op = world.operator()
    _uid, _lid, rid, phone = world.setup_key(op)
    phone.sync()
    op.cancel_key_request(rid)
    op.create_partner("North Motors")
    sato = invite(world, op, "admin")
    recorded = {a["action"] for a in op._request("GET", "/v1/audit")["items"]}
    assert recorded - audit_words.known_actions() == set()
    staff = Browser(world, sato)
    staff.post("/console/users", {})  # a console action, audited as this staff member
    status, html = staff.get("/console/audit", lang="ja")
    assert status == 200
    assert "鍵の依頼を取り消し" in html and "key-request.cancel" in html
    assert "スタッフ admin member" in html and "運営事業者 API" in html
    assert "operator:op_" not in html  # no bare actor codes
