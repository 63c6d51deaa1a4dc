"""The phone app's plain words for the SDK's v2 link faults (protocol v2, issue #13 §3)."""

from __future__ import annotations

import pytest
from kagiya.phone.failures import classify
from kagiya.sdk.client_errors import ReplyNotAuthenticError, UpdateNotAppliedError
from kagiya.sdk.i18n import language


@pytest.mark.parametrize(("exc", "en", "ja"), [
    (ReplyNotAuthenticError("RESULT MAC invalid"), "reply failed its check", "検証に失敗"),
    (UpdateNotAppliedError("version 0 < 1"), "did not take the cancellation update",
     "取り消しの更新"),
])
def test_unauthentic_reply_and_dropped_update_are_explained(exc: Exception, en: str,
                                                            ja: str) -> None:
    for lang, words in (("en", en), ("ja", ja)):
        with language(lang):
            f = classify(exc, ble=True)
        assert f is not None and f.kind == "ble" and words in f.message
        assert "Cannot reach" not in f.message  # not "out of range": someone may interfere
