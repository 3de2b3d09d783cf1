// mojodex-scheduler status page: shows times in the browser's zone and
// refreshes the page's live parts without reloading it. No framework, no
// build step; the page works without it (times then show in UTC).
(function () {
  "use strict";

  var absFmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });
  var timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var clockFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  var runDayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
  var dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

  // relative says t as seen from now, as the server's relativeWords does.
  function relative(t, now) {
    var d = t - now;
    if (d > -1000 && d < 1000) return "just now";
    var future = d > 0;
    d = Math.abs(d);
    var s;
    if (d < 60e3) {
      s = Math.floor(d / 1e3) + " s";
    } else if (d < 3600e3) {
      s = Math.floor(d / 60e3) + " min";
    } else if (d < 48 * 3600e3) {
      var h = Math.floor(d / 3600e3), m = Math.floor((d % 3600e3) / 60e3);
      s = h + " h" + (m ? " " + m + " min" : "");
    } else {
      s = Math.floor(d / 86400e3) + " days";
    }
    return future ? "in " + s : s + " ago";
  }

  function shortTime(t, now) {
    return sameDay(t, now) ? timeFmt.format(t) : dayFmt.format(t);
  }

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  // formatTimes rewrites every <time datetime> under root in the browser's
  // zone; the title keeps the UTC value.
  function formatTimes(root) {
    var now = new Date();
    var els = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var t = new Date(el.getAttribute("datetime"));
      if (isNaN(t.getTime())) continue;
      switch (el.getAttribute("data-fmt")) {
        case "rel":
          el.textContent = relative(t, now);
          break;
        case "run":
          // A run: its clock time to the second, with the day unless today.
          el.textContent = (sameDay(t, now) ? "" : runDayFmt.format(t) + ", ") + clockFmt.format(t);
          break;
        case "short":
          el.textContent = shortTime(t, now);
          break;
        case "both":
          // Relative, with the local time on a second line.
          el.textContent = relative(t, now);
          var sub = document.createElement("span");
          sub.className = "sub";
          sub.textContent = shortTime(t, now);
          el.appendChild(sub);
          break;
        default:
          el.textContent = absFmt.format(t);
      }
    }
  }

  // refresh fetches the page again and swaps its live parts (elements with
  // data-live and an id) for their new versions: the scroll position, the
  // focus and anything outside them stay as they are.
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    var active = document.activeElement;
    if (active && active.closest && active.closest("form") && active.tagName === "INPUT") return;
    busy = true;
    fetch(location.pathname + location.search, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "text/html" }
    }).then(function (resp) {
      if (!resp.ok || resp.redirected) throw new Error("status " + resp.status);
      return resp.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      var live = document.querySelectorAll("[data-live][id]");
      for (var i = 0; i < live.length; i++) {
        var fresh = doc.getElementById(live[i].id);
        if (fresh) live[i].replaceWith(document.importNode(fresh, true));
      }
      formatTimes(document);
      stale(false);
    }).catch(function () {
      stale(true);
    }).finally(function () {
      busy = false;
    });
  }

  function stale(on) {
    document.body.classList.toggle("stale", on);
    var note = document.querySelector(".stale");
    if (note) note.hidden = !on;
  }

  function start() {
    // The notice of an action is shown once: a reload does not repeat it.
    if (location.search.indexOf("done=") >= 0 && history.replaceState) {
      history.replaceState(null, "", location.pathname);
    }
    formatTimes(document);
    var every = parseInt(document.body.getAttribute("data-refresh"), 10);
    if (every > 0) {
      setInterval(refresh, every);
      document.addEventListener("visibilitychange", function () {
        if (!document.hidden) refresh();
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
