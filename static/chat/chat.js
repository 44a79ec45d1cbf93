/*
 * NeonPro AI Chat: the clinician's chat page.
 *
 * Sessions and history come from the REST API; answers stream over the
 * WebSocket. Every message carries a client_id so that a resend after a
 * reconnect never creates a second message or a second provider call.
 *
 * Questions are only ever inserted as text (textContent). Answers are Markdown,
 * rendered by markdown.js (marked, raw HTML shown as text, then DOMPurify), so
 * no HTML from the model or the clinician ever runs. All visible strings come
 * translated from the page.
 */
(function () {
  "use strict";

  var configNode = document.getElementById("chat-config");
  if (!configNode) {
    return;
  }
  var cfg = JSON.parse(configNode.textContent);
  var S = cfg.strings;
  var Markdown = window.NeonproMarkdown;

  var dom = {
    newSession: document.getElementById("new-session"),
    sessionList: document.getElementById("session-list"),
    title: document.getElementById("chat-title"),
    subtitle: document.getElementById("chat-subtitle"),
    connStatus: document.getElementById("conn-status"),
    closeSession: document.getElementById("close-session"),
    banner: document.getElementById("banner"),
    bannerText: document.getElementById("banner-text"),
    bannerActions: document.getElementById("banner-actions"),
    bannerDismiss: document.getElementById("banner-dismiss"),
    messages: document.getElementById("messages"),
    emptyState: document.getElementById("empty-state"),
    composer: document.getElementById("composer"),
    input: document.getElementById("message-input"),
    charCount: document.getElementById("char-count"),
    stop: document.getElementById("stop-button"),
    send: document.getElementById("send-button"),
    limitReason: document.getElementById("limit-reason"),
    confirmDialog: document.getElementById("confirm-dialog"),
    confirmText: document.getElementById("confirm-text"),
    confirmOk: document.getElementById("confirm-ok"),
    sessionSearch: document.getElementById("session-search"),
    editNote: document.getElementById("edit-note"),
    layout: document.getElementById("chat-layout"),
    drawerToggle: document.getElementById("drawer-toggle"),
    drawerBackdrop: document.getElementById("drawer-backdrop"),
    exportLinks: document.getElementById("export-links"),
    exportMd: document.getElementById("export-md"),
    exportPdf: document.getElementById("export-pdf"),
  };

  var RECONNECT_BASE_MS = 500;
  var RECONNECT_MAX_MS = 15000;
  var STABLE_CONNECTION_MS = 5000;

  var state = {
    sessions: [],
    current: null,
    selectToken: 0,
    ws: null,
    wsOpenedAt: 0,
    reconnectAttempts: 0,
    reconnectTimer: null,
    pending: null, // the message whose answer has not ended yet (or may be retried)
    streaming: false,
    composerLocked: false, // session ended, consent missing: no sending at all
    cooldownUntil: 0, // rate limit: no sending before this time (ms)
    bannerTimer: null,
    closingSessionId: null, // the clinician is ending this session from this page
    creating: false, // a session is being created for the first message
    searchResults: null, // sessions matching the search box, null when it is empty
    searchToken: 0,
    searchTimer: null,
  };

  // Banners whose cause is the connection: a working connection clears them.
  var CONNECTION_CODES = ["network", "service_unavailable", "in_progress"];

  // --- small helpers ------------------------------------------------------------------

  function fmt(template, params) {
    return template.replace(/%\((\w+)\)s/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(params, key) ? String(params[key]) : match;
    });
  }

  function urlFor(template, id) {
    return template.replace(cfg.placeholder, encodeURIComponent(id));
  }

  var timeFormat = new Intl.DateTimeFormat(cfg.locale, {
    timeZone: cfg.timeZone, hour: "2-digit", minute: "2-digit",
  });
  var dateTimeFormat = new Intl.DateTimeFormat(cfg.locale, {
    timeZone: cfg.timeZone, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  });

  function node(tag, className, text) {
    var element = document.createElement(tag);
    if (className) {
      element.className = className;
    }
    if (text !== undefined && text !== null) {
      element.textContent = text;
    }
    return element;
  }

  // Line icons drawn as SVG, so they look the same on every system: emoji and
  // symbol glyphs depend on the fonts installed and show as empty boxes without them.
  var ICON_PATHS = {
    edit: ["M4 20h4L18.5 9.5a2.1 2.1 0 0 0-4-4L4 16z", "M13.5 6.5l4 4"],
    trash: ["M4 7h16", "M10 11v6", "M14 11v6", "M6 7l1 13h10l1-13", "M9 7V4h6v3"],
    thumbsUp: ["M7 11v9H4v-9z", "M7 11l4-7a2 2 0 0 1 3 2l-1 4h5.6a2 2 0 0 1 2 2.4l-1.4 7A2 2 0 0 1 17.2 21H7"]
  };
  var SVG_NS = "http://www.w3.org/2000/svg";

  // A session's rename and delete buttons: an icon, named for screen readers by the
  // session's title (the visible tooltip names only the action).
  function sessionIconButton(iconName, label, tooltip, testid, onClick) {
    var button = node("button", "icon-btn");
    button.append(icon(iconName));
    button.type = "button";
    button.setAttribute("aria-label", label);
    button.title = tooltip;
    button.setAttribute("data-testid", testid);
    button.addEventListener("click", onClick);
    return button;
  }

  function icon(name, flipped) {
    var svg = document.createElementNS(SVG_NS, "svg");
    var attributes = {
      viewBox: "0 0 24 24", width: "16", height: "16", fill: "none", stroke: "currentColor",
      "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round",
      "aria-hidden": "true", focusable: "false", "class": "icon"
    };
    Object.keys(attributes).forEach(function (key) { svg.setAttribute(key, attributes[key]); });
    var group = document.createElementNS(SVG_NS, "g");
    if (flipped) {
      group.setAttribute("transform", "rotate(180 12 12)");
    }
    ICON_PATHS[name].forEach(function (d) {
      var path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      group.append(path);
    });
    svg.append(group);
    return svg;
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // Outside a secure context randomUUID is missing; build a v4 UUID by hand.
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function ApiError(code, status, retryAfter) {
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }

  function api(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (data) {
        if (response.ok) {
          return data;
        }
        var code = (data && data.code) || (response.status === 401 ? "not_authenticated" : "generic");
        var retryAfter = parseInt(response.headers.get("Retry-After") || "", 10);
        throw new ApiError(code, response.status, isNaN(retryAfter) ? null : retryAfter);
      });
    }, function () {
      throw new ApiError("network", 0, null);
    });
  }

  function goToLogin() {
    window.location.assign(cfg.loginUrl + "?next=" + encodeURIComponent(window.location.pathname));
  }

  function consentHref() {
    return cfg.consentUrl + "?next=" + encodeURIComponent(window.location.pathname);
  }

  function effectiveStatus(session) {
    if (session.status === "active" && session.expires_at &&
        new Date(session.expires_at).getTime() <= Date.now()) {
      return "expired";
    }
    return session.status;
  }

  function statusLabel(status) {
    return { active: S.statusActive, closed: S.statusClosed, expired: S.statusExpired }[status] || status;
  }

  function sessionTitle(session) {
    return session.title || fmt(S.untitled, { date: dateTimeFormat.format(new Date(session.created_at)) });
  }

  // --- banner -------------------------------------------------------------------------

  function clearBanner() {
    if (state.bannerTimer) {
      window.clearInterval(state.bannerTimer);
      state.bannerTimer = null;
    }
    dom.banner.hidden = true;
    dom.banner.removeAttribute("data-code");
    dom.bannerText.textContent = "";
    dom.bannerActions.replaceChildren();
  }

  /*
   * One banner at a time: code (for styling and tests), text, optional actions
   * ({label, run, primary, href}) and an optional countdown in seconds that
   * re-renders the text each second and enables the actions when it ends.
   */
  function showBanner(options) {
    clearBanner();
    dom.banner.hidden = false;
    dom.banner.setAttribute("data-code", options.code);
    dom.banner.className = "banner banner-" + (options.kind || "error");
    var buttons = (options.actions || []).map(function (action) {
      var control;
      if (action.href) {
        control = node("a", "btn btn-small " + (action.primary ? "btn-primary" : "btn-ghost"), action.label);
        control.href = action.href;
      } else {
        control = node("button", "btn btn-small " + (action.primary ? "btn-primary" : "btn-ghost"), action.label);
        control.type = "button";
        control.addEventListener("click", function () {
          clearBanner();
          action.run();
        });
      }
      if (action.testId) {
        control.setAttribute("data-testid", action.testId);
      }
      dom.bannerActions.append(control);
      return control;
    });
    if (options.countdown && options.countdown > 0) {
      var endsAt = Date.now() + options.countdown * 1000;
      var render = function () {
        var left = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
        if (left > 0) {
          dom.bannerText.textContent = options.text(left);
          buttons.forEach(function (button) { button.disabled = true; });
        } else {
          dom.bannerText.textContent = options.doneText || options.text(0);
          buttons.forEach(function (button) { button.disabled = false; });
          window.clearInterval(state.bannerTimer);
          state.bannerTimer = null;
          updateComposer();
        }
      };
      render();
      state.bannerTimer = window.setInterval(render, 1000);
    } else {
      dom.bannerText.textContent = typeof options.text === "function" ? options.text(0) : options.text;
    }
    scrollToEnd(); // the banner takes room from the log: keep the latest message in view
  }

  dom.bannerDismiss.addEventListener("click", clearBanner);

  // --- connection status and composer ---------------------------------------------------

  function setConnection(status) {
    dom.connStatus.setAttribute("data-state", status);
    dom.connStatus.textContent = {
      idle: "", connecting: S.connecting, open: S.connected, reconnecting: S.reconnecting,
    }[status] || "";
  }

  function sessionIsOpen() {
    return state.current && effectiveStatus(state.current) === "active";
  }

  // With no session picked the clinician can still type: the first message opens one.
  function canType() {
    return !state.composerLocked && !state.creating && (!state.current || sessionIsOpen());
  }

  function overLimit() {
    return dom.input.value.length > cfg.maxChars;
  }

  function updateComposer() {
    var open = canType();
    // Regenerate and edit apply to the last exchange of a session that takes messages.
    dom.messages.classList.toggle("can-act", Boolean(sessionIsOpen() && !state.composerLocked && !state.streaming));
    var coolingDown = Date.now() < state.cooldownUntil;
    dom.input.disabled = !open;
    dom.send.disabled = !open || state.streaming || coolingDown || !dom.input.value.trim() ||
      overLimit();
    dom.send.hidden = state.streaming;
    dom.stop.hidden = !state.streaming;
    dom.closeSession.hidden = !sessionIsOpen();
    dom.exportLinks.hidden = !state.current;
    if (state.current) {
      var exportUrl = urlFor(cfg.exportUrlTemplate, state.current.id);
      dom.exportMd.href = exportUrl + "?as=md";
      dom.exportPdf.href = exportUrl + "?as=pdf";
    }
    updateCharCount();
  }

  function updateCharCount() {
    var length = dom.input.value.length;
    var near = length > cfg.maxChars * 0.8;
    dom.charCount.textContent = near ? fmt(S.charCount, { count: length, max: cfg.maxChars }) : "";
    dom.charCount.classList.toggle("over", length > cfg.maxChars);
    // Send is disabled over the limit; say why next to it.
    dom.limitReason.hidden = !overLimit();
    dom.limitReason.textContent = overLimit() ? fmt(S.err_message_too_long, { max: cfg.maxChars }) : "";
    if (!overLimit() && !dom.banner.hidden && dom.banner.getAttribute("data-code") === "message_too_long") {
      clearBanner(); // the text that caused it is gone
    }
  }

  function setStreaming(streaming) {
    state.streaming = streaming;
    dom.stop.disabled = false;
    updateComposer();
  }

  // --- sessions list --------------------------------------------------------------------

  function sessionMeta(session) {
    var created = dateTimeFormat.format(new Date(session.created_at));
    var last = session.last_activity_at ? dateTimeFormat.format(new Date(session.last_activity_at)) : created;
    return fmt(S.sessionMeta, { created: created, last: last });
  }

  function renderSessions() {
    dom.sessionList.replaceChildren();
    dom.sessionList.removeAttribute("aria-busy");
    var shown = state.searchResults || state.sessions;
    if (!shown.length) {
      dom.sessionList.append(node("li", "session-empty", state.searchResults ? S.noResults : S.noSessions));
      return;
    }
    shown.forEach(function (session) {
      var item = node("li", "session-item");
      var link = node("a", "session-link");
      link.href = urlFor(cfg.pageUrlTemplate, session.id);
      link.setAttribute("data-session-id", session.id);
      if (state.current && state.current.id === session.id) {
        link.setAttribute("aria-current", "page");
      }
      var status = effectiveStatus(session);
      var text = node("span", "session-text");
      var title = node("span", "session-title", sessionTitle(session));
      title.title = sessionTitle(session); // the whole title on hover when it is cut
      text.append(title, node("span", "session-meta", sessionMeta(session)));
      link.append(text, node("span", "badge badge-" + status, statusLabel(status)));
      link.addEventListener("click", function (event) {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) {
          return; // let the browser open it in a new tab
        }
        event.preventDefault();
        closeDrawer();
        selectSession(session.id, true);
      });
      var actions = node("div", "session-actions");
      var title = { title: sessionTitle(session) };
      actions.append(
        sessionIconButton("edit", fmt(S.renameSession, title), S.rename, "rename-session",
                          function () { startRename(item, session); }),
        sessionIconButton("trash", fmt(S.deleteSession, title), S.delete, "delete-session",
                          function () { deleteSession(session); }));
      item.append(link, actions);
      dom.sessionList.append(item);
    });
  }

  function startRename(item, session) {
    var form = node("form", "session-rename");
    var input = node("input", "session-rename-input");
    input.type = "text";
    input.maxLength = 200;
    input.value = session.title || "";
    input.setAttribute("aria-label", S.rename);
    input.setAttribute("data-testid", "rename-input");
    form.append(input);
    item.replaceChildren(form);
    input.focus();
    input.select();
    var done = false;
    function finish(save) {
      if (done) {
        return;
      }
      done = true;
      if (!save || input.value.trim() === (session.title || "")) {
        renderSessions();
        return;
      }
      api("PATCH", urlFor(cfg.sessionUrlTemplate, session.id), { title: input.value }).then(function (updated) {
        replaceSession(updated);
      }, function (error) {
        renderSessions();
        handleApiError(error);
      });
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      finish(true);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", function () { finish(true); });
  }

  // A fresh copy of a session from the server: in the list, the results and the header.
  function replaceSession(updated) {
    upsertSession(updated);
    if (state.searchResults) {
      state.searchResults = state.searchResults.map(function (s) { return s.id === updated.id ? updated : s; });
    }
    if (state.current && state.current.id === updated.id) {
      state.current = updated;
      renderHeader();
    }
    renderSessions();
  }

  function deleteSession(session) {
    confirmAction(fmt(S.confirmDelete, { title: sessionTitle(session) }), S.delete).then(function (confirmed) {
      if (!confirmed) {
        return;
      }
      if (state.current && state.current.id === session.id) {
        state.closingSessionId = session.id; // its socket closes: no warning for that
      }
      api("DELETE", urlFor(cfg.sessionUrlTemplate, session.id)).then(function () {
        var keep = function (s) { return s.id !== session.id; };
        state.sessions = state.sessions.filter(keep);
        if (state.searchResults) {
          state.searchResults = state.searchResults.filter(keep);
        }
        if (state.current && state.current.id === session.id) {
          leaveSession();
          window.history.pushState({}, "", cfg.homeUrl);
        }
        renderSessions();
      }, handleApiError);
    });
  }

  // Back to "no session picked": the next message typed opens a new one.
  function leaveSession() {
    state.selectToken += 1;
    teardownSocket();
    clearBanner();
    state.current = null;
    state.pending = null;
    state.composerLocked = false;
    setStreaming(false);
    clearMessages();
    dom.title.textContent = S.appTitle;
    dom.subtitle.textContent = S.startHint;
    dom.subtitle.removeAttribute("data-status");
    updateComposer();
  }

  function runSearch() {
    var query = dom.sessionSearch.value.trim();
    var token = ++state.searchToken;
    if (!query) {
      state.searchResults = null;
      renderSessions();
      return;
    }
    dom.sessionList.setAttribute("aria-busy", "true");
    api("GET", cfg.sessionsUrl + "?q=" + encodeURIComponent(query)).then(function (found) {
      if (token === state.searchToken) {
        state.searchResults = found || [];
        renderSessions();
      }
    }, handleApiError);
  }

  function upsertSession(session) {
    var index = state.sessions.findIndex(function (s) { return s.id === session.id; });
    if (index >= 0) {
      state.sessions[index] = session;
    } else {
      state.sessions.unshift(session);
    }
    state.sessions.sort(function (a, b) { return a.created_at < b.created_at ? 1 : -1; });
  }

  // Each accepted message moves the idle expiry forward on the server; mirror it.
  // The server names an untitled session after its first question: show that name.
  function refreshTitle() {
    var session = state.current;
    if (!session || session.title) {
      return;
    }
    api("GET", urlFor(cfg.sessionUrlTemplate, session.id)).then(function (fresh) {
      if (fresh.title) {
        replaceSession(fresh);
      }
    }, function () { /* keep the date label */ });
  }

  function touchSession() {
    if (state.current && state.current.status === "active") {
      state.current.expires_at = new Date(Date.now() + cfg.idleTimeoutSeconds * 1000).toISOString();
    }
  }

  function markCurrentSession(status) {
    if (!state.current) {
      return;
    }
    state.current.status = status;
    upsertSession(state.current);
    renderSessions();
    renderHeader();
    updateComposer();
  }

  // The server knows whether the session was closed or expired; ask it, fall back to a guess.
  function refreshCurrentSession(fallbackStatus) {
    var session = state.current;
    if (!session) {
      return;
    }
    if (session.status === "active") {
      markCurrentSession(fallbackStatus);
    }
    api("GET", urlFor(cfg.sessionUrlTemplate, session.id)).then(function (fresh) {
      if (state.current && state.current.id === fresh.id) {
        state.current = fresh;
        markCurrentSession(fresh.status);
      }
    }, function () { /* keep the guess */ });
  }

  function loadSessions() {
    return api("GET", cfg.sessionsUrl).then(function (sessions) {
      state.sessions = sessions || [];
      renderSessions();
    }, handleApiError);
  }

  // Resolves to true once the new session is selected, false when it could not be opened.
  function createSession() {
    dom.newSession.disabled = true;
    return api("POST", cfg.sessionsUrl, {}).then(function (session) {
      upsertSession(session);
      return selectSession(session.id, true).then(function () {
        dom.input.focus();
        return true;
      });
    }, function (error) {
      handleApiError(error);
      return false;
    }).then(function (opened) {
      dom.newSession.disabled = false;
      return opened;
    });
  }

  /*
   * A confirmation in the page (a <dialog>, not window.confirm, so it is styled,
   * translated and reachable by keyboard). Resolves true when confirmed.
   */
  function confirmAction(text, okLabel) {
    dom.confirmText.textContent = text;
    dom.confirmOk.textContent = okLabel;
    dom.confirmDialog.returnValue = "";
    dom.confirmDialog.showModal();
    return new Promise(function (resolve) {
      dom.confirmDialog.addEventListener("close", function () {
        resolve(dom.confirmDialog.returnValue === "ok");
      }, { once: true });
    });
  }

  function closeCurrentSession() {
    if (!state.current) {
      return;
    }
    confirmAction(S.confirmEndSession, S.endSession).then(function (confirmed) {
      if (confirmed && state.current) {
        endSession(state.current);
      }
    });
  }

  function endSession(session) {
    state.closingSessionId = session.id;
    api("POST", urlFor(cfg.closeUrlTemplate, session.id)).then(function (updated) {
      if (state.current && state.current.id === updated.id) {
        state.current = updated;
        teardownSocket();
        upsertSession(updated);
        renderSessions();
        renderHeader();
        updateComposer();
      }
    }, handleApiError);
  }

  function handleApiError(error) {
    var code = error && error.code;
    if (code === "not_authenticated") {
      goToLogin();
    } else if (code === "consent_required") {
      window.location.assign(consentHref());
    } else if (code === "rate_limited" || code === "capacity_exceeded") {
      var seconds = error.retryAfter || 30;
      showBanner({
        code: code, kind: "warning", countdown: seconds,
        text: function (left) { return fmt(S["err_" + code], { seconds: left }); },
        doneText: S.err_rate_limited_ready,
      });
    } else if (code === "not_found") {
      showBanner({ code: code, text: S.err_not_found });
    } else if (code === "network") {
      showBanner({ code: code, text: S.err_network });
    } else {
      showBanner({ code: code || "generic", text: S["err_" + code] || S.err_generic });
    }
  }

  // --- selecting a session ----------------------------------------------------------------

  function renderHeader() {
    if (!state.current) {
      return;
    }
    dom.title.textContent = sessionTitle(state.current);
    var status = effectiveStatus(state.current);
    if (status === "active") {
      dom.subtitle.textContent = statusLabel(status);
    } else if (status === "closed" && state.closingSessionId === state.current.id) {
      dom.subtitle.textContent = S.sessionClosed; // ended here, on purpose: nothing to warn about
    } else {
      dom.subtitle.textContent = S.sessionEnded;
    }
    dom.subtitle.setAttribute("data-status", status);
  }

  function selectSession(sessionId, pushHistory) {
    var token = ++state.selectToken;
    teardownSocket();
    clearBanner();
    state.pending = null;
    state.composerLocked = false;
    setStreaming(false);
    return api("GET", urlFor(cfg.sessionUrlTemplate, sessionId)).then(function (session) {
      if (token !== state.selectToken) {
        return null;
      }
      state.current = session;
      upsertSession(session);
      if (pushHistory) {
        window.history.pushState({ sessionId: session.id }, "", urlFor(cfg.pageUrlTemplate, session.id));
      }
      renderSessions();
      renderHeader();
      clearMessages();
      return api("GET", urlFor(cfg.messagesUrlTemplate, session.id)).then(function (messages) {
        if (token !== state.selectToken) {
          return;
        }
        renderHistory(messages || []);
        if (sessionIsOpen()) {
          connect();
        }
        updateComposer();
      });
    }).catch(function (error) {
      if (token === state.selectToken) {
        if (error instanceof ApiError) {
          handleApiError(error);
        } else {
          showBanner({ code: "generic", text: S.loadFailed });
        }
      }
    });
  }

  // --- messages -------------------------------------------------------------------------

  function clearMessages() {
    dom.messages.replaceChildren();
    dom.emptyState.hidden = false;
    dom.messages.append(dom.emptyState);
  }

  function scrollToEnd() {
    dom.messages.scrollTop = dom.messages.scrollHeight;
  }

  // `container`: a fragment being filled with history (appended later, no scrolling).
  function bubble(role, createdAt, container) {
    dom.emptyState.hidden = true;
    var article = node("article", "msg msg-" + role);
    article.setAttribute("data-role", role);
    var head = node("header", "msg-head");
    head.append(node("span", "msg-author", role === "user" ? S.you : S.assistant));
    var time = node("time", "msg-time", timeFormat.format(createdAt));
    time.dateTime = createdAt.toISOString();
    head.append(time);
    var body = node("div", "msg-body");
    var notes = node("div", "msg-notes");
    var actions = node("div", "msg-actions");
    article.append(head, body, notes, actions);
    if (container) {
      container.append(article);
    } else {
      dom.messages.append(article);
      scrollToEnd();
    }
    return { article: article, body: body, notes: notes, actions: actions };
  }

  function actionButton(view, label, className, testId, run) {
    var button = node("button", "btn btn-small btn-ghost " + className, label);
    button.type = "button";
    button.setAttribute("data-testid", testId);
    button.addEventListener("click", function () { run(button); });
    view.actions.append(button);
    return button;
  }

  function copyText(text, button) {
    if (!navigator.clipboard) {
      return;
    }
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = S.copied;
      button.setAttribute("data-copied", "true");
      window.setTimeout(function () {
        button.textContent = label;
        button.removeAttribute("data-copied");
      }, 2000);
    }, function () {
      showBanner({ code: "clipboard", kind: "warning", text: S.copyFailed });
    });
  }

  function addUserMessage(content, createdAt, container) {
    var view = bubble("user", createdAt, container);
    view.body.textContent = content;
    view.content = content;
    // Shown on the last question only, while the session takes messages (CSS).
    actionButton(view, S.edit, "act-edit", "edit-question", function () { editQuestion(view); });
    return view;
  }

  // Edit and resend: the text goes back to the composer and is sent as a new message
  // (redacted like any other); the earlier exchange stays in the history and the audit trail.
  function editQuestion(view) {
    if (!canType() || state.streaming) {
      return;
    }
    dom.input.value = view.content;
    dom.editNote.hidden = false;
    updateComposer();
    dom.input.focus();
    dom.input.setSelectionRange(dom.input.value.length, dom.input.value.length);
  }

  function regenerate(view) {
    if (!view.question || state.streaming || !sessionIsOpen() || state.composerLocked) {
      return;
    }
    sendText(view.question);
  }

  function rate(view, rating, comment) {
    if (!view.messageId) {
      return Promise.resolve(false);
    }
    var url = urlFor(cfg.feedbackUrlTemplate, view.messageId);
    return api("POST", url, { rating: rating, comment: comment || "" }).then(function () {
      view.rating = rating;
      view.actions.querySelectorAll("[data-rating]").forEach(function (button) {
        button.setAttribute("aria-pressed", String(button.getAttribute("data-rating") === rating));
      });
      return true;
    }, function (error) {
      handleApiError(error);
      return false;
    });
  }

  function openFeedbackComment(view) {
    if (view.article.querySelector(".feedback-form")) {
      return;
    }
    var form = node("form", "feedback-form");
    var label = node("label", "visually-hidden", S.feedbackComment);
    var box = node("textarea", "feedback-comment");
    box.id = "feedback-" + view.messageId;
    label.htmlFor = box.id;
    box.rows = 2;
    box.maxLength = 2000;
    box.placeholder = S.feedbackComment;
    box.setAttribute("data-testid", "feedback-comment");
    var submit = node("button", "btn btn-small btn-primary", S.feedbackSend);
    submit.type = "submit";
    form.append(label, box, submit);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      rate(view, view.rating, box.value).then(function (saved) {
        if (saved) {
          form.replaceWith(node("p", "feedback-thanks", S.feedbackThanks));
        }
      });
    });
    view.article.append(form);
    box.focus();
  }

  function addAnswerActions(view) {
    if (view.actions.childElementCount) {
      return;
    }
    actionButton(view, S.copy, "act-copy", "copy-answer", function (button) { copyText(view.text, button); });
    actionButton(view, S.regenerate, "act-regenerate", "regenerate", function () { regenerate(view); });
    [["up", false, S.helpful], ["down", true, S.notHelpful]].forEach(function (spec) {
      var button = actionButton(view, null, "act-rate", "rate-" + spec[0], function () {
        rate(view, spec[0], "").then(function (saved) {
          if (saved) {
            openFeedbackComment(view);
          }
        });
      });
      button.append(icon("thumbsUp", spec[1]));
      button.setAttribute("data-rating", spec[0]);
      button.setAttribute("aria-label", spec[2]);
      button.title = spec[2];
      button.setAttribute("aria-pressed", String(view.rating === spec[0]));
    });
  }

  // A copy button on each code block of a finished answer.
  function addCodeCopyButtons(view) {
    view.body.querySelectorAll("pre").forEach(function (pre) {
      var wrapper = node("div", "code-block");
      pre.replaceWith(wrapper);
      var button = node("button", "btn btn-small btn-ghost code-copy", S.copyCode);
      button.type = "button";
      button.setAttribute("data-testid", "copy-code");
      button.addEventListener("click", function () { copyText(pre.textContent, button); });
      wrapper.append(button, pre);
    });
  }

  function showPii(view, counts) {
    if (!view) {
      return;
    }
    var total = 0;
    Object.keys(counts || {}).forEach(function (key) { total += Number(counts[key]) || 0; });
    var existing = view.notes.querySelector(".msg-pii");
    if (existing) {
      existing.remove();
    }
    if (total > 0) {
      var note = node("span", "msg-pii", fmt(total === 1 ? S.piiOne : S.piiMany, { count: total }));
      note.title = S.piiTitle;
      note.setAttribute("data-testid", "pii-count");
      view.notes.append(note);
    }
  }

  function markNotSent(view, label) {
    if (!view) {
      return;
    }
    view.article.classList.add("msg-not-sent");
    view.article.setAttribute("data-status", "not-sent");
    view.notes.append(node("span", "msg-flag", label || S.notSent));
  }

  function addAnswer(createdAt, container) {
    var view = bubble("assistant", createdAt, container);
    view.body.classList.add("md");
    view.text = "";
    view.renderer = new Markdown.StreamRenderer(view.body, scrollToEnd);
    return view;
  }

  // The answer is whole (done, stopped, failed): render it once more in full.
  function finishAnswer(view, fromHistory) {
    if (fromHistory) {
      view.body.replaceChildren(Markdown.render(view.text)); // no repaint or scroll per message
    } else {
      view.renderer.finish(view.text);
    }
    addCodeCopyButtons(view);
    addAnswerActions(view);
  }

  function setAnswerState(view, status, note) {
    view.article.setAttribute("data-status", status);
    view.article.setAttribute("aria-busy", status === "streaming" ? "true" : "false");
    view.notes.replaceChildren();
    if (note) {
      view.notes.append(node("span", "msg-flag msg-flag-" + status, note));
    }
  }

  function resetAnswer(view) {
    view.text = "";
    view.renderer.reset();
    setAnswerState(view, "streaming", S.streaming);
  }

  function appendDelta(view, delta) {
    view.text += delta;
    view.renderer.update(view.text); // repainted at most once a frame, last block only
  }

  /*
   * A long session opens at once: the newest messages are rendered first (what is on
   * screen), older ones are put in above them while the browser is idle, a few at a
   * time for as long as the idle period lasts (about 10 ms), keeping the scroll
   * position, so no single task blocks the page for long however busy the machine.
   */
  var HISTORY_BATCH = 24; // rendered at once when the session opens
  var HISTORY_STEP = 2; // then this many at a time, while idle time remains
  var HISTORY_SLICE_MS = 10;

  function whenIdle(callback) {
    if (window.requestIdleCallback) {
      window.requestIdleCallback(callback, { timeout: 250 });
    } else {
      window.setTimeout(callback, 16);
    }
  }

  function renderHistory(messages) {
    var token = state.selectToken;
    var byId = {};
    messages.forEach(function (message) { byId[message.id] = message; });
    var start = Math.max(0, messages.length - HISTORY_BATCH);
    var fragment = document.createDocumentFragment();
    renderHistoryRange(messages.slice(start), byId, fragment);
    dom.messages.append(fragment);
    scrollToEnd();
    function prependOlder(deadline) {
      if (token !== state.selectToken || start === 0) {
        return;
      }
      var began = window.performance.now();
      var from = start;
      var older = document.createDocumentFragment();
      do {
        var next = Math.max(0, from - HISTORY_STEP);
        renderHistoryRange(messages.slice(next, from), byId, older);
        from = next;
      } while (from > 0 && window.performance.now() - began < HISTORY_SLICE_MS &&
        (!deadline || deadline.timeRemaining() > 1));
      var fromBottom = dom.messages.scrollHeight - dom.messages.scrollTop;
      dom.messages.insertBefore(older, dom.messages.querySelector(".msg"));
      dom.messages.scrollTop = dom.messages.scrollHeight - fromBottom;
      start = from;
      whenIdle(prependOlder);
    }
    whenIdle(prependOlder);
  }

  function renderHistoryRange(messages, byId, container) {
    messages.forEach(function (message) {
      var createdAt = new Date(message.created_at);
      if (message.role === "user") {
        var userView = addUserMessage(message.content, createdAt, container);
        showPii(userView, message.pii_counts);
        if (message.status === "failed") {
          markNotSent(userView);
        }
        return;
      }
      var view = addAnswer(createdAt, container);
      view.text = message.content;
      view.messageId = message.id;
      view.rating = message.feedback_rating || "";
      view.question = byId[message.reply_to] ? byId[message.reply_to].content : "";
      finishAnswer(view, true);
      if (message.status === "stopped") {
        setAnswerState(view, "stopped", S.stopped);
      } else if (message.status === "failed") {
        setAnswerState(view, "failed", S.failed);
        var question = byId[message.reply_to];
        if (question && question.client_id && sessionIsOpen()) {
          addRetryButton(view, {
            clientId: question.client_id, content: question.content, answer: view, finished: true,
          });
        }
      } else if (message.status === "streaming") {
        setAnswerState(view, "streaming", S.streaming);
      } else {
        setAnswerState(view, "complete", "");
      }
    });
  }

  function addRetryButton(view, pending) {
    var button = node("button", "btn btn-small btn-ghost", S.retry);
    button.type = "button";
    button.setAttribute("data-testid", "inline-retry");
    button.addEventListener("click", function () { retry(pending); });
    view.notes.append(button);
  }

  // --- sending --------------------------------------------------------------------------

  function submit() {
    var content = dom.input.value;
    if (!content.trim() || state.streaming || !canType()) {
      return;
    }
    if (Date.now() < state.cooldownUntil) {
      return;
    }
    if (content.length > cfg.maxChars) {
      showBanner({ code: "message_too_long", text: fmt(S.err_message_too_long, { max: cfg.maxChars }) });
      return;
    }
    if (!state.current) {
      // The first message with no session picked: open one (consent, capacity and
      // rate limits apply as for the button), then send into it.
      state.creating = true;
      updateComposer();
      createSession().then(function (opened) {
        state.creating = false;
        updateComposer();
        if (opened && sessionIsOpen()) {
          dom.input.value = content;
          submit();
        }
      });
      return;
    }
    dom.input.value = "";
    sendText(content);
  }

  function sendText(content) {
    clearBanner();
    dom.editNote.hidden = true;
    var pending = {
      clientId: newClientId(),
      content: content,
      userView: addUserMessage(content, new Date()),
      answer: null,
      finished: false,
      stopRequested: false,
    };
    state.pending = pending;
    transmit(pending);
  }

  function transmit(pending) {
    pending.finished = false;
    state.pending = pending;
    setStreaming(true);
    if (pending.answer) {
      // A resend replays the stored answer (or regenerates it) from the start.
      resetAnswer(pending.answer);
    }
    pending.acked = false;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({
        type: "message", content: pending.content, client_id: pending.clientId,
      }));
    } else if (!state.ws && !state.reconnectTimer) {
      connect(); // the open handler sends it
    }
  }

  function retry(pending) {
    if (state.streaming || !sessionIsOpen() || state.composerLocked) {
      return; // one answer at a time; an ended session takes no resend
    }
    clearBanner();
    if (pending.userView) {
      pending.userView.article.classList.remove("msg-not-sent");
      pending.userView.article.removeAttribute("data-status");
      pending.userView.notes.querySelectorAll(".msg-flag").forEach(function (flag) { flag.remove(); });
    }
    pending.stopRequested = false;
    transmit(pending);
  }

  function stop() {
    var pending = state.pending;
    if (!pending || pending.finished) {
      return;
    }
    pending.stopRequested = true;
    dom.stop.disabled = true;
    // Before the ack the message may not be stored yet; the stop is sent with the ack.
    if (pending.acked && state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ type: "stop" }));
    }
  }

  function finish(pending) {
    pending.finished = true;
    setStreaming(false);
  }

  // --- frames from the server ---------------------------------------------------------

  function ensureAnswer(pending) {
    if (!pending.answer) {
      pending.answer = addAnswer(new Date());
      pending.answer.question = pending.content;
      setAnswerState(pending.answer, "streaming", S.streaming);
    }
    return pending.answer;
  }

  function onFrame(frame) {
    var pending = state.pending && !state.pending.finished ? state.pending : null;
    switch (frame.type) {
      case "ack":
        if (pending && frame.client_id === pending.clientId) {
          pending.acked = true;
          pending.messageId = frame.message_id;
          touchSession();
          showPii(pending.userView, frame.pii);
          ensureAnswer(pending);
          if (pending.stopRequested) {
            state.ws.send(JSON.stringify({ type: "stop" }));
          }
        }
        break;
      case "token":
        if (pending) {
          appendDelta(ensureAnswer(pending), frame.delta || "");
        }
        break;
      case "reset":
        if (pending && pending.answer) {
          resetAnswer(pending.answer); // failover: the answer restarts on the other provider
        }
        break;
      case "done":
        if (pending) {
          var answer = ensureAnswer(pending);
          answer.messageId = frame.message_id;
          finishAnswer(answer);
          refreshTitle();
          if (frame.stopped) {
            setAnswerState(answer, "stopped", S.stopped);
          } else {
            setAnswerState(answer, "complete", "");
          }
          touchSession();
          finish(pending);
        }
        break;
      case "error":
        onError(frame, pending);
        break;
      default:
        break; // pong and future frame types
    }
  }

  function onError(frame, pending) {
    var code = frame.code;
    if (code === "session_expired" && state.current && state.closingSessionId === state.current.id) {
      // The server confirms the end this page asked for: the header says so, no warning.
      state.composerLocked = true;
      refreshCurrentSession("closed");
      updateComposer();
      return;
    }
    if (pending) {
      finish(pending);
    }
    var notAccepted = ["rate_limited", "session_expired", "consent_required", "message_too_long",
      "content_filtered", "pii_redaction_failed", "pii_blocked", "invalid", "not_found",
      "capacity_exceeded"];
    if (pending && notAccepted.indexOf(code) >= 0) {
      if (pending.answer) {
        pending.answer.article.remove();
        pending.answer = null;
      }
      markNotSent(pending.userView);
    }
    var restoreText = ["message_too_long", "content_filtered", "pii_redaction_failed",
      "pii_blocked", "invalid"];
    if (pending && restoreText.indexOf(code) >= 0 && !dom.input.value) {
      dom.input.value = pending.content;
    }
    var retryAction = pending ? [{
      label: S.retry, primary: true, testId: "banner-retry",
      run: function () { retry(pending); },
    }] : [];

    switch (code) {
      case "rate_limited": {
        var seconds = frame.retry_after || 30;
        state.cooldownUntil = Date.now() + seconds * 1000;
        showBanner({
          code: code, kind: "warning", countdown: seconds, actions: retryAction,
          text: function (left) { return fmt(S.err_rate_limited, { seconds: left }); },
          doneText: S.err_rate_limited_ready,
        });
        break;
      }
      case "capacity_exceeded": {
        var wait = frame.retry_after || 30;
        showBanner({
          code: code, kind: "warning", countdown: wait, actions: retryAction,
          text: function (left) { return fmt(S.err_capacity_exceeded, { seconds: left }); },
        });
        break;
      }
      case "session_expired":
        state.composerLocked = true;
        refreshCurrentSession("expired");
        showBanner({
          code: code, kind: "warning", text: S.err_session_expired,
          actions: [{ label: S.newSession, primary: true, testId: "banner-new-session", run: createSession }],
        });
        break;
      case "consent_required":
        state.composerLocked = true;
        showBanner({
          code: code, kind: "warning", text: S.err_consent_required,
          actions: [{ label: S.reviewConsent, primary: true, href: consentHref(), testId: "banner-consent" }],
        });
        break;
      case "provider_unavailable":
      case "provider_error":
      case "service_unavailable":
      case "in_progress":
        if (pending && pending.answer && code !== "in_progress") {
          finishAnswer(pending.answer);
          setAnswerState(pending.answer, "failed", S.failed);
        }
        showBanner({
          code: code, text: S["err_" + code] || S.err_generic,
          actions: code === "provider_error" ? [] : retryAction,
        });
        break;
      case "message_too_long":
        showBanner({ code: code, text: fmt(S.err_message_too_long, { max: cfg.maxChars }) });
        break;
      case "pii_blocked":
        showBanner({ code: code, text: fmt(S.err_pii_blocked, { types: (frame.types || []).join(", ") }) });
        break;
      default:
        showBanner({ code: code || "generic", text: S["err_" + code] || S.err_generic });
    }
    updateComposer();
  }

  // --- the WebSocket --------------------------------------------------------------------

  function teardownSocket() {
    if (state.reconnectTimer) {
      window.clearTimeout(state.reconnectTimer);
      state.reconnectTimer = null;
    }
    var ws = state.ws;
    state.ws = null;
    state.reconnectAttempts = 0;
    if (ws) {
      ws.close(1000);
    }
    setConnection("idle");
  }

  function connect() {
    if (!sessionIsOpen()) {
      return;
    }
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + window.location.host + urlFor(cfg.wsPathTemplate, state.current.id);
    var ws = new WebSocket(url);
    state.ws = ws;
    setConnection(state.reconnectAttempts ? "reconnecting" : "connecting");

    ws.addEventListener("open", function () {
      if (state.ws !== ws) {
        return;
      }
      state.wsOpenedAt = Date.now();
      setConnection("open");
      if (!dom.banner.hidden && CONNECTION_CODES.indexOf(dom.banner.getAttribute("data-code")) >= 0) {
        clearBanner(); // connected again: the cause of the banner is gone
      }
      var pending = state.pending;
      if (pending && !pending.finished) {
        // No done/error arrived for it: resend with the same client_id. The server
        // stored it at most once and replays the stored answer instead of a new call.
        transmit(pending);
      }
    });
    ws.addEventListener("message", function (event) {
      if (state.ws !== ws) {
        return;
      }
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener("close", function (event) {
      if (state.ws !== ws) {
        return;
      }
      state.ws = null;
      onClose(event.code);
    });
  }

  function onClose(code) {
    var pending = state.pending && !state.pending.finished ? state.pending : null;
    if (code === 4401) {
      goToLogin();
      return;
    }
    if (code === 4403 || code === 4404 || code === 4409) {
      setConnection("idle");
      if (pending) {
        finish(pending);
      }
      state.composerLocked = true;
      if (code === 4403) {
        refreshCurrentSession("closed");
        if (!dom.banner.hidden && dom.banner.getAttribute("data-code") === "consent_required") {
          return;
        }
        onError({ code: "consent_required" }, null);
      } else if (code === 4409) {
        refreshCurrentSession("closed");
        if (state.current && state.closingSessionId === state.current.id) {
          return; // ended from this page: no warning, the header says so
        }
        if (!dom.banner.hidden && dom.banner.getAttribute("data-code") === "session_expired") {
          return;
        }
        onError({ code: "session_expired" }, null);
      } else {
        showBanner({ code: "not_found", text: S.sessionNotFound });
      }
      updateComposer();
      return;
    }
    if (Date.now() - state.wsOpenedAt > STABLE_CONNECTION_MS) {
      state.reconnectAttempts = 0;
    }
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (!sessionIsOpen() || state.reconnectTimer) {
      return;
    }
    var ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * Math.pow(2, state.reconnectAttempts));
    var delay = ceiling / 2 + Math.random() * ceiling / 2; // jitter: clients do not reconnect in step
    state.reconnectAttempts += 1;
    setConnection("reconnecting");
    state.reconnectTimer = window.setTimeout(function () {
      state.reconnectTimer = null;
      connect();
    }, delay);
  }

  window.addEventListener("online", function () {
    if (state.reconnectTimer) {
      window.clearTimeout(state.reconnectTimer);
      state.reconnectTimer = null;
      connect();
    }
  });

  // --- wiring -----------------------------------------------------------------------------

  dom.composer.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });
  dom.input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  dom.input.addEventListener("input", updateComposer);
  dom.stop.addEventListener("click", stop);
  // On a phone the session list is a drawer (CSS); on a wide screen these do nothing visible.
  function openDrawer() {
    dom.layout.classList.add("drawer-open");
    dom.drawerToggle.setAttribute("aria-expanded", "true");
    dom.drawerBackdrop.hidden = false;
    dom.newSession.focus();
  }

  function closeDrawer() {
    dom.layout.classList.remove("drawer-open");
    dom.drawerToggle.setAttribute("aria-expanded", "false");
    dom.drawerBackdrop.hidden = true;
  }

  dom.newSession.addEventListener("click", function () {
    closeDrawer();
    createSession();
  });
  dom.newSession.disabled = false;  // rendered disabled until this listener exists
  dom.drawerToggle.addEventListener("click", function () {
    if (dom.layout.classList.contains("drawer-open")) {
      closeDrawer();
    } else {
      openDrawer();
    }
  });
  dom.drawerBackdrop.addEventListener("click", closeDrawer);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && dom.layout.classList.contains("drawer-open")) {
      closeDrawer();
      dom.drawerToggle.focus();
    }
  });
  dom.sessionSearch.addEventListener("input", function () {
    window.clearTimeout(state.searchTimer);
    state.searchTimer = window.setTimeout(runSearch, 250); // one request per pause in typing
  });
  dom.closeSession.addEventListener("click", closeCurrentSession);
  window.addEventListener("popstate", function (event) {
    var sessionId = event.state && event.state.sessionId;
    if (sessionId) {
      selectSession(sessionId, false);
    } else {
      window.location.reload();
    }
  });

  loadSessions().then(function () {
    if (cfg.initialSessionId) {
      window.history.replaceState({ sessionId: cfg.initialSessionId }, "");
      selectSession(cfg.initialSessionId, false);
    }
  });
  updateComposer();
})();
