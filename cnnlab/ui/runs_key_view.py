"""Who you are where a browser keeps no cookie (#22 §1): a notice, and the runs key.

Inside the huggingface.co page the app is a cross-site frame. Chromium and Firefox keep the owner cookie there
(partitioned, see common.set_cookies), but a browser that blocks third-party cookies outright keeps none, and
every reload would make the student a stranger to their own runs. A tiny component tries a cookie in the page
itself and reports when it did not stick; then the page says so once, in the page's language, with the
direct address of the app. The sidebar's "Your runs key" shows this browser's key (to its owner only) and takes
a key typed in another browser or device (cnnlab.owners: checked, counted per address, a wrong key says
nothing of why).
"""
from __future__ import annotations

import streamlit as st

from .. import i18n, owners, teacher
from .common import (K_OWNER, OWNER_COOKIE, checkpoint_root, client_address, cookie, has_browser, lang, owner_id,
                     public_url)

K_PROBE = "cookie_probe"
K_SEEN = "_cookie_notice_seen"
K_TYPED = "runs_key_typed"
K_SHOW = "runs_key_show"
K_MSG = "_runs_key_msg"

# Runs in the app's own page (not a frame of its own): the cookie is written with the attributes the owner
# cookie gets there (common._COOKIE_JS), then read back. Only a cookie that did not stick is reported: a report
# reruns the page, which would drop what a first page run said once (a link's "… was ignored").
_PROBE_JS = """export default function(component) {
  const { setStateValue } = component;
  let framed; try { framed = window.self !== window.top; } catch (e) { framed = true; }
  const a = (framed && window.isSecureContext) ? '; SameSite=None; Secure; Partitioned' : '; SameSite=Strict';
  let kept = false;
  try { document.cookie = 'cnnlab_probe=1; path=/; max-age=60' + a;
        kept = document.cookie.split('; ').includes('cnnlab_probe=1'); } catch (e) { kept = false; }
  if (!kept) setStateValue('kept', false);  // a state change reruns the page: only when there is news
}"""

_probe = None


def _cookies_kept() -> bool | None:
    """False where a cookie written here did not stick; True when the request carried the owner cookie; None
    otherwise (a cookie that stuck is not reported, and AppTest has no browser). Asked only of a session whose
    request came without the owner cookie."""
    global _probe
    if not has_browser():
        return None
    if cookie(OWNER_COOKIE) is not None:
        return True
    if _probe is None:
        _probe = st.components.v2.component("cnnlab_cookie_probe", js=_PROBE_JS)
    res = _probe(key=K_PROBE, default={"kept": None}, on_kept_change=lambda: None, height=1)
    kept = getattr(res, "kept", None)
    return kept if isinstance(kept, bool) else None


def _use_key() -> None:
    from .teacher_view import K_NICK

    typed = st.session_state.get(K_TYPED, "")
    st.session_state[K_TYPED] = ""
    if not typed.strip():
        return
    root = str(checkpoint_root())
    tok = owners.owner_of_key(root, typed, client_address())
    if tok is None:
        st.session_state[K_MSG] = ("error", i18n.t("key.wrong", lang(), n=owners.KEY_TRIES.rate()))
        return
    st.session_state[K_OWNER] = tok
    st.session_state[K_NICK] = teacher.Nicknames(root).of_owner(tok) or ""
    st.session_state[K_MSG] = ("ok", i18n.t("key.used", lang()))


def notice_and_key() -> None:
    """On every page, after the owner is known: the no-cookie notice (main area, until dismissed) and the
    sidebar's runs key."""
    L = lang()
    with st.sidebar:
        kept = _cookies_kept()
    if kept is False and not st.session_state.get(K_SEEN):
        with st.container(key="cookie_notice"):
            url = public_url()
            st.warning(i18n.t("key.no_cookies", L) + ("  \n" + i18n.t("key.direct", L, url=url) if url else ""))
            if st.button(i18n.t("key.got_it", L), key="cookie_notice_ok"):
                st.session_state[K_SEEN] = True
                st.rerun()
    with st.sidebar:
        with st.expander(i18n.t("key.title", L), expanded=kept is False):
            st.caption(i18n.t("key.help", L))
            if st.toggle(i18n.t("key.show", L), key=K_SHOW):
                st.code(owners.runs_key(str(checkpoint_root()), owner_id()), language=None)
            st.text_input(i18n.t("key.type", L), key=K_TYPED, on_change=_use_key, max_chars=64,
                          placeholder="ABCDE-FGHJK")
            msg = st.session_state.pop(K_MSG, None)
            if msg:
                (st.success if msg[0] == "ok" else st.error)(msg[1])
