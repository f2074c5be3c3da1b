/* Live progress of an autograding batch (lms/templates/instructor/batch.html).
   Polls the batch's progress.json every second while it runs and updates the bar and the
   figures in place; without JavaScript the page shows the same figures and a refresh link. */
(function () {
  "use strict";
  var root = document.querySelector("[data-progress-url]");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-progress-url");
  var lang = document.documentElement.lang || undefined;
  var bar = root.querySelector("progress");
  var note = root.querySelector("[data-live-note]");
  var failures = 0;

  function number(value, digits) {
    return Number(value).toLocaleString(lang, { maximumFractionDigits: digits || 0 });
  }

  function clock(seconds) {
    if (seconds === null || seconds === undefined) {
      return "—";
    }
    var total = Math.round(seconds);
    var hours = Math.floor(total / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var secs = total % 60;
    var ss = (secs < 10 ? "0" : "") + secs;
    if (hours) {
      return hours + ":" + (minutes < 10 ? "0" : "") + minutes + ":" + ss;
    }
    return minutes + ":" + ss;
  }

  function set(field, text) {
    var el = root.querySelector('[data-field="' + field + '"]');
    // Only real changes touch the live region, so screen readers hear news, not every poll.
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }

  function render(p) {
    var finished = p.done + p.failed + p.cancelled;
    var max = Math.max(p.total, 1);
    if (bar) {
      bar.max = max;
      bar.value = Math.min(finished, max);
      bar.textContent = finished + " / " + p.total;
    }
    set("done", number(p.done));
    set("failed", number(p.failed));
    set("total", number(p.total));
    set("cancelled", number(p.cancelled));
    set("rate_per_minute", number(p.rate_per_minute, 1));
    set("seconds_left", clock(p.seconds_left));
    var state = root.querySelector('[data-field="state"]');
    if (state) {
      set("state", state.getAttribute("data-label-" + p.state) || p.state);
    }
    root.setAttribute("data-state", p.state);
    if (p.state !== "running") {
      if (note) {
        note.hidden = true;
      }
      document.querySelectorAll("[data-while-running]").forEach(function (el) {
        el.hidden = true;
      });
    }
  }

  function schedule(delay) {
    window.setTimeout(function () {
      if (document.hidden) {
        // A tab in the background asks nothing; it catches up when it is shown again.
        document.addEventListener("visibilitychange", function again() {
          document.removeEventListener("visibilitychange", again);
          poll();
        });
        return;
      }
      poll();
    }, delay);
  }

  function poll() {
    window
      .fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (p) {
        failures = 0;
        render(p);
        if (p.state === "running") {
          schedule(1000);
        }
      })
      .catch(function () {
        // The server restarting or the network dropping: back off, up to 30 s, and retry.
        failures += 1;
        schedule(Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  if (root.getAttribute("data-state") === "running") {
    if (note) {
      note.hidden = false;
    }
    schedule(1000);
  }
})();
