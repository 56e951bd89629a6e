/* The warning before a dashboard session ends (WCAG 2.2.1 Timing Adjustable).
 * The server renders its clock and the session's two deadlines into #session-timer (the app's clock, which
 * development and tests move). This file opens the #session-warning dialog data-warn-seconds before the earlier
 * deadline: 続ける extends the idle limit (POST of the dialog's form, with its CSRF token); near the absolute
 * limit the dialog says it cannot be extended. Once the session has ended, #session-ended says so and links to
 * the login; the page is never left, so what was typed stays. Tabs of one browser share the deadlines through
 * localStorage: a session kept alive in one tab is not reported as ended in another.
 * Words shown to people come from the template; this file holds none. */
(function () {
  "use strict";

  var timer = document.getElementById("session-timer");
  var dialog = document.getElementById("session-warning");
  var ended = document.getElementById("session-ended");
  if (!timer || !dialog || !ended || typeof dialog.showModal !== "function") return;
  var form = dialog.querySelector("form");
  var STORE = "madoguchi.staff.session";
  var TICK_MS = 1000;
  var warnMs = Number(timer.getAttribute("data-warn-seconds")) * 1000;
  var state = {
    idle: 0, absolute: 0, idleText: "", absoluteText: "",
    skew: 0,            // the server's clock minus this browser's, in ms
    shown: null,        // the case the dialog shows: idle | absolute | failed | stale, null when closed
    dismissed: null,    // the deadline whose warning was closed with 閉じる (not shown again)
    busy: false, over: false, returnTo: null
  };

  function serverNow() { return Date.now() + state.skew; }
  function end() { return Math.min(state.idle, state.absolute); }
  function endText() { return state.absolute <= state.idle ? state.absoluteText : state.idleText; }

  function adopt(data, now) {
    if (now) state.skew = Date.parse(now) - Date.now();
    state.idle = Date.parse(data.idle);
    state.absolute = Date.parse(data.absolute);
    state.idleText = data.idle;
    state.absoluteText = data.absolute;
  }

  function share() {
    try {
      localStorage.setItem(STORE, JSON.stringify({idle: state.idleText, absolute: state.absoluteText}));
    } catch (e) { /* storage refused: each tab keeps its own deadlines */ }
  }

  function fill() {
    var minutes = Math.max(1, Math.ceil((end() - serverNow()) / 60000));
    var values = {time: endText().slice(11, 16), minutes: String(minutes)};   // HH:MM in the server's zone
    Array.prototype.forEach.call(dialog.querySelectorAll("[data-fill]"), function (node) {
      node.textContent = values[node.getAttribute("data-fill")];
    });
  }

  function show(kind) {
    Array.prototype.forEach.call(dialog.querySelectorAll("[data-show]"), function (node) {
      node.hidden = node.getAttribute("data-show").split(" ").indexOf(kind) < 0;
    });
    fill();
    state.shown = kind;
    if (!dialog.open) {
      state.returnTo = document.activeElement;
      dialog.showModal();
    }
    var button = dialog.querySelector("button:not([hidden])");
    if (button) button.focus();
  }

  function hide() {
    if (dialog.open) dialog.close();
  }

  function finish() {
    if (state.over) return;
    state.over = true;
    var looking = dialog.open || document.activeElement === document.body;
    state.returnTo = null;        // the dialog's close must not take the focus back from the notice
    hide();
    // What the page shows of a person goes with the session (an unattended screen keeps no details on show);
    // what was typed stays, to be copied after logging in again.
    var shown = document.querySelectorAll("[data-personal]");
    for (var i = 0; i < shown.length; i++) shown[i].hidden = true;
    var told = ended.querySelector("[data-personal-hidden]");
    if (told) told.hidden = shown.length === 0;
    ended.hidden = false;
    if (looking) ended.focus();   // someone typing on after closing the warning keeps their place
  }

  function extend() {
    if (state.busy || state.over) return;
    state.busy = true;
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (response.status === 401) return "ended";
        if (response.status === 400) return "stale";     // the CSRF token is older than the session
        if (!response.ok) return "failed";
        return response.json().then(function (data) {
          adopt(data, data.now);
          share();
          return "extended";
        });
      })
      .catch(function () { return "failed"; })
      .then(function (outcome) {
        state.busy = false;
        if (outcome === "extended") hide();
        else if (outcome === "ended") finish();
        else show(outcome);
      });
  }

  function tick() {
    if (state.over || state.busy) return;
    var now = serverNow();
    if (now >= end()) {
      finish();
      return;
    }
    if (now < end() - warnMs) {
      hide();                     // extended meanwhile (here or in another tab)
      return;
    }
    if (state.dismissed === end()) return;
    var kind = state.absolute <= state.idle ? "absolute" : "idle";
    if (state.shown === null || ((state.shown === "idle" || state.shown === "absolute") && state.shown !== kind)) {
      show(kind);
    } else {
      fill();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    extend();
  });
  dialog.querySelector("[data-close]").addEventListener("click", function () {
    state.dismissed = end();
    hide();
  });
  dialog.addEventListener("cancel", function () {
    // Escape: in the idle warning it means "I am here" as 続ける does; otherwise it closes like 閉じる.
    if (state.shown === "idle" || state.shown === "failed") extend();
    else state.dismissed = end();
  });
  dialog.addEventListener("close", function () {
    var back = state.returnTo;
    state.shown = null;
    state.returnTo = null;
    if (back && back !== document.body && document.contains(back) && typeof back.focus === "function") back.focus();
  });
  window.addEventListener("storage", function (event) {
    if (event.key !== STORE || !event.newValue || state.over) return;
    var data;
    try { data = JSON.parse(event.newValue); } catch (e) { return; }
    if (data && Date.parse(data.idle) > state.idle) {
      adopt(data, null);
      tick();
    }
  });
  document.addEventListener("visibilitychange", tick);

  adopt({idle: timer.getAttribute("data-idle"), absolute: timer.getAttribute("data-absolute")},
        timer.getAttribute("data-now"));
  share();
  setInterval(tick, TICK_MS);
  tick();
}());
