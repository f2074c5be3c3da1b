/* The polling behind every live progress page (autograding batches, exports): asks the
   page's progress.json every second while the work goes on, backs off when the server or
   the network is away, waits while the tab is hidden, and hands each answer to the page's
   own render function. Without JavaScript the pages show the same figures and a refresh
   link. Usage: lmsLiveProgress({going: function (state) {...}, render: function (p, page) {...}}) */
window.lmsLiveProgress = function (options) {
  "use strict";
  var root = document.querySelector("[data-progress-url]");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-progress-url");
  var note = root.querySelector("[data-live-note]");
  var failures = 0;
  var page = {
    root: root,
    note: note,
    bar: root.querySelector("progress"),
    lang: document.documentElement.lang || undefined,
    set: function (field, text) {
      var el = root.querySelector('[data-field="' + field + '"]');
      // Only real changes touch the live region, so screen readers hear news, not every poll.
      if (el && el.textContent !== text) {
        el.textContent = text;
      }
    },
    // The state in words (the element's data-label-<state>) and on the root, for CSS.
    state: function (state) {
      var el = root.querySelector('[data-field="state"]');
      if (el) {
        page.set("state", el.getAttribute("data-label-" + state) || state);
      }
      root.setAttribute("data-state", state);
    },
    show: function (selector, visible) {
      document.querySelectorAll(selector).forEach(function (el) {
        el.hidden = !visible;
      });
    }
  };

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
        options.render(p, page);
        if (options.going(p.state)) {
          schedule(1000);
        }
      })
      .catch(function () {
        // The server restarting or the network dropping: back off, up to 30 s, and retry.
        failures += 1;
        schedule(Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  if (options.going(root.getAttribute("data-state"))) {
    if (note) {
      note.hidden = false;
    }
    schedule(1000);
  }
};
