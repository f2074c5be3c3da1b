/* Live progress of a progress-report export (lms/templates/coordinator/export.html).
   Polls the export's progress.json every second while it waits or is written and updates
   the bar and the figures in place; when it is ready, shows the download link. Without
   JavaScript the page shows the same figures and a refresh link. */
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

  function number(value) {
    return Number(value).toLocaleString(lang);
  }

  function set(field, text) {
    var el = root.querySelector('[data-field="' + field + '"]');
    // Only real changes touch the live region, so screen readers hear news, not every poll.
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }

  function show(selector, visible) {
    document.querySelectorAll(selector).forEach(function (el) {
      el.hidden = !visible;
    });
  }

  function unfinished(state) {
    return state === "queued" || state === "running";
  }

  function render(p) {
    var max = Math.max(p.total, 1);
    if (bar) {
      bar.max = max;
      bar.value = Math.min(p.state === "done" ? p.total : p.done, max);
      bar.textContent = p.done + " / " + p.total;
    }
    set("done", number(p.state === "done" ? p.total : p.done));
    set("total", number(p.total));
    var state = root.querySelector('[data-field="state"]');
    if (state) {
      set("state", state.getAttribute("data-label-" + p.state) || p.state);
    }
    root.setAttribute("data-state", p.state);
    if (p.state === "done") {
      var link = root.querySelector('[data-field="download"]');
      if (link && p.download_url) {
        link.setAttribute("href", p.download_url);
      }
      set("file_name", p.file_name || "");
    }
    if (p.state === "failed") {
      set("error", p.error || "");
    }
    show('[data-when="done"]', p.state === "done");
    show('[data-when="failed"]', p.state === "failed");
    show('[data-when="stale"]', !!p.stale);
    show("[data-when-restart]", !!p.stale || p.state === "failed");
    if (!unfinished(p.state)) {
      show("[data-while-running]", false);
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
        if (unfinished(p.state)) {
          schedule(1000);
        }
      })
      .catch(function () {
        // The server restarting or the network dropping: back off, up to 30 s, and retry.
        failures += 1;
        schedule(Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  if (unfinished(root.getAttribute("data-state"))) {
    if (note) {
      note.hidden = false;
    }
    schedule(1000);
  }
})();
